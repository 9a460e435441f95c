"""The view of the cluster that replication, forwarding and blob copies are written against.

Those layers need four things from the cluster: who votes (the durable members), who is
reachable now (SWIM's opinion), a way to call a peer, and a way to stream bytes to and from
one. :class:`Peers` names exactly that, so each layer can be driven in tests by a simulated
network (``tests/cluster/sim_network.py``) and in the agent by :class:`ClusterPeers`, the
adapter over the running :class:`~cluster.node.ClusterNode`.

Failure is always a :class:`~cluster.transport.TransportError` (``PeerUnreachable`` for a
peer with no known address or a refused connection, ``RequestTimeout``, ``RemoteError``), so
callers have one thing to catch whichever implementation runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from cluster.swim import ALIVE, SUSPECT
from cluster.transport import BulkHandler, BulkStream, Handler, PeerUnreachable

__all__ = ["ClusterPeers", "Peers"]


class Peers(Protocol):
    """This node's peers, as the layers above membership see them."""

    @property
    def node_id(self) -> str: ...

    def voters(self) -> frozenset[str]:
        """The durable members, this node included (quorums are majorities of this set)."""
        ...

    def reachable(self) -> frozenset[str]:
        """Other members SWIM holds alive or suspect (not dead, left or evicted)."""
        ...

    async def request(
        self, peer: str, method: str, payload: Any, *, timeout: float | None = None
    ) -> Any:
        """Call ``method`` on ``peer``; raises ``TransportError`` on any failure."""
        ...

    def open_bulk(
        self, peer: str, method: str, header: Any
    ) -> AbstractAsyncContextManager[BulkStream]:
        """A bulk transfer to ``method`` on ``peer`` (see ``Transport.open_bulk``)."""
        ...

    def on(self, method: str, handler: Handler) -> None:
        """Serve ``method``: ``async handler(peer_id, payload) -> reply``."""
        ...

    def on_bulk(self, method: str, handler: BulkHandler) -> None:
        """Serve bulk transfers to ``method``: ``async handler(peer_id, header, bulk)``."""
        ...


class ClusterPeers:
    """:class:`Peers` over a running :class:`~cluster.node.ClusterNode`."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    @property
    def node_id(self) -> str:
        return str(self._cluster.node_id)

    def voters(self) -> frozenset[str]:
        return frozenset(self._cluster.voters) | {self.node_id}

    def reachable(self) -> frozenset[str]:
        swim = self._cluster.swim
        if swim is None:
            return frozenset()
        evicted = self._cluster.identity.evicted
        return frozenset(
            member.node_id
            for member in swim.members()[1:]
            if member.state in (ALIVE, SUSPECT) and member.node_id not in evicted
        )

    def _address(self, peer: str) -> tuple[str, int]:
        address = ""
        swim = self._cluster.swim
        member = swim.member(peer) if swim is not None else None
        if member is not None:
            address = member.address
        address = address or self._cluster.voters.get(peer, "")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or peer in self._cluster.identity.evicted:
            raise PeerUnreachable(f"no address known for node {peer}")
        return host.strip("[]"), int(port)

    def _transport(self) -> Any:
        transport = self._cluster.transport
        if transport is None:
            raise PeerUnreachable("this node is not a cluster member yet")
        return transport

    async def request(
        self, peer: str, method: str, payload: Any, *, timeout: float | None = None
    ) -> Any:
        transport = self._transport()
        return await transport.request(
            peer, self._address(peer), method, payload, timeout=timeout
        )

    @asynccontextmanager
    async def open_bulk(self, peer: str, method: str, header: Any) -> AsyncIterator[BulkStream]:
        transport = self._transport()
        async with transport.open_bulk(peer, self._address(peer), method, header) as bulk:
            yield bulk

    def on(self, method: str, handler: Handler) -> None:
        self._cluster.on(method, handler)

    def on_bulk(self, method: str, handler: BulkHandler) -> None:
        self._cluster.on_bulk(method, handler)
