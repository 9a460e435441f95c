"""Group commit: one writer task, many callers, one fsync per batch.

Callers put a job on a bounded trio memory channel and wait for their own outcome. The writer
task takes whatever is queued (up to ``max_batch`` jobs), runs the batch as ONE transaction in
a worker thread (``Store.run_batch``, through a limiter of one thread) and only then wakes the
callers, so an answered call is a committed, fsync'd one. While a batch's fsync is under way
the next batch queues up, which is why throughput grows with the number of concurrent callers
instead of being capped by the disk's fsync rate.

Cancellation: a caller cancelled before the writer took its job drops the job (it never runs).
Once taken, the job runs and commits or fails as if the caller were still waiting; the caller
only loses the answer, like a client whose request timed out after reaching AWS. The writer
itself never abandons a running transaction: a cancelled writer finishes the batch, answers it,
then fails whatever is still queued with ``JournalClosedError``.

A job submitted ``alone`` (swapping in a snapshot: it closes and reopens the connection) runs
outside any transaction, after the batch before it has committed and before any job queued
after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from zeronode.journal.store import Done, Failed, Outcome, Store

T = TypeVar("T")

DEFAULT_MAX_BATCH = 256
DEFAULT_QUEUE_SIZE = 4096


class JournalClosedError(RuntimeError):
    """The journal closed before this job could run."""


class CommitFailedError(RuntimeError):
    """The batch's transaction failed as a whole (the cause says why); nothing of it happened."""


class _Job:
    __slots__ = ("work", "alone", "outcome", "done", "abandoned")

    def __init__(self, work: Callable[[Store], Any], alone: bool) -> None:
        self.work = work
        self.alone = alone
        self.outcome: Outcome | None = None
        self.done = trio.Event()
        self.abandoned = False

    def finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.done.set()


class GroupCommitWriter:
    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        queue_size: int | float = DEFAULT_QUEUE_SIZE,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[_Job](
            math.inf if queue_size == math.inf else int(queue_size)
        )
        self._thread = trio.CapacityLimiter(1)
        # The version vector and compaction floor as of the last commit, for readers on the
        # trio thread; the store's own copies are the writer thread's, maybe mid-transaction.
        self.position: dict[str, int] = dict(store.vv)
        self.floor: dict[str, int] = dict(store.floor)

    async def call(self, work: Callable[[Store], T], *, alone: bool = False) -> T:
        """Run ``work(store)`` in the next batch; return its value once the batch is durable.

        ``alone``: run it by itself, outside any transaction (``Store.run_alone``).
        """
        job = _Job(work, alone)
        try:
            await self._send.send(job)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise JournalClosedError("the journal is closed") from None
        try:
            await job.done.wait()
        except BaseException:
            job.abandoned = True
            raise
        outcome = job.outcome
        if isinstance(outcome, Failed):
            raise outcome.error
        assert isinstance(outcome, Done)
        return outcome.value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Accept no more jobs; ``run`` returns once everything queued has been committed."""
        self._send.close()

    async def run(self) -> None:
        held_back: _Job | None = None  # an alone job met while filling a batch
        try:
            while True:
                if held_back is None:
                    try:
                        first = await self._receive.receive()
                    except trio.EndOfChannel:
                        break
                else:
                    first, held_back = held_back, None
                if first.alone:
                    if not first.abandoned:
                        await self._run_alone(first)
                    continue
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        job = self._receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    if job.alone:
                        held_back = job
                        break
                    batch.append(job)
                live = [job for job in batch if not job.abandoned]
                if live:
                    await self._commit(live)
        finally:
            if held_back is not None:
                held_back.finish(Failed(_closed()))
            self._fail_queued()

    async def _commit(self, batch: list[_Job]) -> None:
        try:
            outcomes = await trio.to_thread.run_sync(
                self._store.run_batch,
                [job.work for job in batch],
                limiter=self._thread,
                abandon_on_cancel=False,
            )
        except Exception as exc:
            outcomes = [Failed(_commit_failed(exc)) for _ in batch]
        self._publish()
        for job, outcome in zip(batch, outcomes):
            job.finish(outcome)

    async def _run_alone(self, job: _Job) -> None:
        outcome = await trio.to_thread.run_sync(
            self._store.run_alone, job.work, limiter=self._thread, abandon_on_cancel=False
        )
        self._publish()
        job.finish(outcome)

    def _publish(self) -> None:
        self.position = dict(self._store.vv)
        self.floor = dict(self._store.floor)

    def _fail_queued(self) -> None:
        # No checkpoint in here: nothing can be queued between the drain and the close.
        while True:
            try:
                job = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            job.finish(Failed(_closed()))
        self._receive.close()


def _closed() -> JournalClosedError:
    return JournalClosedError("the journal closed before this job ran")


def _commit_failed(cause: Exception) -> CommitFailedError:
    error = CommitFailedError(f"journal transaction failed: {cause!r}")
    error.__cause__ = cause
    return error
