"""The journal's SQLite file, as seen from its single writer thread.

Everything here is synchronous and runs in a worker thread (the writer's, or a reader's): the
trio side is ``writer.py`` and ``journal.py``. One ``Store`` owns the only write connection;
its in-memory copies of the version vector and the clock change only inside its transactions
and are put back when a transaction or a job's savepoint is rolled back.

Tables (prefixed ``journal_`` so no service's projection can collide with them):

- ``journal_events``: the append-only log, ``PRIMARY KEY (origin, seq)``, WITHOUT ROWID; a
  trigger refuses every UPDATE. Rows are deleted by compaction only (``compaction.py``).
- ``journal_meta``: this database's node id and the last persisted hybrid-logical-clock value.
- ``journal_version_vector``: per origin, the highest contiguous seq held.
- ``journal_winners``: per entity, the event the fold shows (hlc, origin, seq, kind, tombstone).
- ``journal_quarantine``: stored events the fold has set aside (unknown kind, unreadable
  payload, a projection that raised), folded again at the next open.
- ``journal_floor``: per origin, the highest seq compaction removed: below it the log may
  have holes, so it cannot serve a peer that still needs those events.
"""

from __future__ import annotations

import fcntl
import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from zeronode.journal.event import Change, Event, decode_state, encode_state, malformation
from zeronode.journal.fold import Stamp, Winner, decide, stamp_of
from zeronode.journal.hlc import HybridLogicalClock
from zeronode.journal.projection import ProjectionSet, UnknownKindError

log = logging.getLogger("zeronode.journal")

JOURNAL_TABLES = (
    "journal_meta",
    "journal_events",
    "journal_version_vector",
    "journal_winners",
    "journal_quarantine",
    "journal_floor",
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS journal_events ("
    " origin TEXT NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL, entity TEXT NOT NULL,"
    " kind TEXT NOT NULL, payload BLOB NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY (origin, seq)) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS journal_events_append_only BEFORE UPDATE ON journal_events"
    " BEGIN SELECT RAISE(ABORT, 'journal_events is append-only'); END",
    "CREATE TABLE IF NOT EXISTS journal_version_vector ("
    " origin TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS journal_winners ("
    " entity TEXT PRIMARY KEY, hlc INTEGER NOT NULL, origin TEXT NOT NULL, seq INTEGER NOT NULL,"
    " kind TEXT NOT NULL, tombstone INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS journal_quarantine ("
    " origin TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,"
    " PRIMARY KEY (origin, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS journal_floor ("
    " origin TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID",
)
EVENT_COLUMNS = "origin, seq, hlc, entity, kind, payload"

Mutation = Callable[[sqlite3.Connection], Sequence[Change]]
FoldResult = Literal["applied", "lost", "quarantined"]


class JournalLockedError(RuntimeError):
    """Another journal (in this or another process) has the database open."""


@dataclass(frozen=True)
class IngestReport:
    """What ``ingest`` did with each offered event.

    ``applied``: stored and folded (whether or not it won its entity). ``quarantined``: stored
    and counted, set aside by the fold. ``duplicates``: already held, same content.
    ``refused``: out of sequence (``seq != vv[origin] + 1``): offer again after its
    predecessors. ``conflicts``: an ``(origin, seq)`` held with different content, or this
    node's own origin ahead of its log: an alarm, never applied. ``malformed``: an envelope
    that cannot be stored at all.
    """

    applied: tuple[Event, ...] = ()
    quarantined: tuple[Event, ...] = ()
    duplicates: int = 0
    refused: tuple[Event, ...] = ()
    conflicts: tuple[Event, ...] = ()
    malformed: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Done:
    value: Any


@dataclass(frozen=True)
class Failed:
    error: BaseException


Outcome = Done | Failed


@dataclass
class StoreStats:
    commits: int = 0
    jobs: int = 0
    local_events: int = 0
    largest_batch: int = 0


@dataclass(eq=False)
class Store:
    """The write side of one journal file. After ``open`` only the writer thread touches it,
    through ``run_batch``; the trio side reads nothing but ints and the ``vv`` it publishes."""

    db: sqlite3.Connection
    path: Path
    projections: ProjectionSet
    node_id: str
    clock: HybridLogicalClock
    wall_clock_ms: Callable[[], int]
    vv: dict[str, int]
    lock_file: IO[str]
    floor: dict[str, int] = field(default_factory=dict)
    stats: StoreStats = field(default_factory=StoreStats)

    @classmethod
    def open(
        cls,
        path: Path,
        projections: ProjectionSet,
        *,
        wall_clock_ms: Callable[[], int],
        max_offset_ms: int,
    ) -> Store:
        lock_file = _lock(path)
        try:
            db, node_id, vv, floor, last = _connect(path, projections)
        except BaseException:
            lock_file.close()
            raise
        clock = HybridLogicalClock(last, max_offset_ms=max_offset_ms)
        store = cls(db, path, projections, node_id, clock, wall_clock_ms, vv, lock_file, floor)
        try:
            (outcome,) = store.run_batch([Store.refold_quarantine])
            if isinstance(outcome, Failed):
                raise outcome.error
            store.stats = StoreStats()  # count the service's commits, not the open's
        except BaseException:
            store.close()
            raise
        return store

    def reopen(self) -> None:
        """Connect again to whatever database file is at ``path`` now (after a snapshot was
        swapped in, see ``snapshot.py``) and reload the vectors and the clock from it.

        The file must carry this node's id: the lock beside it is kept throughout.
        """
        db, node_id, vv, floor, last = _connect(self.path, self.projections)
        if node_id != self.node_id:
            db.close()
            raise RuntimeError(f"{self.path} now belongs to node {node_id}, not {self.node_id}")
        self.db, self.vv, self.floor = db, vv, floor
        self.clock.last = max(self.clock.last, last)

    def close(self) -> None:
        self.db.close()
        self.lock_file.close()

    # -- the writer's transaction ------------------------------------------------------------

    def run_batch(self, work: Sequence[Callable[[Store], Any]]) -> list[Outcome]:
        """Run every job in one transaction, each under its own savepoint, then commit.

        A job that raises is rolled back alone and its exception becomes its outcome. If the
        transaction itself fails (the commit, a full disk), everything is rolled back and the
        exception propagates: no job of the batch happened.
        """
        db = self.db
        vv_before, floor_before = dict(self.vv), dict(self.floor)
        outcomes: list[Outcome] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for job in work:
                vv_job, floor_job = dict(self.vv), dict(self.floor)
                db.execute("SAVEPOINT job")
                try:
                    value = job(self)
                except BaseException as exc:  # delivered to the job's caller, not raised here
                    db.execute("ROLLBACK TO job")
                    db.execute("RELEASE job")
                    self.vv, self.floor = vv_job, floor_job
                    outcomes.append(Failed(exc))
                else:
                    db.execute("RELEASE job")
                    outcomes.append(Done(value))
            db.execute(
                "INSERT OR REPLACE INTO journal_meta VALUES ('hlc', ?)", (self.clock.last,)
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.vv, self.floor = vv_before, floor_before
            raise
        self.stats.commits += 1
        self.stats.jobs += len(work)
        self.stats.largest_batch = max(self.stats.largest_batch, len(work))
        return outcomes

    def run_alone(self, work: Callable[[Store], Any]) -> Outcome:
        """Run ``work`` outside any transaction, for a job that manages the connection itself
        (swapping the database file); the writer runs nothing else meanwhile."""
        try:
            return Done(work(self))
        except BaseException as exc:  # delivered to the job's caller, not raised here
            return Failed(exc)

    def apply_mutation(self, mutation: Mutation) -> list[Event]:
        """Run a service's mutation and append and fold the events of its changes.

        The mutation sees the projections as of every earlier job in the transaction, and may
        only read: its writes are the changes it returns, so a replay of the events always
        rebuilds what it did. ``query_only`` refuses its writes and an authorizer refuses
        transaction control (a COMMIT in there would break the batch's atomicity).
        """
        self.db.execute("PRAGMA query_only = 1")
        self.db.set_authorizer(_read_only_guard)
        try:
            changes = list(mutation(self.db))
        finally:
            self.db.set_authorizer(None)
            self.db.execute("PRAGMA query_only = 0")
        payloads = [self._check_change(change) for change in changes]
        events = []
        for change, payload in zip(changes, payloads):
            seq = self.vv.get(self.node_id, 0) + 1
            hlc = self.clock.now(self.wall_clock_ms())
            event = Event(self.node_id, seq, hlc, change.entity, change.kind, payload)
            self._append(event)
            fold_event(self.db, self.projections, event, total=False)
            events.append(event)
        self.stats.local_events += len(events)
        return events

    def _check_change(self, change: Change) -> bytes:
        if not isinstance(change, Change):
            raise TypeError(f"a mutation returns Changes, not {type(change).__name__}")
        if not isinstance(change.entity, str) or not change.entity:
            raise ValueError(f"a Change's entity is a non-empty string, not {change.entity!r}")
        if change.kind not in self.projections:
            raise UnknownKindError(f"no projection for kind {change.kind!r}")
        return encode_state(change.state)

    def ingest(self, events: Iterable[Event]) -> IngestReport:
        """Store and fold other origins' events, each only if it is its origin's next one."""
        applied: list[Event] = []
        quarantined: list[Event] = []
        refused: list[Event] = []
        conflicts: list[Event] = []
        malformed: list[Event] = []
        duplicates = 0
        wall_ms = self.wall_clock_ms()
        for event in events:
            problem = malformation(event)
            if problem is not None:
                log.error("journal.malformed_event reason=%r event=%.200r", problem, event)
                malformed.append(event)
                continue
            held = self.vv.get(event.origin, 0)
            if event.seq <= held:
                if self._holds_same(event):
                    duplicates += 1
                else:
                    log.error(
                        "journal.conflicting_event origin=%s seq=%d: held with other content",
                        event.origin, event.seq,
                    )
                    conflicts.append(event)
            elif event.seq != held + 1:
                refused.append(event)
            elif event.origin == self.node_id:
                log.error(
                    "journal.own_origin_ahead origin=%s seq=%d held=%d: database restored"
                    " from an old copy?", event.origin, event.seq, held,
                )
                conflicts.append(event)
            else:
                self._append(event)
                if not self.clock.observe(event.hlc, wall_ms):
                    log.warning(
                        "journal.remote_clock_ahead origin=%s seq=%d hlc=%d: stored, not adopted",
                        event.origin, event.seq, event.hlc,
                    )
                result = fold_event(self.db, self.projections, event, total=True)
                (quarantined if result == "quarantined" else applied).append(event)
        return IngestReport(
            tuple(applied), tuple(quarantined), duplicates,
            tuple(refused), tuple(conflicts), tuple(malformed),
        )

    def refold_quarantine(self) -> int:
        """Fold again every quarantined event whose kind now has a projection."""
        return refold_quarantine(self.db, self.projections)

    def _append(self, event: Event) -> None:
        append_event(self.db, event)
        self.vv[event.origin] = event.seq

    def _holds_same(self, event: Event) -> bool:
        row = self.db.execute(
            "SELECT hash FROM journal_events WHERE origin = ? AND seq = ?",
            (event.origin, event.seq),
        ).fetchone()
        # Absent: compaction dropped it, so it was held and folded (a duplicate).
        return row is None or row[0] == event.content_hash


# -- the log and the fold's plumbing (shared by the writer, replay and snapshot install) --------


def append_event(db: sqlite3.Connection, event: Event) -> None:
    """Store ``event`` and advance its origin in the version vector (the caller checked that it
    is the origin's next one)."""
    db.execute(
        f"INSERT INTO journal_events ({EVENT_COLUMNS}, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.origin, event.seq, event.hlc, event.entity, event.kind, event.payload,
         event.content_hash),
    )
    db.execute(
        "INSERT OR REPLACE INTO journal_version_vector VALUES (?, ?)", (event.origin, event.seq)
    )


def refold_quarantine(db: sqlite3.Connection, projections: ProjectionSet) -> int:
    """Fold again every quarantined event whose kind ``projections`` now has."""
    known = sorted(projections)
    if not known:
        return 0
    marks = ",".join("?" * len(known))
    rows = db.execute(
        "SELECT e.origin, e.seq, e.hlc, e.entity, e.kind, e.payload"
        " FROM journal_quarantine q JOIN journal_events e USING (origin, seq)"
        f" WHERE q.kind IN ({marks}) ORDER BY e.origin, e.seq",
        known,
    ).fetchall()
    for row in rows:
        event = Event(*row)
        db.execute(
            "DELETE FROM journal_quarantine WHERE origin = ? AND seq = ?",
            (event.origin, event.seq),
        )
        fold_event(db, projections, event, total=True)
    if rows:
        log.info("journal.quarantine_refolded events=%d", len(rows))
    return len(rows)


def fold_event(
    db: sqlite3.Connection, projections: ProjectionSet, event: Event, *, total: bool
) -> FoldResult:
    """Carry out the fold's decision for one stored event, in the caller's transaction.

    ``total``: a failure to show the event (unreadable payload, a projection raising) sets it
    aside in quarantine instead of raising, as an event from another node must never stop the
    fold. A local event is never folded totally: its failure is its mutation's failure.
    """
    row = db.execute(
        "SELECT hlc, origin, seq, kind, tombstone FROM journal_winners WHERE entity = ?",
        (event.entity,),
    ).fetchone()
    current = Winner(Stamp(row[0], row[1], row[2]), row[3], bool(row[4])) if row else None
    decision = decide(stamp_of(event), event.kind, current, projections.keys())
    if decision.action == "lose":
        return "lost"
    if decision.action == "quarantine":
        _quarantine(db, event, "unknown kind")
        return "quarantined"
    if not total:
        _show(db, projections, event, decision.clear_kind)
        return "applied"
    db.execute("SAVEPOINT fold")
    try:
        _show(db, projections, event, decision.clear_kind)
    except Exception as exc:
        db.execute("ROLLBACK TO fold")
        db.execute("RELEASE fold")
        log.error(
            "journal.fold_failed origin=%s seq=%d kind=%s error=%r",
            event.origin, event.seq, event.kind, exc,
        )
        _quarantine(db, event, f"fold failed: {exc!r}"[:500])
        return "quarantined"
    db.execute("RELEASE fold")
    return "applied"


def _show(
    db: sqlite3.Connection, projections: ProjectionSet, event: Event, clear_kind: str | None
) -> None:
    state = decode_state(event.payload)
    if clear_kind is not None:
        previous = projections.get(clear_kind)
        if previous is None:
            log.warning(
                "journal.stale_rows entity=%s kind=%s: no projection left to clear them",
                event.entity, clear_kind,
            )
        else:
            previous.apply(db, event.entity, None)
    projections[event.kind].apply(db, event.entity, state)
    db.execute(
        "INSERT OR REPLACE INTO journal_winners VALUES (?, ?, ?, ?, ?, ?)",
        (event.entity, event.hlc, event.origin, event.seq, event.kind, int(state is None)),
    )


def _quarantine(db: sqlite3.Connection, event: Event, reason: str) -> None:
    db.execute(
        "INSERT OR REPLACE INTO journal_quarantine VALUES (?, ?, ?, ?)",
        (event.origin, event.seq, event.kind, reason),
    )


_FORBIDDEN_IN_MUTATIONS = frozenset(
    {sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT, sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}
)


def _read_only_guard(
    action: int, arg1: str | None, arg2: str | None, db_name: str | None, source: str | None
) -> int:
    if action in _FORBIDDEN_IN_MUTATIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None:  # setting a pragma, e.g. query_only
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _connect(
    path: Path, projections: ProjectionSet
) -> tuple[sqlite3.Connection, str, dict[str, int], dict[str, int], int]:
    """The write connection to ``path`` in WAL mode with every schema in place (a new file
    gets a new node id): ``(db, node_id, version vector, compaction floor, last hlc)``."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{path}: cannot use WAL mode (got {mode})")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA:
            db.execute(statement)
        projections.create_schema(db)
        node_id = _meta(db, "node_id")
        if node_id is None:
            node_id = secrets.token_hex(16)
            db.execute("INSERT INTO journal_meta VALUES ('node_id', ?)", (node_id,))
            log.info("journal.created path=%s node_id=%s", path, node_id)
        vv = dict(db.execute("SELECT origin, seq FROM journal_version_vector").fetchall())
        floor = dict(db.execute("SELECT origin, seq FROM journal_floor").fetchall())
        last_own = db.execute(
            "SELECT hlc FROM journal_events WHERE origin = ? ORDER BY seq DESC LIMIT 1",
            (node_id,),
        ).fetchone()
        # Our own last event, not every event: a far-future remote one is stored but was
        # never adopted, and a restart must not adopt it either.
        last = max(_meta(db, "hlc") or 0, last_own[0] if last_own else 0)
        db.execute("COMMIT")
    except BaseException:
        db.close()
        raise
    return db, node_id, vv, floor, last


def _meta(db: sqlite3.Connection, key: str) -> Any:
    row = db.execute("SELECT value FROM journal_meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _lock(path: Path) -> IO[str]:
    """An exclusive lock beside the database: two writers would fork the node's own log."""
    lock_file = open(path.with_name(path.name + ".lock"), "a")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise JournalLockedError(f"{path} is open in another journal") from None
    return lock_file
