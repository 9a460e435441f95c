"""Compaction: dropping the events that no node can need any more.

Theory of operation
-------------------
The fold is last-writer-wins per entity, so of all the events of an entity only its winner
shapes what the node shows; the others are *superseded*. A superseded event still matters to
a peer that has not received it yet, and to nobody else. The caller hands ``compact`` the
causal-stability *floor*: per origin, the lowest seq every durable member holds (the minimum
of their version vectors, learnt through anti-entropy). An event at or below the floor is held
by every member, so once it is superseded it can go: no member will ever ask for it. The
floor is clamped to what this node holds, as it cannot compact events it does not have.

A tombstone that wins its entity is superseded by nothing, but it is only there to beat older
writes of the entity that might still arrive. Below the floor no write older than it can come
from an event the members already share; one not yet shared could be older (written before
its origin saw the delete) and is bounded in practice by a grace period: a winning tombstone
goes only once below the floor *and* older (by its hybrid-logical-clock wall time) than
``grace_ms`` (24 h by default, Garage's answer to its issue #39). Earlier removal would let a
late write resurrect the deleted entity. A tombstone also stays while any other event of its
entity is still stored here (above the floor, or quarantined), so replaying this node's log
always gives what it shows. Removing it drops its event and its winner row; the projections
already show nothing for the entity. The state digests skip tombstone winner rows
(``queries.state_digests``), so two nodes that compacted at different moments still agree.

Quarantined events are never removed: a later version of this node folds them.

Holes. Once an origin's events are partly gone, this node can no longer hand that origin's
log to a peer that lacks part of it. ``journal_floor`` keeps, per origin, the highest seq
removed; ``events_after`` refuses (``BehindFloor``) a requester whose vector is below it, and
such a peer installs a snapshot instead (``snapshot.py``).

Bounded transactions. Compaction runs as ordinary writer jobs, each looking at no more than
``ROWS_PER_TRANSACTION`` rows, so it shares group commits with the service's writes and never
holds the writer for long, however big the journal. All superseded events are removed before
any tombstone is considered: the tombstone rule relies on them being gone. This module is the
only code that deletes from ``journal_events``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from zeronode.journal.hlc import pack
from zeronode.journal.store import Store

DEFAULT_TOMBSTONE_GRACE_MS = 24 * 3600 * 1000
ROWS_PER_TRANSACTION = 4096

WriterCall = Callable[[Callable[[Store], Any]], Awaitable[Any]]


class BehindFloor(LookupError):
    """The requester needs events of ``origin`` from seq ``needed`` on, but this node has
    compacted that origin's log up to seq ``floor``: it must install a snapshot instead."""

    def __init__(self, origin: str, needed: int, floor: int) -> None:
        super().__init__(
            f"events of {origin} from seq {needed} on are compacted up to seq {floor}:"
            " install a snapshot"
        )
        self.origin = origin
        self.needed = needed
        self.floor = floor


@dataclass(frozen=True)
class CompactionReport:
    """What one ``compact`` removed, in how many writer transactions, and the compacted-up-to
    marks (``Journal.floor()``) afterwards."""

    superseded: int
    tombstones: int
    transactions: int
    floor: dict[str, int]


@dataclass(frozen=True)
class TombstoneRow:
    """A winning tombstone: its entity and its event."""

    entity: str
    hlc: int
    origin: str
    seq: int


# -- the decisions (pure) ------------------------------------------------------------------------


def stable_floor(floor: Mapping[str, int], held: Mapping[str, int]) -> dict[str, int]:
    """The floor this node may compact to: the caller's, capped by what it holds."""
    result = {}
    for origin, seq in floor.items():
        upto = min(seq, held.get(origin, 0))
        if upto > 0:
            result[origin] = upto
    return result


def tombstone_cutoff(now_ms: int, grace_ms: int) -> int:
    """The hlc below which a tombstone is past its grace period."""
    if grace_ms < 0:
        raise ValueError("grace_ms must not be negative")
    return pack(max(0, now_ms - grace_ms))


def expired_tombstones(
    tombstones: Iterable[TombstoneRow], stable: Mapping[str, int], cutoff: int
) -> list[TombstoneRow]:
    """The winning tombstones below the stable floor and older than the grace period (each
    may go if it is also the last stored event of its entity)."""
    return [row for row in tombstones if row.seq <= stable.get(row.origin, 0) and row.hlc < cutoff]


def behind_floor(after: Mapping[str, int], marks: Mapping[str, int]) -> BehindFloor | None:
    """Why a requester holding ``after`` cannot be served from a log compacted to ``marks``."""
    for origin in sorted(marks):
        held = after.get(origin, 0)
        if held < marks[origin]:
            return BehindFloor(origin, held + 1, marks[origin])
    return None


# -- the writer jobs (each runs in the writer's transaction) --------------------------------------


def drop_superseded(store: Store, origin: str, after_seq: int, upto: int) -> tuple[int, int]:
    """Remove ``origin``'s superseded, unquarantined events in ``(after_seq, upto]``, looking at
    ``ROWS_PER_TRANSACTION`` events at most; returns (removed, the seq to continue after)."""
    db = store.db
    (bound,) = db.execute(
        "SELECT max(seq) FROM (SELECT seq FROM journal_events WHERE origin = ? AND seq > ?"
        " AND seq <= ? ORDER BY seq LIMIT ?)",
        (origin, after_seq, upto, ROWS_PER_TRANSACTION),
    ).fetchone()
    if bound is None:
        return 0, upto
    removed = [
        seq
        for (seq,) in db.execute(
            "DELETE FROM journal_events AS e WHERE origin = ? AND seq > ? AND seq <= ?"
            " AND NOT EXISTS (SELECT 1 FROM journal_winners AS w"
            "  WHERE w.entity = e.entity AND w.origin = e.origin AND w.seq = e.seq)"
            " AND NOT EXISTS (SELECT 1 FROM journal_quarantine AS q"
            "  WHERE q.origin = e.origin AND q.seq = e.seq)"
            " RETURNING seq",
            (origin, after_seq, bound),
        ).fetchall()
    ]
    if removed:
        _raise_floor(store, origin, max(removed))
    return len(removed), bound


def drop_tombstones(
    store: Store, after_entity: str, stable: Mapping[str, int], cutoff: int
) -> tuple[int, str | None]:
    """Remove the expired winning tombstones that are the last event of their entity, among
    the ``ROWS_PER_TRANSACTION`` winners after ``after_entity``; returns (removed, the entity
    to continue after, or None at the end)."""
    db = store.db
    (bound,) = db.execute(
        "SELECT max(entity) FROM (SELECT entity FROM journal_winners WHERE entity > ?"
        " ORDER BY entity LIMIT ?)",
        (after_entity, ROWS_PER_TRANSACTION),
    ).fetchone()
    if bound is None:
        return 0, None
    expired = expired_tombstones(
        (
            TombstoneRow(*row)
            for row in db.execute(
                "SELECT entity, hlc, origin, seq FROM journal_winners"
                " WHERE entity > ? AND entity <= ? AND tombstone = 1",
                (after_entity, bound),
            )
        ),
        stable,
        cutoff,
    )
    pinned = _pinned_entities(store, stable) if expired else set()
    doomed = [row for row in expired if row.entity not in pinned]
    for row in doomed:
        db.execute(
            "DELETE FROM journal_events WHERE origin = ? AND seq = ?", (row.origin, row.seq)
        )
        db.execute("DELETE FROM journal_winners WHERE entity = ?", (row.entity,))
        _raise_floor(store, row.origin, row.seq)
    return len(doomed), bound


def _pinned_entities(store: Store, stable: Mapping[str, int]) -> set[str]:
    """Entities with an event stored above the stable floor or in quarantine."""
    pinned: set[str] = set()
    for origin, held in store.vv.items():
        upto = stable.get(origin, 0)
        if held > upto:
            pinned.update(
                entity
                for (entity,) in store.db.execute(
                    "SELECT entity FROM journal_events WHERE origin = ? AND seq > ?",
                    (origin, upto),
                )
            )
    pinned.update(
        entity
        for (entity,) in store.db.execute(
            "SELECT e.entity FROM journal_quarantine q JOIN journal_events e USING (origin, seq)"
        )
    )
    return pinned


def _raise_floor(store: Store, origin: str, seq: int) -> None:
    if seq > store.floor.get(origin, 0):
        store.db.execute("INSERT OR REPLACE INTO journal_floor VALUES (?, ?)", (origin, seq))
        store.floor[origin] = seq


# -- the run -------------------------------------------------------------------------------------


async def run_compaction(
    call: WriterCall, stable: Mapping[str, int], cutoff: int
) -> tuple[int, int, int]:
    """Every superseded event, then every droppable tombstone, a bounded job at a time through
    ``call`` (the writer's); returns (superseded, tombstones, transactions)."""
    superseded = tombstones = transactions = 0
    for origin, upto in sorted(stable.items()):
        cursor = 0
        while cursor < upto:
            removed, cursor = await call(
                partial(drop_superseded, origin=origin, after_seq=cursor, upto=upto)
            )
            superseded += removed
            transactions += 1
    entity: str | None = ""
    while entity is not None:
        removed, entity = await call(
            partial(drop_tombstones, after_entity=entity, stable=stable, cutoff=cutoff)
        )
        tombstones += removed
        transactions += 1
    return superseded, tombstones, transactions
