"""Snapshots: taking one from a running journal, installing one into a running journal (and
what it refuses), and that a crash at any step of the swap leaves a sound database."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import msgpack
import pytest
import trio

from tests.journal.toy import KV, kv_projections, put, rows
from zeronode.journal import (
    BehindFloor,
    Event,
    Journal,
    SnapshotInfo,
    SnapshotRejected,
    open_journal,
)
from zeronode.journal.hlc import pack
from zeronode.journal.projection import ProjectionSet
from zeronode.journal.snapshot import (
    adopt,
    checkpoint,
    own_events_above,
    replace_database,
    stage_snapshot,
    staging_path,
)
from zeronode.journal.store import Store

T0 = 1_700_000_000_000
OTHER = "c" * 32


def ev(seq: int, entity: str, value: object) -> Event:
    return Event(OTHER, seq, pack(T0 + seq), entity, KV, msgpack.packb({"v": value}))


def files_beside(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()}


def meta_node_id(db: sqlite3.Connection) -> str:
    return str(db.execute("SELECT value FROM journal_meta WHERE key = 'node_id'").fetchone()[0])


async def populate(journal: Journal, count: int, prefix: str = "a") -> None:
    for i in range(count):
        await journal.submit(put(f"{prefix}{i % 5}", i))


async def test_a_snapshot_is_a_consistent_single_file_copy(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "a.db", kv_projections()) as a:
        await populate(a, 12)
        await a.ingest([ev(1, "o", 1)])
        dest = tmp_path / "out" / "snap.db"
        dest.parent.mkdir()
        info = await a.snapshot(dest)
        assert info == SnapshotInfo(
            dest,
            dest.stat().st_size,
            hashlib.sha256(dest.read_bytes()).hexdigest(),
            a.position(),
            a.node_id,
        )
        assert files_beside(dest) == {"snap.db"}  # no -wal, no temp file
        copy = sqlite3.connect(f"{dest.as_uri()}?mode=ro", uri=True)
        try:
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            assert rows(copy) == await a.read(rows)
            assert meta_node_id(copy) == a.node_id
        finally:
            copy.close()


async def test_a_snapshot_taken_during_writes_matches_its_position(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "a.db", kv_projections()) as a:
        await populate(a, 200)
        infos: list[SnapshotInfo] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(populate, a, 300, "b")
            for n in range(3):
                infos.append(await a.snapshot(tmp_path / f"s{n}.db"))
        for info in infos:
            copy = sqlite3.connect(info.path)
            try:
                [(count, top)] = copy.execute("SELECT count(*), max(seq) FROM journal_events")
                assert count == top == info.position[a.node_id]
            finally:
                copy.close()


async def test_install_shows_the_peers_state_and_keeps_this_nodes_identity(
    tmp_path: Path,
) -> None:
    async with (
        open_journal(tmp_path / "a.db", kv_projections()) as a,
        open_journal(tmp_path / "b.db", kv_projections()) as b,
    ):
        b_first = await b.submit(put("b/1", "first"))
        await a.ingest(b_first)  # A has B's first event, not its second
        [b_second] = await b.submit(put("b/2", "second"))
        await populate(a, 20)
        await a.ingest([ev(1, "o", 1), ev(2, "o", 2)])
        await a.compact(a.position(), now_ms=T0)
        snap = await a.snapshot(tmp_path / "snap.db")

        await b.install_snapshot(snap.path, sha256=snap.sha256)

        assert b.node_id != a.node_id
        assert await b.read(meta_node_id) == b.node_id
        assert b.position() == {**snap.position, b.node_id: 2}
        assert b.floor() == a.floor() != {}
        await a.ingest([b_second])  # A as it would be with B's extra event
        assert await b.state_hash() == await a.state_hash()
        assert snap.path.exists()  # the caller's file is left alone
        assert not [n for n in files_beside(b.path) if ".install-" in n]

        # B keeps serving: writes, reads, and its log from its own floor on
        [third] = await b.submit(put("b/3", "third"))
        assert third.seq == 3 and third.hlc > b_second.hlc
        assert (await b.read(rows))["b/3"] == {"v": "third"}
        await a.ingest([third])
        assert await b.state_hash() == await a.state_hash()
        with pytest.raises(BehindFloor):
            await b.events()
        assert await b.events(a.position()) == []
    async with open_journal(tmp_path / "b.db", kv_projections()) as b_again:
        assert b_again.position() == a.position()
        assert (await b_again.read(rows))["b/3"] == {"v": "third"}


async def test_reads_and_writes_during_an_install_see_one_database_or_the_other(
    tmp_path: Path,
) -> None:
    async with (
        open_journal(tmp_path / "a.db", kv_projections()) as a,
        open_journal(tmp_path / "b.db", kv_projections(), readers=2) as b,
    ):
        await populate(a, 50)
        snap = await a.snapshot(tmp_path / "snap.db")
        acknowledged: list[Event] = []
        seen: list[int] = []

        async def write_on_b() -> None:
            for i in range(40):
                acknowledged.extend(await b.submit(put(f"b{i}", i)))

        async def read_on_b() -> None:
            for _ in range(40):
                seen.append(len(await b.read(rows)))
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_on_b)
            nursery.start_soon(read_on_b)
            await trio.sleep(0.01)
            await b.install_snapshot(snap.path, sha256=snap.sha256)

        shown = await b.read(rows)
        assert all(shown[f"b{i}"] == {"v": i} for i in range(40))  # no acknowledged write lost
        assert {k for k in shown if k.startswith("a")} == {f"a{i}" for i in range(5)}
        assert b.position() == {a.node_id: 50, b.node_id: 40}
        assert [e.seq for e in acknowledged] == list(range(1, 41))
        await a.ingest(await b.events({a.node_id: 50}))
        assert await a.state_hash() == await b.state_hash()


async def test_install_adopts_the_later_clock(tmp_path: Path) -> None:
    ahead = T0 + 400  # within the tolerated offset
    async with (
        open_journal(tmp_path / "a.db", kv_projections(), wall_clock_ms=lambda: ahead) as a,
        open_journal(tmp_path / "b.db", kv_projections(), wall_clock_ms=lambda: T0) as b,
    ):
        [latest] = await a.submit(put("k", 1))
        snap = await a.snapshot(tmp_path / "snap.db")
        await b.install_snapshot(snap.path, sha256=snap.sha256)
        [mine] = await b.submit(put("k", 2))
        assert mine.hlc > latest.hlc
        assert (await b.read(rows))["k"] == {"v": 2}


async def test_install_refuses_a_wrong_hash_a_foreign_file_and_a_lagging_snapshot(
    tmp_path: Path,
) -> None:
    async with (
        open_journal(tmp_path / "a.db", kv_projections()) as a,
        open_journal(tmp_path / "b.db", kv_projections()) as b,
    ):
        await populate(a, 5)
        await b.ingest([ev(1, "o", 1)])  # an event A does not have
        await b.submit(put("b", 1))
        before = (await b.state_hash(), b.position())
        snap = await a.snapshot(tmp_path / "snap.db")

        with pytest.raises(SnapshotRejected, match="SHA-256"):
            await b.install_snapshot(snap.path, sha256="0" * 64)
        with pytest.raises(ValueError, match="lacks events"):
            await b.install_snapshot(snap.path, sha256=snap.sha256)
        junk = tmp_path / "junk.db"
        junk.write_bytes(b"not a database" * 1000)
        with pytest.raises(SnapshotRejected, match="not a journal"):
            await b.install_snapshot(junk, sha256=hashlib.sha256(junk.read_bytes()).hexdigest())

        assert (await b.state_hash(), b.position()) == before
        assert not [n for n in files_beside(b.path) if ".install-" in n]
        await b.submit(put("b", 2))  # still writable


async def test_install_refuses_when_own_events_it_lacks_were_compacted(tmp_path: Path) -> None:
    async with (
        open_journal(tmp_path / "a.db", kv_projections()) as a,
        open_journal(tmp_path / "b.db", kv_projections()) as b,
    ):
        snap = await a.snapshot(tmp_path / "snap.db")  # knows nothing of B
        await b.submit(put("k", 1))
        await b.submit(put("k", 2))
        await b.compact(b.position(), now_ms=T0)  # B's seq 1 is gone
        with pytest.raises(SnapshotRejected, match="too old"):
            await b.install_snapshot(snap.path, sha256=snap.sha256)
        assert (await b.read(rows)) == {"k": {"v": 2}}


# -- crash safety: the swap's steps one by one, then a reopen ---------------------------------


async def prepared(tmp_path: Path) -> tuple[Path, SnapshotInfo, str, str, str]:
    """A's snapshot, and B (closed) with one event A lacks: (b path, snapshot, B's id, B's
    state hash, A's state hash with B's events)."""
    async with (
        open_journal(tmp_path / "a.db", kv_projections()) as a,
        open_journal(tmp_path / "b.db", kv_projections()) as b,
    ):
        first = await b.submit(put("b", 1))
        await a.ingest(first)
        await populate(a, 10)
        snap = await a.snapshot(tmp_path / "snap.db")
        await a.ingest(await b.submit(put("b", 2)))
        return b.path, snap, b.node_id, await b.state_hash(), await a.state_hash()


def swap_up_to(step: str, path: Path, snap: SnapshotInfo) -> None:
    """Run ``install_staged``'s steps on B up to ``step``, then stop as a crash would (no
    close, no cleanup: the lock dies with the process)."""
    store = Store.open(path, ProjectionSet(kv_projections()), wall_clock_ms=lambda: T0,
                       max_offset_ms=500)
    staged = staging_path(path)
    manifest = stage_snapshot(snap.path, staged, snap.sha256)
    own = own_events_above(store.db, store.node_id, manifest.position[store.node_id], 2)
    adopt(staged, store.node_id, own, max(store.clock.last, manifest.hlc), store.projections)
    if step != "adopted":
        checkpoint(store.db)
        store.db.close()
        if step == "closed":
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        else:
            replace_database(staged, path)
    store.lock_file.close()


@pytest.mark.parametrize("step", ["adopted", "closed"])
async def test_a_crash_before_the_rename_leaves_the_old_database(
    tmp_path: Path, step: str
) -> None:
    path, snap, b_id, b_hash, _ = await prepared(tmp_path)
    await trio.to_thread.run_sync(swap_up_to, step, path, snap)
    assert [n for n in files_beside(path) if ".install-" in n]
    async with open_journal(path, kv_projections()) as b:
        assert b.node_id == b_id and await b.state_hash() == b_hash
        assert b.position() == {b_id: 2}
        assert not [n for n in files_beside(path) if ".install-" in n]  # leftover removed


async def test_a_crash_after_the_rename_leaves_the_new_database_as_this_node(
    tmp_path: Path,
) -> None:
    path, snap, b_id, _, combined = await prepared(tmp_path)
    await trio.to_thread.run_sync(swap_up_to, "renamed", path, snap)
    async with open_journal(path, kv_projections()) as b:
        assert b.node_id == b_id and await b.read(meta_node_id) == b_id
        assert b.position() == {**snap.position, b_id: 2}
        assert await b.state_hash() == combined
