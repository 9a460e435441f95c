"""The pure LWW rule, without SQLite."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from zeronode.journal import Event
from zeronode.journal.fold import LOSE, QUARANTINE, Decision, Stamp, Winner, decide, winners

KNOWN = frozenset({"k", "k@2"})


def test_first_write_of_an_entity_applies() -> None:
    assert decide(Stamp(5, "a", 1), "k", None, KNOWN) == Decision("apply")


def test_greater_hlc_wins_and_origin_breaks_ties() -> None:
    current = Winner(Stamp(5, "b", 1), "k", tombstone=False)
    assert decide(Stamp(6, "a", 1), "k", current, KNOWN) == Decision("apply")
    assert decide(Stamp(4, "z", 9), "k", current, KNOWN) == LOSE
    assert decide(Stamp(5, "c", 1), "k", current, KNOWN) == Decision("apply")
    assert decide(Stamp(5, "a", 9), "k", current, KNOWN) == LOSE


def test_the_same_event_again_loses_to_itself() -> None:
    stamp = Stamp(5, "a", 1)
    assert decide(stamp, "k", Winner(stamp, "k", False), KNOWN) == LOSE


def test_a_change_of_kind_clears_the_old_projection() -> None:
    current = Winner(Stamp(5, "a", 1), "k", tombstone=False)
    assert decide(Stamp(6, "a", 2), "k@2", current, KNOWN) == Decision("apply", clear_kind="k")


def test_unknown_kind_is_quarantined_whatever_its_stamp() -> None:
    assert decide(Stamp(6, "a", 2), "k@3", None, KNOWN) == QUARANTINE
    current = Winner(Stamp(9, "a", 1), "k", tombstone=False)
    assert decide(Stamp(6, "a", 2), "k@3", current, KNOWN) == QUARANTINE


events = st.builds(
    lambda origin, seq, hlc, entity, kind, state: Event(
        origin, seq, hlc, entity, kind, msgpack.packb(state)
    ),
    st.sampled_from(["a" * 32, "b" * 32]),
    st.integers(1, 20),
    st.integers(1, 4),
    st.sampled_from(["x", "y"]),
    st.sampled_from(["k", "k@2", "k@3"]),
    st.one_of(st.none(), st.just({"v": 1})),
)


# (origin, seq) names one event: two contents for one name is ingest's alarm, never folded.
@given(st.lists(events, max_size=30, unique_by=lambda e: (e.origin, e.seq)), st.randoms())
def test_winners_ignore_order_and_duplicates(log: list[Event], rng) -> None:  # type: ignore[no-untyped-def]
    reordered = log + log[: len(log) // 2]
    rng.shuffle(reordered)
    assert winners(reordered, KNOWN) == winners(log, KNOWN)
