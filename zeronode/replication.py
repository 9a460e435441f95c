"""A node's replication, assembled from its settings: what the agent runs beside the cluster.

The parts live elsewhere (``cluster/``: the replicator, snapshot serving, the compactor;
``zeronode.storage.replicas``: copies of object bytes); this module only builds them for one
agent, runs them for its life, and gives the services a journal whose writes are
acknowledged by a majority (``ReplicatedJournal``) and the admin surface one status section
for all of them.

The object copies write their bookkeeping (which node holds which blob) to the *local*
journal: only the holder writes its own rows, they need no acknowledgement, and the
replicator's pushers spread them like any other event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from cluster.compaction import Compactor
from cluster.peers import ClusterPeers
from cluster.replication import ReplicatedJournal, ReplicationConfig, Replicator
from cluster.snapshots import serve_snapshots
from zeronode.config import Settings
from zeronode.journal import system_wall_clock_ms
from zeronode.storage import BlobStore
from zeronode.storage.replicas import BlobReplicas, Catalog


@dataclass(frozen=True)
class Replication:
    """The running parts; ``journal`` is the one the services write through."""

    journal: ReplicatedJournal
    replicator: Replicator
    compactor: Compactor
    replicas: BlobReplicas

    async def barrier(self) -> None:
        await self.replicator.barrier()

    def status(self) -> dict[str, Any]:
        return self.replicator.status() | self.compactor.status() | self.replicas.status()


@asynccontextmanager
async def open_replication(
    settings: Settings, journal: Any, blobs: BlobStore, cluster: Any, catalog: Catalog
) -> AsyncIterator[Replication]:
    """Replicate ``journal``, and copies of the blobs ``catalog`` names, over ``cluster`` (a
    running ``ClusterNode``) while the block runs."""
    peers = ClusterPeers(cluster)
    replicator = Replicator(journal, peers, ReplicationConfig(ack=settings.ack))
    replicator.register()
    serve_snapshots(peers, journal)
    compactor = Compactor(
        journal, peers, replicator.known_positions, wall_clock_ms=system_wall_clock_ms
    )
    replicas = BlobReplicas(journal.node_id, blobs, journal, peers, settings.replicas, catalog)
    replicas.register()
    async with trio.open_nursery() as nursery:
        await nursery.start(replicator.run)
        await nursery.start(replicas.run)
        nursery.start_soon(compactor.run)
        yield Replication(
            ReplicatedJournal(journal, replicator), replicator, compactor, replicas
        )
        nursery.cancel_scope.cancel()
