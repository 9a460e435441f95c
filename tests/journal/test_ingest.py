"""Ingesting other origins' events: strict per-origin order, duplicates, alarms, quarantine."""

from __future__ import annotations

import logging
from pathlib import Path

import msgpack
import pytest

from tests.journal.toy import BOOM, KV, KV_V2, KeyValueProjection, kv_projections, put, rows
from zeronode.journal import Event, open_journal
from zeronode.journal.hlc import pack

A = "a" * 32
B = "b" * 32
T0 = 1_700_000_000_000


def ev(origin: str, seq: int, entity: str, value: object, *, ms: int = T0, kind: str = KV) -> Event:
    state = None if value is None else {"v": value}
    return Event(origin, seq, pack(ms, 0), entity, kind, msgpack.packb(state))


def clock(ms: int = T0):  # type: ignore[no-untyped-def]
    return lambda: ms


async def test_events_are_taken_only_in_sequence(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=clock()) as journal:
        e1, e2, e3 = (ev(A, n, f"k{n}", n, ms=T0 + n) for n in (1, 2, 3))
        report = await journal.ingest([e3, e1])
        assert report.refused == (e3,) and report.applied == (e1,)
        assert journal.position() == {A: 1}
        report = await journal.ingest([e1, e2, e3])
        assert report.duplicates == 1 and report.applied == (e2, e3)
        assert journal.position() == {A: 3}
        assert await journal.read(rows) == {"k1": {"v": 1}, "k2": {"v": 2}, "k3": {"v": 3}}


async def test_same_origin_seq_with_other_content_is_an_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=clock()) as journal:
        await journal.ingest([ev(A, 1, "k", 1)])
        forged = ev(A, 1, "k", 2)
        with caplog.at_level(logging.ERROR, logger="zeronode.journal"):
            report = await journal.ingest([forged])
        assert report.conflicts == (forged,) and not report.applied
        assert "conflicting_event" in caplog.text
        assert await journal.read(rows) == {"k": {"v": 1}}


async def test_own_origin_ahead_of_the_log_is_an_alarm(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=clock()) as journal:
        [mine] = await journal.submit(put("k", 1))
        assert (await journal.ingest([mine])).duplicates == 1
        ahead = ev(journal.node_id, 2, "k", 9)
        assert (await journal.ingest([ahead])).conflicts == (ahead,)
        assert journal.position() == {journal.node_id: 1}


async def test_malformed_envelopes_are_reported_not_stored(tmp_path: Path) -> None:
    bad = [
        Event("not-hex", 1, 1, "k", KV, b"\xc0"),
        Event(A, 0, 1, "k", KV, b"\xc0"),
        Event(A, 1, 0, "k", KV, b"\xc0"),
        Event(A, 1, 1, "", KV, b"\xc0"),
    ]
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        report = await journal.ingest(bad)
        assert report.malformed == tuple(bad)
        assert journal.position() == {}


async def test_lww_by_hlc_then_origin(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=clock()) as journal:
        await journal.ingest([ev(B, 1, "k", "b-early", ms=T0), ev(A, 1, "k", "a-late", ms=T0 + 1)])
        assert await journal.read(rows) == {"k": {"v": "a-late"}}
        # equal hlc: the greater origin wins, whichever arrives last
        await journal.ingest([ev(A, 2, "tie", "a", ms=T0 + 5), ev(B, 2, "tie", "b", ms=T0 + 5)])
        await journal.ingest([ev(A, 3, "tie2", "a", ms=T0 + 6)])
        await journal.ingest([ev(B, 3, "tie2", "b", ms=T0 + 6)])
        shown = await journal.read(rows)
        assert shown["tie"] == shown["tie2"] == {"v": "b"}
        # a tombstone wins like any write, and an older write cannot resurrect the entity
        await journal.ingest([ev(A, 4, "k", None, ms=T0 + 10), ev(B, 4, "k", "old", ms=T0 + 9)])
        assert "k" not in await journal.read(rows)


async def test_unknown_kinds_are_quarantined_then_folded_at_a_later_open(tmp_path: Path) -> None:
    events = [
        ev(A, 1, "x", 1, ms=T0),
        ev(A, 2, "x", 2, ms=T0 + 1, kind=KV_V2),  # a newer node's schema version
        ev(A, 3, "y", 3, ms=T0 + 2, kind=KV_V2),
        ev(A, 4, "z", BOOM, ms=T0 + 3),  # a projection that raises: also set aside
    ]
    old_node = [KeyValueProjection(KV, "kv")]
    async with open_journal(tmp_path / "old.db", old_node, wall_clock_ms=clock()) as journal:
        report = await journal.ingest(events)
        assert report.applied == (events[0],)
        assert report.quarantined == tuple(events[1:])
        assert journal.position() == {A: 4}
        assert await journal.read(rows) == {"x": {"v": 1}}  # as the known events make it
        reasons = [reason for _, reason in await journal.quarantined()]
        assert reasons[:2] == ["unknown kind", "unknown kind"] and "fold failed" in reasons[2]
    async with open_journal(tmp_path / "old.db", kv_projections(), wall_clock_ms=clock()) as upgraded:
        assert await upgraded.read(rows) == {}  # "x" moved to the kv@2 projection
        assert await upgraded.read(lambda db: rows(db, "kv2")) == {"x": {"v": 2}, "y": {"v": 3}}
        assert [e.seq for e, _ in await upgraded.quarantined()] == [4]
        upgraded_hash = await upgraded.state_hash()
    async with open_journal(tmp_path / "new.db", kv_projections(), wall_clock_ms=clock()) as fresh:
        await fresh.ingest(events)
        assert await fresh.state_hash() == upgraded_hash


async def test_a_far_future_event_is_stored_and_folded_but_not_adopted(tmp_path: Path) -> None:
    hour = 3_600_000
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=clock()) as journal:
        future = ev(A, 1, "k", "from the future", ms=T0 + hour)
        assert (await journal.ingest([future])).applied == (future,)
        [mine] = await journal.submit(put("other", 1))
        assert mine.hlc == pack(T0, 0)  # our clock did not jump an hour ahead
        assert journal.clock_healthy
        # LWW is LWW: a local write now loses to the future one (the clock layer's alarm).
        await journal.submit(put("k", "local"))
        assert (await journal.read(rows))["k"] == {"v": "from the future"}


async def test_a_near_remote_clock_is_adopted(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections(), wall_clock_ms=clock()) as journal:
        await journal.ingest([ev(A, 1, "k", 1, ms=T0 + 300)])
        [mine] = await journal.submit(put("k", 2))
        assert mine.hlc == pack(T0 + 300, 1)
        assert (await journal.read(rows))["k"] == {"v": 2}
