"""The trio face of one node's journal: submit, ingest, read, compact, snapshot.

No SQLite call happens on the trio thread. Writes go to the group-commit writer (one thread);
reads run on a small pool of read-only connections, each read in one snapshot transaction,
through a dedicated limiter. Compaction runs as bounded writer jobs (``compaction.py``);
installing a snapshot takes every reader slot and has the writer swap the file
(``snapshot.py``). The two never overlap.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import trio

from zeronode.journal.compaction import (
    DEFAULT_TOMBSTONE_GRACE_MS,
    CompactionReport,
    run_compaction,
    stable_floor,
    tombstone_cutoff,
)
from zeronode.journal.event import Event
from zeronode.journal.hlc import DEFAULT_MAX_OFFSET_MS
from zeronode.journal.projection import Projection, ProjectionSet
from zeronode.journal.queries import events_after, quarantined_events, state_digests, state_hash
from zeronode.journal.snapshot import (
    SnapshotInfo,
    check_dominates,
    install_staged,
    remove_staged,
    stage_snapshot,
    staging_path,
    write_snapshot,
)
from zeronode.journal.store import IngestReport, Mutation, Store
from zeronode.journal.writer import DEFAULT_MAX_BATCH, GroupCommitWriter

T = TypeVar("T")

DEFAULT_READERS = 4


def system_wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class JournalStats:
    """Writer counters since the journal was opened (``commits`` counts fsync'd transactions)."""

    commits: int
    jobs: int
    local_events: int
    largest_batch: int


class Journal:
    """One node's journal; obtain it from :func:`open_journal`."""

    def __init__(
        self,
        store: Store,
        writer: GroupCommitWriter,
        readers: list[sqlite3.Connection],
    ) -> None:
        self._store = store
        self._writer = writer
        self._readers = list(readers)  # every open reader, idle or not
        self._idle_readers = list(readers)
        self._reader_count = len(readers)
        self._reader_slots = trio.Semaphore(len(readers))
        self._reader_threads = trio.CapacityLimiter(len(readers))
        self._maintenance = trio.Lock()  # one compaction or snapshot install at a time
        self.node_id: str = store.node_id
        self.path: Path = store.path

    async def submit(self, mutation: Mutation) -> list[Event]:
        """Run ``mutation`` in the writer's transaction; return its events once durable.

        ``mutation(db)`` runs on the writer thread under a savepoint of its own, sees every
        earlier mutation of the batch, may only read, and returns the Changes to append. If it
        raises, nothing of it remains and the exception is raised here; the batch's other
        mutations are unaffected. A Change of a kind no projection handles raises
        ``UnknownKindError``. Cancelling the caller after the writer took the mutation does not
        stop it (see ``writer.py``).
        """
        return await self._writer.call(partial(Store.apply_mutation, mutation=mutation))

    async def ingest(self, events: Sequence[Event]) -> IngestReport:
        """Store and fold other origins' events, in the order given (see ``IngestReport``).

        An event is taken only if it is its origin's next (``seq == position()[origin] + 1``);
        offer refused ones again after their predecessors. Unknown kinds are quarantined.
        """
        offered = tuple(events)
        return await self._writer.call(lambda store: store.ingest(offered))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(db)`` on a read-only connection in a worker thread, in one snapshot.

        The snapshot includes every submit that returned before ``read`` was called. ``fn``
        is not interrupted by cancellation (keep reads short; page big ones).
        """
        async with self._reader_slots:
            db = self._idle_readers.pop()
            try:
                return await trio.to_thread.run_sync(
                    _in_snapshot, fn, db, limiter=self._reader_threads, abandon_on_cancel=False
                )
            finally:
                self._idle_readers.append(db)

    def position(self) -> dict[str, int]:
        """The version vector: per origin, the highest contiguous seq this node holds."""
        return dict(self._writer.position)

    def floor(self) -> dict[str, int]:
        """Per origin, the highest seq compaction removed (the log may have holes below it):
        ``events`` refuses a requester behind it with ``BehindFloor``."""
        return dict(self._writer.floor)

    @property
    def clock_healthy(self) -> bool:
        """False while the wall clock is more than the maximum offset behind the HLC."""
        return self._store.clock.healthy(self._store.wall_clock_ms())

    async def state_hash(self) -> str:
        """A digest of the winner table (but its tombstone rows) and every projection table
        (sorted rows): equal on two nodes that show the same state, compacted or not."""
        return await self.read(partial(state_hash, tables=self._store.projections.tables))

    async def state_digests(self) -> dict[str, str]:
        """One digest per table, for pinpointing a difference between two nodes."""
        return await self.read(partial(state_digests, tables=self._store.projections.tables))

    async def events(
        self,
        after: Mapping[str, int] | None = None,
        *,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[Event]:
        """Stored events not covered by the version vector ``after``, by (origin, seq), at
        most ``limit`` of them and about ``max_bytes`` of payload (see ``events_after``).

        Raises ``BehindFloor`` if compaction removed events ``after`` lacks: such a
        requester must install a snapshot (``snapshot``) instead.
        """
        return await self.read(
            partial(events_after, after=after or {}, limit=limit, max_bytes=max_bytes)
        )

    async def compact(
        self,
        floor: Mapping[str, int],
        *,
        now_ms: int,
        grace_ms: int = DEFAULT_TOMBSTONE_GRACE_MS,
    ) -> CompactionReport:
        """Remove the events no member can need any more (see ``compaction.py``).

        ``floor`` is the causal-stability floor (per origin, the lowest seq every durable
        member holds). Superseded events at or below it go; a winning tombstone goes once it
        is also older than ``grace_ms`` at ``now_ms`` and the last event of its entity here.
        Quarantined events stay. Runs as writer jobs of bounded size, between other writes.
        """
        async with self._maintenance:
            superseded, tombstones, transactions = await run_compaction(
                self._writer.call,
                stable_floor(floor, self.position()),
                tombstone_cutoff(now_ms, grace_ms),
            )
        return CompactionReport(superseded, tombstones, transactions, self.floor())

    async def snapshot(self, dest: Path | str) -> SnapshotInfo:
        """Write a consistent copy of the whole database to ``dest`` (replaced atomically).

        Runs in a reader thread with the SQLite backup API: writes go on meanwhile, and the
        copy is the database as of one instant, whose version vector is ``position``. The
        file is a single self-contained SQLite database; ``sha256`` is of its bytes.
        """
        return await self.read(partial(write_snapshot, dest=Path(dest)))

    async def install_snapshot(self, path: Path | str, *, sha256: str) -> None:
        """Replace this journal's database by the snapshot at ``path`` (left untouched).

        Raises ``SnapshotRejected`` (a ``ValueError``), changing nothing, if the file does not
        have SHA-256 ``sha256``, is not a sound journal database, or lacks events this node
        holds of any origin but its own. This node keeps its id and its own events above the
        snapshot's; its clock becomes the later of both. Reads wait while the file is swapped
        and then see the new database; writes queued meanwhile run after the swap. Crash-safe:
        the old or the new database survives, never a mix (see ``snapshot.py``).
        """
        staged = staging_path(self.path)
        async with self._maintenance:
            try:
                manifest = await trio.to_thread.run_sync(
                    stage_snapshot, Path(path), staged, sha256
                )
                check_dominates(manifest.position, self.position(), self.node_id)
                async with self._every_reader_closed():
                    with trio.CancelScope(shield=True):
                        await self._writer.call(
                            partial(install_staged, staged=staged, manifest=manifest), alone=True
                        )
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(remove_staged, self.path)

    @asynccontextmanager
    async def _every_reader_closed(self) -> AsyncIterator[None]:
        """Hold every reader slot (waiting for the reads in flight) with the readers closed;
        reopen them on the way out."""
        taken = 0
        try:
            for _ in range(self._reader_count):
                await self._reader_slots.acquire()
                taken += 1
            with trio.CancelScope(shield=True):
                readers, self._readers, self._idle_readers = self._readers, [], []
                await trio.to_thread.run_sync(_close_all, readers)
            try:
                yield
            finally:
                with trio.CancelScope(shield=True):
                    self._readers = await trio.to_thread.run_sync(
                        _open_readers, self.path, self._reader_count
                    )
                    self._idle_readers = list(self._readers)
        finally:
            for _ in range(taken):
                self._reader_slots.release()

    async def quarantined(self) -> list[tuple[Event, str]]:
        """Events stored but set aside by the fold, each with the reason."""
        return await self.read(quarantined_events)

    def stats(self) -> JournalStats:
        s = self._store.stats
        return JournalStats(s.commits, s.jobs, s.local_events, s.largest_batch)


@asynccontextmanager
async def open_journal(
    path: Path | str,
    projections: Sequence[Projection],
    *,
    wall_clock_ms: Callable[[], int] = system_wall_clock_ms,
    max_offset_ms: int = DEFAULT_MAX_OFFSET_MS,
    max_batch: int = DEFAULT_MAX_BATCH,
    readers: int = DEFAULT_READERS,
) -> AsyncIterator[Journal]:
    """Open (creating if new, with a new node id) the journal at ``path``.

    Projection schemas are created, and quarantined events whose kind now has a projection are
    folded, before the journal is handed out. Leaving the block normally commits everything
    already submitted, then closes the database; leaving it by an exception finishes the batch
    under way and fails the queued ones with ``JournalClosedError``.
    """
    path = Path(path)
    projection_set = ProjectionSet(projections)
    store = await trio.to_thread.run_sync(
        partial(
            _open_store, path, projection_set,
            wall_clock_ms=wall_clock_ms, max_offset_ms=max_offset_ms,
        )
    )
    reader_dbs: list[sqlite3.Connection] = []
    journal: Journal | None = None
    try:
        reader_dbs = await trio.to_thread.run_sync(_open_readers, path, max(1, readers))
        writer = GroupCommitWriter(store, max_batch=max_batch)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            try:
                journal = Journal(store, writer, reader_dbs)
                yield journal
            finally:
                writer.close()
    finally:
        with trio.CancelScope(shield=True):
            if journal is not None:
                # A read still running in a thread (its caller outside this block) must end
                # before its connection closes; a snapshot install may have replaced them.
                for _ in range(journal._reader_count):
                    await journal._reader_slots.acquire()
                reader_dbs = journal._readers
            await trio.to_thread.run_sync(_close, store, reader_dbs)


def _open_store(
    path: Path, projections: ProjectionSet, *, wall_clock_ms: Callable[[], int], max_offset_ms: int
) -> Store:
    store = Store.open(
        path, projections, wall_clock_ms=wall_clock_ms, max_offset_ms=max_offset_ms
    )
    remove_staged(path)  # a snapshot install interrupted by a crash (we hold the lock now)
    return store


def _open_readers(path: Path, count: int) -> list[sqlite3.Connection]:
    dbs = []
    for _ in range(count):
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True,
            isolation_level=None, check_same_thread=False,
        )
        db.execute("PRAGMA query_only = 1")
        dbs.append(db)
    return dbs


def _close_all(readers: list[sqlite3.Connection]) -> None:
    for db in readers:
        db.close()


def _close(store: Store, readers: list[sqlite3.Connection]) -> None:
    _close_all(readers)
    store.close()


def _in_snapshot(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    db.execute("BEGIN")
    try:
        return fn(db)
    finally:
        db.execute("ROLLBACK")
