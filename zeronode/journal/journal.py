"""The trio face of one node's journal: submit, ingest, read.

No SQLite call happens on the trio thread. Writes go to the group-commit writer (one thread);
reads run on a small pool of read-only connections, each read in one snapshot transaction,
through a dedicated limiter.
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

from zeronode.journal.event import Event
from zeronode.journal.hlc import DEFAULT_MAX_OFFSET_MS
from zeronode.journal.projection import Projection, ProjectionSet
from zeronode.journal.queries import events_after, quarantined_events, state_digests, state_hash
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
        self._idle_readers = readers
        self._reader_slots = trio.CapacityLimiter(len(readers))
        self._reader_threads = trio.CapacityLimiter(len(readers))
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

    @property
    def clock_healthy(self) -> bool:
        """False while the wall clock is more than the maximum offset behind the HLC."""
        return self._store.clock.healthy(self._store.wall_clock_ms())

    async def state_hash(self) -> str:
        """A digest of the winner table and every projection table (sorted rows)."""
        return await self.read(partial(state_hash, tables=self._store.projections.tables))

    async def state_digests(self) -> dict[str, str]:
        """One digest per table, for pinpointing a difference between two nodes."""
        return await self.read(partial(state_digests, tables=self._store.projections.tables))

    async def events(
        self, after: Mapping[str, int] | None = None, *, limit: int | None = None
    ) -> list[Event]:
        """Stored events not covered by the version vector ``after``, by (origin, seq)."""
        return await self.read(partial(events_after, after=after or {}, limit=limit))

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
            Store.open, path, projection_set,
            wall_clock_ms=wall_clock_ms, max_offset_ms=max_offset_ms,
        )
    )
    reader_dbs: list[sqlite3.Connection] = []
    try:
        reader_dbs = await trio.to_thread.run_sync(_open_readers, path, max(1, readers))
        writer = GroupCommitWriter(store, max_batch=max_batch)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            try:
                yield Journal(store, writer, list(reader_dbs))
            finally:
                writer.close()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_close, store, reader_dbs)


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


def _close(store: Store, readers: list[sqlite3.Connection]) -> None:
    for db in readers:
        db.close()
    store.close()


def _in_snapshot(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    db.execute("BEGIN")
    try:
        return fn(db)
    finally:
        db.execute("ROLLBACK")
