"""The fold's central property: the same events, in any order, any number of times, give the
same state. Checked through ``ingest`` (which enforces per-origin order, so refused events are
offered again) and against the pure fold, which ignores seq order altogether."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.toy import KV, KV_V2, kv_projections, rows
from zeronode.journal import Event, Journal, open_journal
from zeronode.journal.event import decode_state
from zeronode.journal.fold import winners
from zeronode.journal.projection import ProjectionSet
from zeronode.journal.queries import replay_state_hash

ORIGINS = ["1" * 32, "2" * 32, "3" * 32]
ENTITIES = ["e/0", "e/1", "e/2", "e/3"]
UNKNOWN = "test.future@9"
T0_HLC = 1_700_000_000_000 << 16

states = st.one_of(st.none(), st.fixed_dictionaries({"v": st.integers(0, 3)}))
# Few distinct hlcs, so equal timestamps from different origins are common.
writes = st.tuples(
    st.sampled_from(ENTITIES),
    st.sampled_from([KV, KV, KV, KV_V2, UNKNOWN]),
    states,
    st.integers(0, 5),
)


@st.composite
def event_sets(draw: st.DrawFn) -> list[Event]:
    events = []
    for origin in ORIGINS[: draw(st.integers(1, len(ORIGINS)))]:
        for seq, (entity, kind, state, tick) in enumerate(draw(st.lists(writes, max_size=8)), 1):
            events.append(Event(origin, seq, T0_HLC + tick, entity, kind, msgpack.packb(state)))
    return events


@st.composite
def deliveries(draw: st.DrawFn, events: list[Event]) -> tuple[list[Event], int]:
    """A shuffled stream of the events with duplicates, and a batch size to offer it in."""
    duplicated = draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    return draw(st.permutations(events + duplicated)), draw(st.integers(4, 40))


async def deliver(journal: Journal, stream: Sequence[Event], batch: int) -> None:
    """Offer the stream in batches; re-offer what was refused, in the same order, until done."""
    pending = list(stream)
    while pending:
        refused: list[Event] = []
        for start in range(0, len(pending), batch):
            report = await journal.ingest(pending[start : start + batch])
            assert not report.conflicts and not report.malformed
            refused.extend(report.refused)
        assert len(refused) < len(pending), "no progress"
        pending = refused


async def observe(journal: Journal) -> tuple[str, dict[str, Any], dict[str, Any], list[Any]]:
    return (
        await journal.state_hash(),
        await journal.read(rows),
        await journal.read(lambda db: rows(db, "kv2")),
        await journal.read(lambda db: db.execute("SELECT * FROM journal_winners ORDER BY 1").fetchall()),
    )


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), events=event_sets())
async def test_any_order_any_duplication_same_state(data: st.DataObject, events: list[Event]) -> None:
    observed = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(2):
            stream, batch = data.draw(deliveries(events), label=f"delivery {n}")
            async with open_journal(Path(tmp) / f"{n}.db", kv_projections()) as journal:
                await deliver(journal, stream, batch)
                expected_vv = {}
                for event in events:
                    expected_vv[event.origin] = max(expected_vv.get(event.origin, 0), event.seq)
                assert journal.position() == expected_vv
                unknown = [e for e in events if e.kind == UNKNOWN]
                assert [e for e, _ in await journal.quarantined()] == sorted(
                    unknown, key=lambda e: (e.origin, e.seq)
                )
                observed.append(await observe(journal))
    assert observed[0] == observed[1]

    # The pure fold, over the events in an arbitrary order that ignores seq altogether.
    projections = ProjectionSet(kv_projections())
    shuffled = data.draw(st.permutations(events), label="pure fold order")
    winning = winners(shuffled, projections.keys())
    by_stamp = {(e.hlc, e.origin, e.seq): e for e in events}
    expected: dict[str, dict[str, Any]] = {KV: {}, KV_V2: {}}
    for entity, winner in winning.items():
        stamp = winner.stamp
        if not winner.tombstone:
            expected[winner.kind][entity] = decode_state(by_stamp[(stamp.hlc, stamp.origin, stamp.seq)].payload)
    state_hash, kv, kv2, winner_rows = observed[0]
    assert kv == expected[KV]
    assert kv2 == expected[KV_V2]
    assert winner_rows == sorted(
        (entity, w.stamp.hlc, w.stamp.origin, w.stamp.seq, w.kind, int(w.tombstone))
        for entity, w in winning.items()
    )
    # And a replay of the log from scratch in (origin, seq) order.
    assert replay_state_hash(events, projections) == state_hash
