"""Compaction: what goes (superseded events and old tombstones below the floor), what never
does (winners, quarantined events), the holes it leaves (``BehindFloor``), and that neither
the state nor the log's replay changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack
import pytest
import trio

from tests.journal.toy import KV, delete, kv_projections, put, rows
from zeronode.journal import (
    BehindFloor,
    Change,
    Event,
    Journal,
    open_journal,
    system_wall_clock_ms,
)
from zeronode.journal import compaction
from zeronode.journal.compaction import (
    TombstoneRow,
    behind_floor,
    expired_tombstones,
    stable_floor,
    tombstone_cutoff,
)
from zeronode.journal.hlc import pack
from zeronode.journal.projection import ProjectionSet
from zeronode.journal.queries import replay_state_hash

T0 = 1_700_000_000_000
DAY = 24 * 3600 * 1000
OTHER = "c" * 32


class Wall:
    """A wall clock the test moves by hand."""

    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def ev(seq: int, entity: str, value: object, *, ms: int, kind: str = KV) -> Event:
    state = None if value is None else {"v": value}
    return Event(OTHER, seq, pack(ms), entity, kind, msgpack.packb(state))


def stored(db: sqlite3.Connection) -> set[tuple[str, int]]:
    return set(db.execute("SELECT origin, seq FROM journal_events"))


async def log_replays_to_the_state(journal: Journal) -> bool:
    """Replaying what the log still holds gives exactly what the node shows."""
    log = await journal.read(
        lambda db: [Event(*r) for r in db.execute(
            "SELECT origin, seq, hlc, entity, kind, payload FROM journal_events"
        )]
    )
    return replay_state_hash(log, ProjectionSet(kv_projections())) == await journal.state_hash()


# -- the pure decisions ---------------------------------------------------------------------


def test_the_floor_is_capped_by_what_this_node_holds() -> None:
    assert stable_floor({"a": 10, "b": 3, "c": 5}, {"a": 4, "b": 7}) == {"a": 4, "b": 3}


def test_a_tombstone_expires_below_the_floor_and_past_the_grace_only() -> None:
    cutoff = tombstone_cutoff(T0 + DAY, DAY)
    old, young = pack(T0 - 1), pack(T0)
    rows_ = [
        TombstoneRow("below-old", old, "a", 3),
        TombstoneRow("above-old", old, "a", 4),
        TombstoneRow("below-young", young, "a", 2),
        TombstoneRow("unknown-origin", old, "z", 1),
    ]
    assert [r.entity for r in expired_tombstones(rows_, {"a": 3}, cutoff)] == ["below-old"]


def test_behind_floor_names_the_first_origin_with_a_hole_the_requester_needs() -> None:
    marks = {"a": 5, "b": 2}
    assert behind_floor({"a": 5, "b": 2}, marks) is None
    assert behind_floor({"a": 9, "b": 7}, marks) is None
    refusal = behind_floor({"a": 4, "b": 0}, marks)
    assert refusal is not None and (refusal.origin, refusal.needed, refusal.floor) == ("a", 5, 5)
    refusal = behind_floor({"a": 5}, marks)
    assert refusal is not None and (refusal.origin, refusal.needed, refusal.floor) == ("b", 1, 2)


# -- the journal ----------------------------------------------------------------------------


async def test_superseded_events_below_the_floor_go_and_nothing_else(tmp_path: Path) -> None:
    wall = Wall()
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=wall) as journal:
        me = journal.node_id
        for value in (1, 2, 3):  # me 1..3: x overwritten twice
            wall.ms += 1
            await journal.submit(put("x", value))
        wall.ms += 1
        await journal.submit(put("y", 1))  # me 4: a winner
        wall.ms += 1
        await journal.submit(put("y", 2))  # me 5: supersedes me 4, which is above the floor
        await journal.ingest([ev(1, "x", "old", ms=T0 - 5), ev(2, "z", 1, ms=T0)])
        before = await journal.state_hash()

        report = await journal.compact({me: 3, OTHER: 1}, now_ms=wall.ms)

        assert (report.superseded, report.tombstones) == (3, 0)  # me 1, me 2, other 1
        assert await journal.read(stored) == {(me, 3), (me, 4), (me, 5), (OTHER, 2)}
        assert report.floor == journal.floor() == {me: 2, OTHER: 1}
        assert await journal.state_hash() == before
        assert await log_replays_to_the_state(journal)
        assert await journal.read(rows) == {"x": {"v": 3}, "y": {"v": 2}, "z": {"v": 1}}


async def test_winners_are_never_removed_even_with_everything_stable(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        for i in range(30):
            await journal.submit(put(f"k{i % 7}", i))
        before = await journal.state_hash()
        report = await journal.compact(journal.position(), now_ms=T0)
        assert report.superseded == 30 - 7
        winners = await journal.read(
            lambda db: set(db.execute("SELECT origin, seq FROM journal_winners"))
        )
        assert await journal.read(stored) == winners and len(winners) == 7
        assert await journal.state_hash() == before
        # compacting again finds nothing more
        assert (await journal.compact(journal.position(), now_ms=T0)).superseded == 0


async def test_quarantined_events_are_never_removed(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        future = ev(1, "k", "from a newer node", ms=T0, kind="test.kv@9")
        await journal.ingest([future, ev(2, "k", "known", ms=T0 + 1)])
        report = await journal.compact(journal.position(), now_ms=T0)
        assert report.superseded == 0
        assert [e for e, _ in await journal.quarantined()] == [future]


async def test_a_tombstone_goes_only_after_the_grace_period(tmp_path: Path) -> None:
    wall = Wall()
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=wall) as journal:
        await journal.submit(put("gone", 1))
        await journal.submit(delete("gone"))
        await journal.submit(put("kept", 1))
        before = await journal.state_hash()
        everything = journal.position()

        young = await journal.compact(everything, now_ms=T0 + DAY - 1, grace_ms=DAY)
        assert (young.superseded, young.tombstones) == (1, 0)
        assert await journal.read(
            lambda db: db.execute("SELECT count(*) FROM journal_winners").fetchone()[0]
        ) == 2

        old = await journal.compact(everything, now_ms=T0 + DAY + 1, grace_ms=DAY)
        assert old.tombstones == 1
        assert await journal.read(stored) == {(journal.node_id, 3)}
        assert await journal.read(
            lambda db: [e for (e,) in db.execute("SELECT entity FROM journal_winners")]
        ) == ["kept"]
        assert journal.floor() == {journal.node_id: 2}
        assert await journal.state_hash() == before
        assert await log_replays_to_the_state(journal)
        # the entity can be written again
        await journal.submit(put("gone", 2))
        assert (await journal.read(rows))["gone"] == {"v": 2}


async def test_a_tombstone_stays_while_an_older_write_of_its_entity_is_stored(
    tmp_path: Path,
) -> None:
    wall = Wall()
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=wall) as journal:
        await journal.submit(delete("k"))
        await journal.ingest([ev(1, "k", "older", ms=T0 - 10)])  # loses to the tombstone
        me = journal.node_id
        # OTHER's event is not stable yet: replaying the log without the tombstone would
        # resurrect k, so the tombstone stays
        report = await journal.compact({me: 1}, now_ms=T0 + 2 * DAY)
        assert report.tombstones == 0 and await journal.read(stored) == {(me, 1), (OTHER, 1)}
        report = await journal.compact({me: 1, OTHER: 1}, now_ms=T0 + 2 * DAY)
        assert (report.superseded, report.tombstones) == (1, 1)
        assert await journal.read(stored) == set()
        assert await log_replays_to_the_state(journal)


async def test_events_after_refuses_a_requester_behind_the_floor(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        me = journal.node_id
        for value in range(4):
            await journal.submit(put("x", value))  # me 1..4, 1..3 superseded
        await journal.submit(put("y", 0))  # me 5
        await journal.ingest([ev(1, "z", 1, ms=T0)])
        await journal.compact({me: 2, OTHER: 1}, now_ms=T0)
        assert journal.floor() == {me: 2}

        for after, needed in (({}, 1), ({me: 1, OTHER: 1}, 2)):
            with pytest.raises(BehindFloor) as refused:
                await journal.events(after)
            assert (refused.value.origin, refused.value.needed, refused.value.floor) == (
                me, needed, 2,
            )
        served = await journal.events({me: 2})
        assert sorted((e.origin, e.seq) for e in served) == sorted(
            [(me, 3), (me, 4), (me, 5), (OTHER, 1)]
        )
        assert [e.seq for e in await journal.events({me: 2, OTHER: 1}, limit=1)] == [3]


async def test_ingest_keeps_working_after_compaction(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        first, second = ev(1, "k", 1, ms=T0), ev(2, "k", 2, ms=T0 + 1)
        await journal.ingest([first, second])
        await journal.compact(journal.position(), now_ms=T0)
        assert await journal.read(stored) == {(OTHER, 2)}
        # a peer offering the dropped event again: a duplicate, not a conflict
        report = await journal.ingest([first, second, ev(3, "k", 3, ms=T0 + 2)])
        assert report.duplicates == 2 and [e.seq for e in report.applied] == [3]
        assert await journal.read(rows) == {"k": {"v": 3}}


async def test_compaction_runs_in_bounded_transactions_between_other_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "ROWS_PER_TRANSACTION", 10)
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        for batch in range(20):
            await journal.submit(
                lambda db, batch=batch: [Change(f"k{i}", KV, {"v": batch}) for i in range(10)]
            )
        for i in range(0, 10, 2):
            await journal.submit(delete(f"k{i}"))
        floor = journal.position()

        async def keep_writing() -> None:
            for i in range(30):
                await journal.submit(put(f"new{i % 4}", i))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_writing)
            report = await journal.compact(floor, now_ms=system_wall_clock_ms() + 2 * DAY)
        assert report.superseded == 195 and report.tombstones == 5
        assert report.transactions > 20 + 1  # 205 events and 10 winners, 10 rows a job
        assert await log_replays_to_the_state(journal)
        assert set(await journal.read(rows)) == {f"k{i}" for i in range(1, 10, 2)} | {
            f"new{i}" for i in range(4)
        }


async def test_the_floor_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with open_journal(path, kv_projections()) as journal:
        await journal.submit(put("k", 1))
        await journal.submit(put("k", 2))
        await journal.compact(journal.position(), now_ms=T0)
        marks = journal.floor()
    async with open_journal(path, kv_projections()) as journal:
        assert journal.floor() == marks == {journal.node_id: 1}
        with pytest.raises(BehindFloor):
            await journal.events()
