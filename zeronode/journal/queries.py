"""Read-side queries over a journal database: digests, log extracts, the replay reference.

Plain functions of a connection, run by ``Journal.read`` in a reader thread (one snapshot).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

import msgpack

from zeronode.journal.compaction import behind_floor
from zeronode.journal.event import Event
from zeronode.journal.projection import ProjectionSet
from zeronode.journal.store import EVENT_COLUMNS, SCHEMA, fold_event


def state_digests(db: sqlite3.Connection, tables: Sequence[str]) -> dict[str, str]:
    """A BLAKE2b digest per table (the winner table and ``tables``), over sorted rows.

    The winner table's tombstone rows are left out: they show nothing, and compaction removes
    them at its own pace on each node (``compaction.py``), which must not make two nodes that
    show the same state disagree.
    """
    digests = {}
    for table in ("journal_winners", *tables):
        quoted = '"' + table.replace('"', '""') + '"'
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({quoted})")]
        hasher = hashlib.blake2b(msgpack.packb([table, columns]), digest_size=32)
        order = ", ".join(str(i) for i in range(1, len(columns) + 1))
        where = " WHERE tombstone = 0" if table == "journal_winners" else ""
        for row in db.execute(f"SELECT * FROM {quoted}{where} ORDER BY {order}"):
            hasher.update(msgpack.packb(list(row)))
        digests[table] = hasher.hexdigest()
    return digests


def state_hash(db: sqlite3.Connection, tables: Sequence[str]) -> str:
    """One digest of the winner table and the projections' tables: equal state, equal hash."""
    digests = state_digests(db, tables)
    return hashlib.blake2b(msgpack.packb(sorted(digests.items())), digest_size=32).hexdigest()


def events_after(
    db: sqlite3.Connection,
    after: Mapping[str, int],
    limit: int | None,
    max_bytes: int | None = None,
) -> list[Event]:
    """Stored events not covered by the version vector ``after``, by (origin, seq).

    ``limit`` caps the count, ``max_bytes`` the summed payload sizes (at least one event is
    returned whatever its size, so a caller paging with the returned events always advances).
    Each origin's events form a contiguous run from ``after[origin] + 1``, so the result can
    be ingested in order. Raises ``BehindFloor`` if compaction removed events ``after`` lacks
    (the requester needs a snapshot).
    """
    marks = dict(db.execute("SELECT origin, seq FROM journal_floor"))
    refusal = behind_floor(after, marks)
    if refusal is not None:
        raise refusal
    result: list[Event] = []
    size = 0
    origins = [row[0] for row in db.execute("SELECT origin FROM journal_version_vector ORDER BY 1")]
    for origin in origins:
        remaining = -1 if limit is None else limit - len(result)
        if remaining == 0:
            break
        rows = db.execute(
            f"SELECT {EVENT_COLUMNS} FROM journal_events WHERE origin = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (origin, after.get(origin, 0), remaining),
        )
        for row in rows:
            event = Event(*row)
            if max_bytes is not None and result and size + len(event.payload) > max_bytes:
                return result
            size += len(event.payload)
            result.append(event)
    return result


def quarantined_events(db: sqlite3.Connection) -> list[tuple[Event, str]]:
    """Every event the fold has set aside, with the reason."""
    rows = db.execute(
        "SELECT e.origin, e.seq, e.hlc, e.entity, e.kind, e.payload, q.reason"
        " FROM journal_quarantine q JOIN journal_events e USING (origin, seq)"
        " ORDER BY e.origin, e.seq"
    )
    return [(Event(*row[:6]), row[6]) for row in rows]


def replay_state_hash(events: Iterable[Event], projections: ProjectionSet) -> str:
    """The state hash of a fresh database folding ``events`` in (origin, seq) order.

    The reference for "replaying the log from scratch equals the projection": it shares only
    :func:`fold_event` with the live path.
    """
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        db.execute("BEGIN")
        for statement in SCHEMA:
            db.execute(statement)
        projections.create_schema(db)
        for event in sorted(events, key=lambda e: (e.origin, e.seq)):
            fold_event(db, projections, event, total=True)
        db.execute("COMMIT")
        return state_hash(db, projections.tables)
    finally:
        db.close()
