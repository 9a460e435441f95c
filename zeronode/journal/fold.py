"""The fold's decision, as pure code: which write of an entity is shown.

Every entity is a last-writer-wins register. The winner is the event with the greatest
``(hlc, origin, seq)``: the hybrid logical clock first, the origin's node id to break ties
between nodes that stamped the same instant, the sequence number only to keep the order total
should a faulty origin ever reuse a timestamp. The comparison reads nothing but the events,
so every node that holds the same events picks the same winners, whatever order they came in.

An event whose kind this node has no projection for is not folded at all: it is quarantined
(stored, counted in the version vector, set aside) and folded when a later open brings the
projection. Until then the node shows the entity as the events it does understand make it.

The SQLite layer (``store.py``) asks :func:`decide` what to do with each event and carries the
answer out; :func:`winners` is the same rule over a whole set of events at once, the reference
the tests hold the database to.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from typing import Literal

from zeronode.journal.event import Event


@dataclass(frozen=True, order=True)
class Stamp:
    """An event's position in its entity's LWW order; greater wins."""

    hlc: int
    origin: str
    seq: int


@dataclass(frozen=True)
class Winner:
    """The event currently shown for an entity (a row of the winner table)."""

    stamp: Stamp
    kind: str
    tombstone: bool


@dataclass(frozen=True)
class Decision:
    """What to do with one event.

    ``apply``: show its state through its kind's projection, after clearing the entity from
    ``clear_kind``'s projection when the entity changes kind (the rows of an entity live in
    exactly one projection: its winner's). ``lose``: keep it stored, show nothing.
    ``quarantine``: kind unknown here; store it and fold it when the kind becomes known.
    """

    action: Literal["apply", "lose", "quarantine"]
    clear_kind: str | None = None


QUARANTINE = Decision("quarantine")
LOSE = Decision("lose")


def decide(stamp: Stamp, kind: str, current: Winner | None, known_kinds: Set[str]) -> Decision:
    """The fold's rule for one event of ``kind`` stamped ``stamp``, given the entity's winner."""
    if kind not in known_kinds:
        return QUARANTINE
    if current is None:
        return Decision("apply")
    if stamp <= current.stamp:
        return LOSE
    return Decision("apply", clear_kind=current.kind if current.kind != kind else None)


def stamp_of(event: Event) -> Stamp:
    return Stamp(event.hlc, event.origin, event.seq)


def winners(events: Iterable[Event], known_kinds: Set[str]) -> dict[str, Winner]:
    """The winner of every entity among ``events``, in any order, duplicates allowed."""
    result: dict[str, Winner] = {}
    for event in events:
        stamp = stamp_of(event)
        decision = decide(stamp, event.kind, result.get(event.entity), known_kinds)
        if decision.action == "apply":
            result[event.entity] = Winner(stamp, event.kind, event.tombstone)
    return result
