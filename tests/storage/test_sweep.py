"""sweep: blobs left by a crash before their journal commit are reclaimed, nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.storage.helpers import chunks_of
from zeronode.storage import BlobStore, WrittenBlob, open_blob_store

HOUR = 3600


def age(disk: Path, written: WrittenBlob, seconds: float = HOUR) -> None:
    path = disk / "blobs" / written.ref.blob[:2] / written.ref.blob
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_sweep_deletes_only_unreferenced_old_blobs(tmp_path: Path) -> None:
    disk = tmp_path / "d"
    async with open_blob_store([disk], node_id="n") as store:
        referenced = await store.write(chunks_of(b"in the journal"))
        orphan = await store.write(chunks_of(b"crashed before commit"))
        foreign = disk / "blobs" / "00" / "not-a-blob-id"
        foreign.write_bytes(b"someone else's")
    for written in (referenced, orphan):
        age(disk, written)
    age_foreign = time.time() - HOUR
    os.utime(foreign, (age_foreign, age_foreign))

    async with open_blob_store([disk], node_id="n") as store:
        fresh = await store.write(chunks_of(b"written after open, not committed yet"))
        asked = 0

        async def journal_refs() -> set[str]:
            nonlocal asked
            asked += 1
            return {referenced.ref.blob}

        assert await store.sweep(journal_refs) == 1
        assert asked == 1
        assert store.has(referenced.ref)
        assert not store.has(orphan.ref)
        assert store.has(fresh.ref)
        assert foreign.exists()
        assert await store.sweep(journal_refs) == 0


async def test_a_blob_written_while_the_sweep_runs_survives(tmp_path: Path) -> None:
    disk = tmp_path / "d"
    async with open_blob_store([disk], node_id="n") as store:
        old = await store.write(chunks_of(b"old orphan"))
    age(disk, old)
    async with open_blob_store([disk], node_id="n") as store:
        during: list[WrittenBlob] = []

        async def slow_journal() -> set[str]:
            during.append(await store.write(chunks_of(b"concurrent upload")))
            return set()

        assert await store.sweep(slow_journal) == 1
        assert not store.has(old.ref)
        assert store.has(during[0].ref)


async def test_sweep_with_nothing_to_do_does_not_ask_the_journal(
    tmp_path: Path,
) -> None:
    async with open_blob_store([tmp_path / "d"], node_id="n") as store:
        await store.write(chunks_of(b"new"))

        async def must_not_ask() -> set[str]:
            raise AssertionError("asked")

        assert await store.sweep(must_not_ask) == 0


async def test_sweep_covers_every_disk(tmp_path: Path) -> None:
    free = {"a": 10, "b": 20}
    paths = [tmp_path / "a", tmp_path / "b"]
    orphans = []
    async with open_blob_store(
        paths, node_id="n", space=lambda p: (100, free[p.name])
    ) as store:
        orphans.append(await store.write(chunks_of(b"on b")))
        free["a"] = 30
        orphans.append(await store.write(chunks_of(b"on a")))
    assert orphans[0].ref.disk != orphans[1].ref.disk
    age(paths[1], orphans[0])
    age(paths[0], orphans[1])
    async with open_blob_store(paths, node_id="n") as store:
        swept: BlobStore = store

        async def nothing() -> set[str]:
            return set()

        assert await swept.sweep(nothing) == 2
