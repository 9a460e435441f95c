"""Disk identity, layout, exclusive use, selection and a disk that is not there."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from tests.storage.helpers import chunks_of, files_under
from zeronode.aws.errors import AWSError
from zeronode.storage import BlobRef, StorageError, open_blob_store


async def test_first_open_lays_out_the_disk(tmp_path: Path) -> None:
    disk = tmp_path / "mnt" / "sdb"
    async with open_blob_store([disk], node_id="node-a") as store:
        [info] = store.disks
    marker = json.loads((disk / "zeronode-disk.id").read_text())
    assert (
        marker["node"] == "node-a" and marker["disk"] == info.id and len(info.id) == 32
    )
    assert info.path == disk.resolve() and info.total_bytes >= info.free_bytes > 0
    assert (disk / "tmp").is_dir()
    assert sorted(p.name for p in (disk / "blobs").iterdir()) == [
        f"{i:02x}" for i in range(256)
    ]


async def test_orphaned_temp_files_are_removed_at_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = tmp_path / "disk"
    async with open_blob_store([disk], node_id="n") as store:
        kept = await store.write(chunks_of(b"kept"))
    (disk / "tmp" / "deadbeef").write_bytes(b"half an upload")
    (disk / "tmp" / "another").write_bytes(b"")
    (disk / "tmp" / "odd-dir").mkdir()
    with caplog.at_level(logging.INFO, logger="zeronode.storage"):
        async with open_blob_store([disk], node_id="n") as store:
            assert (
                files_under(disk, "tmp") == [] and list((disk / "tmp").iterdir()) == []
            )
            assert store.has(kept.ref)
    [opened] = [r for r in caplog.records if r.getMessage() == "storage.disk_opened"]
    assert opened.zn_fields["orphaned_temp_removed"] == 3


async def test_a_disk_keeps_its_id_when_it_moves(tmp_path: Path) -> None:
    async with open_blob_store(
        [tmp_path / "sdb", tmp_path / "sdc"], node_id="n"
    ) as store:
        ids = [d.id for d in store.disks]
        written = await store.write(chunks_of(b"moved"))
    (tmp_path / "sdb").rename(tmp_path / "elsewhere-b")
    (tmp_path / "sdc").rename(tmp_path / "elsewhere-c")
    paths = [tmp_path / "elsewhere-c", tmp_path / "elsewhere-b"]  # order changed too
    async with open_blob_store(paths, node_id="n") as store:
        assert sorted(d.id for d in store.disks) == sorted(ids)
        assert b"".join([b async for b in store.read(written.ref)]) == b"moved"


async def test_the_roomiest_disk_is_picked(tmp_path: Path) -> None:
    free = {"a": 500, "b": 900}

    def space(path: Path) -> tuple[int, int]:
        return 1000, free[path.name]

    async with open_blob_store(
        [tmp_path / "a", tmp_path / "b"], node_id="n", space=space
    ) as store:
        by_name = {d.path.name: d.id for d in store.disks}
        first = await store.write(chunks_of(b"1"))
        free["a"] = 950
        second = await store.write(chunks_of(b"2"))
        assert (first.ref.disk, second.ref.disk) == (by_name["b"], by_name["a"])
        assert [(d.free_bytes, d.total_bytes) for d in store.disks] == [
            (950, 1000),
            (900, 1000),
        ]
    assert (
        len(files_under(tmp_path / "a", "blobs"))
        == len(files_under(tmp_path / "b", "blobs"))
        == 1
    )


async def test_a_ref_on_a_missing_disk_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_blob_store([tmp_path / "gone"], node_id="n") as store:
        written = await store.write(chunks_of(b"lost"))
    async with open_blob_store([tmp_path / "other"], node_id="n") as store:
        ref = written.ref
        assert not store.has(ref)
        with (
            caplog.at_level(logging.ERROR, logger="zeronode.storage"),
            pytest.raises(AWSError) as raised,
        ):
            async for _ in store.read(ref):
                pass
        assert (raised.value.code, raised.value.status) == ("InternalError", 500)
        assert ref.disk in raised.value.message
        assert any(r.getMessage() == "storage.disk_missing" for r in caplog.records)
        with pytest.raises(AWSError, match="InternalError"):
            await store.copy(ref)
        assert files_under(tmp_path / "other", "tmp") == []
        await store.delete(
            ref
        )  # logged and ignored: sweep reclaims it if the disk returns


async def test_a_blob_file_missing_from_its_disk_is_an_internal_error(
    tmp_path: Path,
) -> None:
    async with open_blob_store([tmp_path / "d"], node_id="n") as store:
        ref = (await store.write(chunks_of(b"abc"))).ref
        ghost = BlobRef(ref.disk, "f" * 32, 3)
        with pytest.raises(AWSError, match="InternalError"):
            async for _ in store.read(ghost):
                pass
        truncated = BlobRef(ref.disk, ref.blob, 4)
        with pytest.raises(AWSError, match="damaged"):
            async for _ in store.read(truncated):
                pass


async def test_a_disk_in_use_by_another_store_is_refused(tmp_path: Path) -> None:
    async with open_blob_store([tmp_path / "d"], node_id="n"):
        with pytest.raises(StorageError, match="in use"):
            async with open_blob_store([tmp_path / "d"], node_id="n"):
                pass
    async with open_blob_store([tmp_path / "d"], node_id="n"):
        pass  # released on close


async def test_a_disk_listed_twice_or_copied_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="twice"):
        async with open_blob_store(
            [tmp_path / "d", tmp_path / "x" / ".." / "d"], node_id="n"
        ):
            pass
    async with open_blob_store([tmp_path / "d"], node_id="n"):
        pass
    shutil.copytree(tmp_path / "d", tmp_path / "copy")
    with pytest.raises(StorageError, match="same disk id"):
        async with open_blob_store([tmp_path / "d", tmp_path / "copy"], node_id="n"):
            pass
    async with open_blob_store([tmp_path / "d"], node_id="n"):
        pass  # the failed open released what it had locked


async def test_an_unreadable_marker_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "zeronode-disk.id").write_text("garbage")
    with pytest.raises(StorageError, match="unreadable"):
        async with open_blob_store([tmp_path / "d"], node_id="n"):
            pass


async def test_no_disks_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        async with open_blob_store([], node_id="n"):
            pass
