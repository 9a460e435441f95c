"""Nodes made of a real journal and a Replicator on a :class:`SimNetwork`, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from cluster.replication import ReplicationConfig, Replicator
from cluster.snapshots import serve_snapshots
from tests.cluster.sim_network import SimNetwork
from tests.journal.toy import kv_projections, rows
from zeronode.journal import Journal, open_journal

FAST = ReplicationConfig(
    ack_timeout=2.0, barrier_timeout=0.5, pull_interval=(0.05, 0.15), poll_interval=0.1,
    request_timeout=1.0, digest_every=1,
)


@dataclass
class SimNode:
    """One node: its journal file, and while it runs, its journal and replicator."""

    path: Path
    config: ReplicationConfig
    wall_clock_ms: Callable[[], int] | None = None  # default: the system's
    journal: Journal | None = None
    replicator: Replicator | None = None
    scope: trio.CancelScope | None = None
    stopped: trio.Event = field(default_factory=trio.Event)

    @property
    def id(self) -> str:
        assert self.journal is not None
        return self.journal.node_id

    @property
    def repl(self) -> Replicator:
        assert self.replicator is not None
        return self.replicator

    async def kv(self) -> dict[str, Any]:
        assert self.journal is not None
        return await self.journal.read(rows)


@dataclass
class SimCluster:
    network: SimNetwork
    nodes: list[SimNode]
    nursery: trio.Nursery
    projections: Callable[[], list[Any]] = kv_projections

    async def start(self, node: SimNode, *, voter: bool = True) -> None:
        """Open the node's journal (new or persisted) and run its replicator."""
        node.stopped = trio.Event()
        await self.nursery.start(self._run, node, voter)

    async def _run(self, node: SimNode, voter: bool, task_status: Any) -> None:
        try:
            with trio.CancelScope() as node.scope:
                clock = {} if node.wall_clock_ms is None else {"wall_clock_ms": node.wall_clock_ms}
                async with open_journal(node.path, self.projections(), **clock) as journal:
                    peers = self.network.peers(journal.node_id, voter=voter)
                    try:
                        node.journal = journal
                        node.replicator = Replicator(
                            journal, peers, node.config, rng=self.network.rng
                        )
                        node.replicator.register()
                        serve_snapshots(peers, journal)
                        self.network.bring_up(journal.node_id)
                        async with trio.open_nursery() as inner:
                            await inner.start(node.replicator.run)
                            task_status.started()
                    finally:
                        with trio.CancelScope(shield=True):
                            await peers.aclose()  # its handlers end before its journal closes
        finally:
            node.journal = None
            node.stopped.set()

    async def stop(self, node: SimNode) -> None:
        """Stop the node as a crash would (its journal keeps what it committed)."""
        self.network.take_down(node.id)
        assert node.scope is not None
        node.scope.cancel()
        await node.stopped.wait()

    async def converged(self, nodes: list[SimNode] | None = None, timeout: float = 10) -> str:
        """Wait until the nodes hold the same version vector and state hash; return it."""
        nodes = self.nodes if nodes is None else nodes
        with trio.fail_after(timeout):
            while True:
                positions = [n.journal.position() for n in nodes if n.journal]
                hashes = {await n.journal.state_hash() for n in nodes if n.journal}
                if len(hashes) == 1 and all(p == positions[0] for p in positions):
                    return hashes.pop()
                await trio.sleep(0.05)


@asynccontextmanager
async def sim_cluster(
    tmp_path: Path,
    count: int,
    *,
    network: SimNetwork | None = None,
    config: ReplicationConfig = FAST,
    projections: Callable[[], list[Any]] = kv_projections,
    clocks: Sequence[Callable[[], int] | None] = (),
) -> AsyncIterator[SimCluster]:
    network = network or SimNetwork()
    async with trio.open_nursery() as nursery, network.running():
        nodes = [
            SimNode(tmp_path / f"node{i}.sqlite3", config, clocks[i] if clocks else None)
            for i in range(count)
        ]
        cluster = SimCluster(network, nodes, nursery, projections)
        for node in nodes:
            await cluster.start(node)
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()
