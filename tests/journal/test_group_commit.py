"""Group commit: concurrent submits share transactions; each answer means durable."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.journal.toy import BOOM, KV, delete, kv_projections, put, rows
from zeronode.journal import Change, Event, JournalClosedError, UnknownKindError, open_journal


class Refused(Exception):
    """What a service's mutation raises (an AWSError in real life)."""


async def test_200_concurrent_submits_share_a_few_transactions(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    results: dict[int, list[Event]] = {}
    async with open_journal(path, kv_projections()) as journal:

        async def submit(i: int) -> None:
            results[i] = await journal.submit(put(f"k/{i}", i))

        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(submit, i)
        stats = journal.stats()
        node = journal.node_id
    assert stats.jobs == 200
    assert stats.commits <= 20, stats
    assert sorted(e.seq for events in results.values() for e in events) == list(range(1, 201))
    # Every answered submit is in the file (reopened from scratch).
    async with open_journal(path, kv_projections()) as journal:
        assert journal.node_id == node
        assert journal.position() == {node: 200}
        assert await journal.read(rows) == {f"k/{i}": {"v": i} for i in range(200)}


async def test_a_failing_mutation_leaves_no_trace_and_spares_its_batch(tmp_path: Path) -> None:
    def half_done(db: sqlite3.Connection) -> Sequence[Change]:
        # The first change is appended and shown before the second one's fold raises.
        return [Change("bad/1", KV, {"v": 1}), Change("bad/2", KV, {"v": BOOM})]

    def refuses(db: sqlite3.Connection) -> Sequence[Change]:
        raise Refused("no")

    outcomes: dict[str, object] = {}
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:

        async def submit(name: str, mutation: object) -> None:
            try:
                outcomes[name] = await journal.submit(mutation)  # type: ignore[arg-type]
            except Exception as exc:
                outcomes[name] = exc

        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(submit, f"good{i}", put(f"good/{i}", i))
            nursery.start_soon(submit, "half", half_done)
            nursery.start_soon(submit, "refuses", refuses)
        assert isinstance(outcomes["half"], ValueError)
        assert isinstance(outcomes["refuses"], Refused)
        assert await journal.read(rows) == {f"good/{i}": {"v": i} for i in range(10)}
        events = await journal.events()
        assert [e.seq for e in events] == list(range(1, 11))  # no seq was consumed
        assert {e.entity for e in events} == {f"good/{i}" for i in range(10)}
        assert journal.position() == {journal.node_id: 10}
        assert journal.stats().commits < 12


async def test_mutations_of_one_batch_see_each_other(tmp_path: Path) -> None:
    def create(name: str):  # type: ignore[no-untyped-def]
        def mutation(db: sqlite3.Connection) -> Sequence[Change]:
            if rows(db).get(name) is not None:
                raise Refused(f"{name} exists")
            return [Change(name, KV, {"v": "created"})]

        return mutation

    wins = 0
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:

        async def attempt() -> None:
            nonlocal wins
            try:
                await journal.submit(create("bucket"))
                wins += 1
            except Refused:
                pass

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(attempt)
        assert wins == 1
        assert len(await journal.events()) == 1


async def test_a_mutation_may_only_read(tmp_path: Path) -> None:
    def writes_directly(db: sqlite3.Connection) -> Sequence[Change]:
        db.execute("INSERT INTO kv VALUES ('sneaky', '{}')")
        return []

    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await journal.submit(writes_directly)
        await journal.submit(put("a", 1))  # the connection is writable again afterwards
        assert await journal.read(rows) == {"a": {"v": 1}}


@pytest.mark.parametrize("statement", ["COMMIT", "SAVEPOINT x", "PRAGMA query_only = 0"])
async def test_a_mutation_may_not_control_the_transaction(tmp_path: Path, statement: str) -> None:
    def meddles(db: sqlite3.Connection) -> Sequence[Change]:
        db.execute(statement)
        return [Change("meddled", KV, {"v": 1})]

    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            await journal.submit(meddles)
        await journal.submit(put("a", 1))
        assert await journal.read(rows) == {"a": {"v": 1}}


async def test_submit_after_close_is_refused(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        pass
    with pytest.raises(JournalClosedError):
        await journal.submit(put("late", 1))


async def test_unknown_kind_or_bad_state_from_submit_is_a_programming_error(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        with pytest.raises(UnknownKindError):
            await journal.submit(lambda db: [Change("x", "no.such.kind", {})])
        with pytest.raises(TypeError):
            await journal.submit(lambda db: [Change("x", KV, ["not", "a", "dict"])])  # type: ignore[arg-type]
        assert await journal.events() == []
        assert await journal.submit(lambda db: []) == []


async def test_a_cancelled_caller_does_not_undo_a_taken_write(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(db: sqlite3.Connection) -> Sequence[Change]:
        started.set()
        release.wait(10)
        return [Change("taken", KV, {"v": 1})]

    async with open_journal(tmp_path / "j.db", kv_projections()) as journal:
        taken, queued = trio.CancelScope(), trio.CancelScope()

        async def submit(scope: trio.CancelScope, mutation: object) -> None:
            with scope:
                await journal.submit(mutation)  # type: ignore[arg-type]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit, taken, slow)
            await trio.to_thread.run_sync(started.wait)  # the writer runs `slow` now
            nursery.start_soon(submit, queued, put("queued", 2))
            await trio.testing.wait_all_tasks_blocked()
            taken.cancel()
            queued.cancel()
            await trio.testing.wait_all_tasks_blocked()
            release.set()
        assert taken.cancelled_caught and queued.cancelled_caught
        await journal.submit(delete("nothing"))  # a barrier: the writer finished `slow`
        assert await journal.read(rows) == {"taken": {"v": 1}}


async def test_leaving_the_block_commits_what_was_submitted(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with open_journal(path, kv_projections()) as journal:
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(journal.submit, put(f"k/{i}", i))
    async with open_journal(path, kv_projections()) as journal:
        assert len(await journal.read(rows)) == 50
