"""Replication between real journals over a simulated network (``sim_network.py``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from cluster.replication import (
    QuorumUnavailable,
    _OwnTail,
    ReplicatedJournal,
    decode_events,
    encode_events,
    majority,
)
from tests.cluster.replication_harness import FAST, sim_cluster
from tests.cluster.sim_network import Faults, SimNetwork
from tests.journal.toy import KeyValueProjection, delete, put
from zeronode.journal import Event


def test_a_majority_of_n_voters() -> None:
    assert [majority(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def test_events_survive_their_wire_form_and_bad_shapes_are_refused() -> None:
    event = Event("a" * 32, 1, 5, "e", "k", b"\x80")
    assert decode_events(encode_events([event])) == [event]
    for bad in ({"x": 1}, [[1, 2, 3]], ["nope"]):
        with pytest.raises(ValueError):
            decode_events(bad)


def test_the_own_tail_serves_only_an_unbroken_run_up_to_the_journals_position() -> None:
    def ev(seq: int, size: int = 1) -> Event:
        return Event("a" * 32, seq, seq, "e", "k", b"x" * size)

    tail = _OwnTail(4)
    assert tail.after(0, 1, 100) is None
    tail.add([ev(1), ev(2), ev(3)])
    assert [e.seq for e in tail.after(1, 3, 100)] == [2, 3]
    assert tail.after(1, 4, 100) is None  # seq 4 went straight to the journal: not held
    assert [e.seq for e in tail.after(0, 3, 2)] == [1, 2]  # a page of about max_bytes
    assert [e.seq for e in tail.after(0, 3, 0)] == [1]  # one event at least
    tail.add([ev(4), ev(5)])  # the oldest falls out
    assert tail.after(0, 5, 100) is None
    assert [e.seq for e in tail.after(1, 5, 100)] == [2, 3, 4, 5]
    tail.add([ev(7)])  # a gap: the run restarts
    assert tail.after(5, 7, 100) is None
    assert [e.seq for e in tail.after(6, 7, 100)] == [7]


async def test_a_single_node_is_its_own_majority(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, 1) as cluster:
        (a,) = cluster.nodes
        with trio.fail_after(1):
            await a.repl.commit(put("k", 1))
            await a.repl.barrier()
        assert await a.kv() == {"k": {"v": 1}}


async def test_an_acknowledged_write_is_readable_at_once_on_every_node(tmp_path: Path) -> None:
    # Slow links: the write is acknowledged by a majority, the third node hears of it
    # through the barrier (its own push may still be on its way).
    network = SimNetwork(faults=Faults(delay=(0.001, 0.03)))
    async with sim_cluster(tmp_path, 3, network=network) as cluster:
        a, b, c = cluster.nodes
        for i in range(20):
            writer, reader = cluster.nodes[i % 3], cluster.nodes[(i + 1) % 3]
            await writer.repl.commit(put(f"k{i}", i))
            await reader.repl.barrier()
            assert (await reader.kv())[f"k{i}"] == {"v": i}
        await cluster.converged()


async def test_a_minority_refuses_writes_without_storing_them_and_still_serves_reads(
    tmp_path: Path,
) -> None:
    async with sim_cluster(tmp_path, 3) as cluster:
        a, b, c = cluster.nodes
        await a.repl.commit(put("k", "before"))
        cluster.network.partition([a.id], [b.id, c.id])
        held = a.journal.position()
        with pytest.raises(QuorumUnavailable):
            await a.repl.commit(put("k", "minority"))
        assert a.journal.position() == held and a.repl.status()["refused_writes"] == 1
        with trio.fail_after(FAST.barrier_timeout + 1):
            await a.repl.barrier()  # no majority answers: serves what it holds
        assert await a.kv() == {"k": {"v": "before"}}
        assert a.repl.status()["writable"] is False
        await b.repl.commit(put("k", "majority"))
        await c.repl.barrier()
        assert await c.kv() == {"k": {"v": "majority"}}
        cluster.network.heal()
        await cluster.converged()
        assert await a.kv() == {"k": {"v": "majority"}}


async def test_with_ack_local_both_sides_write_and_converge_by_last_writer_wins(
    tmp_path: Path,
) -> None:
    config = dataclasses.replace(FAST, ack="local")
    async with sim_cluster(tmp_path, 3, config=config) as cluster:
        a, b, c = cluster.nodes
        cluster.network.partition([a.id], [b.id, c.id])
        await a.repl.commit(put("k", "a"))
        await a.repl.commit(put("only-a", 1))
        await trio.sleep(0.01)
        await b.repl.commit(put("k", "b"))  # later: it wins
        cluster.network.heal()
        await cluster.converged()
        for node in cluster.nodes:
            assert await node.kv() == {"k": {"v": "b"}, "only-a": {"v": 1}}


async def test_a_node_that_was_down_catches_up_including_a_dead_origins_events(
    tmp_path: Path,
) -> None:
    async with sim_cluster(tmp_path, 3) as cluster:
        a, b, c = cluster.nodes
        await cluster.stop(c)
        for i in range(50):
            await a.repl.commit(put(f"k{i}", i))
        await a.repl.commit(delete("k0"))
        await cluster.stop(a)  # a's events now live on b alone
        await cluster.start(c)
        await cluster.converged([b, c])
        assert len(await c.kv()) == 49 and "k0" not in await c.kv()


async def test_a_lossy_duplicating_network_still_converges(tmp_path: Path) -> None:
    network = SimNetwork(faults=Faults(drop=0.2, duplicate=0.2, delay=(0, 0.02)))
    config = dataclasses.replace(FAST, ack="local")
    async with sim_cluster(tmp_path, 3, network=network, config=config) as cluster:
        async with trio.open_nursery() as writers:
            for n, node in enumerate(cluster.nodes):
                async def write(node=node, n=n) -> None:  # type: ignore[no-untyped-def]
                    for i in range(30):
                        await node.repl.commit(put(f"k{i % 7}", f"{n}-{i}"))
                writers.start_soon(write)
        network.faults = Faults()
        await cluster.converged(timeout=20)


async def test_an_acknowledgement_that_never_comes_times_out_but_the_write_stays(
    tmp_path: Path,
) -> None:
    config = dataclasses.replace(FAST, ack_timeout=0.3)
    async with sim_cluster(tmp_path, 3, config=config) as cluster:
        a, b, c = cluster.nodes
        await a.repl.commit(put("k", 1))
        saved = {n.id: dict(cluster.network.node(n.id).handlers) for n in cluster.nodes}

        async def swallow(peer: str, payload: object) -> object:
            await trio.sleep_forever()

        # Everyone reachable and answering barriers, yet no event of a's gets through.
        for node, method in ((b, "repl.push"), (c, "repl.push"), (a, "repl.pull")):
            cluster.network.node(node.id).handlers[method] = swallow
        with pytest.raises(QuorumUnavailable, match="stored"):
            await a.repl.commit(put("k", 2))
        assert await a.kv() == {"k": {"v": 2}} and a.repl.status()["ack_timeouts"] == 1
        for node_id, handlers in saved.items():
            cluster.network.node(node_id).handlers.update(handlers)
        await cluster.converged()


async def test_a_node_behind_a_peers_compaction_installs_its_snapshot(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, 2) as cluster:
        a, b = cluster.nodes
        for i in range(30):
            await a.repl.commit(put("k", i))
        await cluster.converged()
        for node in (a, b):
            await node.journal.compact(node.journal.position(), now_ms=0)
            assert node.journal.floor()
        cluster.nodes.append(newcomer := type(a)(tmp_path / "new.sqlite3", FAST))
        await cluster.start(newcomer)
        await cluster.converged(timeout=10)
        assert newcomer.repl.status()["snapshots_installed"] == 1
        assert await newcomer.kv() == {"k": {"v": 29}}


async def test_an_event_held_with_other_content_raises_the_alarm(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, 2) as cluster:
        a, b = cluster.nodes
        (event,) = await a.repl.commit(put("k", 1))
        await cluster.converged()
        forged = dataclasses.replace(event, payload=b"\xc0")
        reply = await a.repl._peers.request(b.id, "repl.push",  # noqa: SLF001 - the wire
                                            {"events": encode_events([forged])})
        assert reply["vv"][a.id] == 1 and b.repl.status()["conflicts"] == 1
        assert await b.kv() == {"k": {"v": 1}}


async def test_an_unknown_kind_is_quarantined_on_the_node_that_lacks_it(
    tmp_path: Path,
) -> None:
    def newer() -> list[KeyValueProjection]:
        return [KeyValueProjection("test.kv", "kv"), KeyValueProjection("test.new", "new")]

    async with sim_cluster(tmp_path, 1, projections=newer) as cluster:
        (a,) = cluster.nodes
        await a.repl.commit(put("n", 1, kind="test.new"))
        cluster.projections = lambda: [KeyValueProjection("test.kv", "kv")]
        old = type(a)(tmp_path / "old.sqlite3", FAST)
        cluster.nodes.append(old)
        await cluster.start(old)
        with trio.fail_after(5):
            while old.journal.position() != a.journal.position():
                await trio.sleep(0.02)
        assert old.repl.status()["quarantined"] == 1
        assert [e.kind for e, _ in await old.journal.quarantined()] == ["test.new"]


async def test_the_replicated_journal_submits_through_commit(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, 3) as cluster:
        a, b, c = cluster.nodes
        journal = ReplicatedJournal(a.journal, a.repl)
        await journal.submit(put("k", 1))
        assert journal.node_id == a.id and journal.local is a.journal
        cluster.network.partition([a.id], [b.id, c.id])
        with pytest.raises(QuorumUnavailable):
            await journal.submit(put("k", 2))


async def test_a_request_barrier_serves_its_first_commit_and_only_that(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, 3) as cluster:
        a = cluster.nodes[0]
        replicator = a.repl
        await replicator.barrier()
        rounds = replicator._next_round  # noqa: SLF001 - counting barrier rounds
        await replicator.commit(put("k", 1))
        assert replicator._next_round == rounds  # noqa: SLF001 - the request's barrier served
        await replicator.commit(put("k", 2))
        assert replicator._next_round == rounds + 1  # noqa: SLF001 - a second write syncs again
