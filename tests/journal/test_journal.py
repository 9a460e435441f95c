"""The journal file: identity, clock persistence, replay, append-only log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack
import pytest
import trio

from tests.journal.toy import KV, KV_V2, delete, kv_projections, put, rows
from zeronode.journal import Event, JournalLockedError, open_journal
from zeronode.journal.hlc import pack, wall_ms_of
from zeronode.journal.projection import ProjectionSet
from zeronode.journal.queries import replay_state_hash

T0 = 1_700_000_000_000
OTHER = "c" * 32


async def test_node_id_is_created_with_the_database_and_kept(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "one.db", kv_projections()) as journal:
        first = journal.node_id
        assert len(first) == 32 and int(first, 16) >= 0
    async with open_journal(tmp_path / "one.db", kv_projections()) as journal:
        assert journal.node_id == first
    async with open_journal(tmp_path / "two.db", kv_projections()) as journal:
        assert journal.node_id != first


async def test_clock_stays_monotonic_across_restart_and_backward_step(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with open_journal(path, kv_projections(), wall_clock_ms=lambda: T0 + 2_000) as journal:
        [before] = await journal.submit(put("k", 1))
    # the machine comes back with its clock two seconds behind
    async with open_journal(path, kv_projections(), wall_clock_ms=lambda: T0) as journal:
        assert not journal.clock_healthy
        [after] = await journal.submit(put("k", 2))  # still writes, by the HLC rule
        assert after.hlc > before.hlc and wall_ms_of(after.hlc) == T0 + 2_000
        assert await journal.read(rows) == {"k": {"v": 2}}
    async with open_journal(path, kv_projections(), wall_clock_ms=lambda: T0 + 1_600) as journal:
        assert journal.clock_healthy  # within 500 ms again


async def test_a_second_open_of_the_same_file_is_refused(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()):
        with pytest.raises(JournalLockedError):
            async with open_journal(tmp_path / "j.db", kv_projections()):
                pass


async def test_the_events_table_refuses_updates(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with open_journal(path, kv_projections()) as journal:
        await journal.submit(put("k", 1))
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE journal_events SET hlc = 0")
    db.close()


async def test_an_entity_lives_in_its_winners_projection_only(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        await journal.submit(put("k", 1, kind=KV))
        await journal.submit(put("k", 2, kind=KV_V2))
        assert await journal.read(rows) == {}
        assert await journal.read(lambda db: rows(db, "kv2")) == {"k": {"v": 2}}


async def test_replaying_the_log_from_scratch_equals_the_live_projections(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=lambda: T0) as journal:
        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(journal.submit, put(f"k/{i % 7}", i, kind=(KV, KV_V2)[i % 2]))
        await journal.submit(delete("k/3", kind=KV_V2))
        remote = [
            Event(OTHER, n, pack(T0, n), f"k/{n}", KV, msgpack.packb({"v": f"remote{n}"}))
            for n in range(1, 6)
        ]
        await journal.ingest(remote)
        live = await journal.state_hash()
        log = await journal.events()
        assert len(log) == 46
        assert replay_state_hash(log, ProjectionSet(kv_projections())) == live
        # Through the public API too: a new node fed the same log shows the same state.
        async with open_journal(tmp_path / "copy.db", kv_projections()) as copy:
            await copy.ingest(log)
            assert await copy.state_hash() == live
            assert copy.position() == journal.position()


async def test_events_after_a_version_vector(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        for i in range(5):
            await journal.submit(put(f"k{i}", i))
        node = journal.node_id
        assert [e.seq for e in await journal.events({node: 3})] == [4, 5]
        assert [e.seq for e in await journal.events(limit=2)] == [1, 2]
        assert await journal.events(journal.position()) == []


async def test_reads_see_every_answered_submit(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections(), readers=2) as journal:

        async def write_then_read(i: int) -> None:
            await journal.submit(put(f"k{i}", i))
            assert (await journal.read(rows))[f"k{i}"] == {"v": i}

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(write_then_read, i)
