"""An in-process network of :class:`~cluster.peers.Peers` for tests, with seeded faults.

Every node of a test gets a :class:`SimPeers` from one :class:`SimNetwork`, which runs inside
``async with network.running():`` (its nursery runs the callees' bulk handlers).

*Requests* take a msgpack round trip (what the transport would carry) to the callee's handler,
in the caller's task. The network can delay them (uniformly, so concurrent messages reorder),
drop them (the caller's timeout fires) or duplicate them (the handler runs twice). Randomness
comes from one seeded ``Random``, so a failing schedule replays; delays are trio sleeps, so
under ``trio.testing.MockClock`` a simulated hour takes no time.

*Bulk transfers* behave as the transport's: the caller gets one end of a :class:`SimBulk`
pair (two small memory channels, so a sender waits for its reader as over a socket) while the
callee's handler runs in the network's nursery, as the transport runs it in its own: no
nursery spans the caller's ``async with``, so an async generator may yield inside it. Bodies
arrive in chunks of at most :data:`CHUNK`. Faults do not touch bulk bodies (a connection
delivers in order or breaks); a cut does.

*Cuts.* ``partition`` splits the nodes into groups that only reach each other; ``take_down``
stops a node as a crash would (``bring_up`` undoes it); ``remove`` is ``zeronode remove``:
the node stops voting and is unreachable for good. Whatever cuts two nodes apart breaks their
open transfers at once, and a node taken down loses the handlers it was running, whichever
task runs them (a request's handler runs in its caller's): their callers see
``PeerUnreachable``, as when a connection resets. Before a node closes what its handlers use
(its journal), ``await peers.aclose()`` waits for them to end.

Failures are the transport's: a cut-off or unknown node is ``PeerUnreachable`` to dial and
mid-transfer, a lost request is ``RequestTimeout``, an unknown method is
``RemoteError("UnknownMethod")``, a handler that raises is ``RemoteError("HandlerFailed")``,
and a transfer closed without an end of body is ``PeerUnreachable`` on the other side, never
a clean end.

A node's *view* of who is reachable trails the network by ``membership_lag`` seconds (SWIM
needs a few protocol periods to notice a partition or a crash); dialing sees the network as
it is.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio

from cluster.transport import (
    BulkHandler,
    Handler,
    PeerUnreachable,
    RemoteError,
    RequestTimeout,
    TransportError,
)

#: The transport splits bodies into frames of this much; the network delivers no bigger chunk.
CHUNK = 256 * 1024

#: A request's deadline when the caller gives none.
REQUEST_TIMEOUT = 5.0


def _wire(payload: Any) -> Any:
    return msgpack.unpackb(msgpack.packb(payload, use_bin_type=True), raw=False)


@dataclass
class Faults:
    """Per-message fault probabilities and the delay range, in seconds."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)


@dataclass
class SimNetwork:
    """The nodes, who votes, and what cuts them apart.

    ``voters`` may be edited by hand (a voter taken out of it is as good as removed);
    ``faults`` may be replaced at any time.
    """

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    faults: Faults = field(default_factory=Faults)
    voters: set[str] = field(default_factory=set)
    membership_lag: float = 0.0
    _non_voters: set[str] = field(default_factory=set)
    _down: set[str] = field(default_factory=set)
    _groups: list[frozenset[str]] | None = None
    _nodes: dict[str, SimPeers] = field(default_factory=dict)
    _transfers: set[tuple[SimBulk, SimBulk]] = field(default_factory=set)  # (caller's, callee's)
    _nursery: trio.Nursery | None = None
    # (time, groups, down) after each change, for the lagging views
    _history: list[tuple[float, list[frozenset[str]] | None, frozenset[str]]] = field(
        default_factory=list
    )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SimNetwork]:
        """Serve bulk transfers while the block runs; leaving it ends those still open."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield self
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()

    def peers(self, node_id: str, *, voter: bool = True) -> SimPeers:
        """The node's view (a fresh one after a restart: handlers are registered again)."""
        peers = SimPeers(self, node_id)
        self._nodes[node_id] = peers
        (self.voters if voter else self._non_voters).add(node_id)
        return peers

    def node(self, node_id: str) -> SimPeers:
        return self._nodes[node_id]

    def members(self) -> frozenset[str]:
        """The nodes others may see: registered voters and non-voters, none removed."""
        return frozenset((self.voters | self._non_voters) & self._nodes.keys())

    def remove(self, node_id: str) -> None:
        """``zeronode remove``: no longer a voter, and unreachable (evicted)."""
        self.voters.discard(node_id)
        self._non_voters.discard(node_id)
        self.take_down(node_id)

    def take_down(self, node_id: str) -> None:
        self._down.add(node_id)
        self._changed()
        if node_id in self._nodes:
            self._nodes[node_id]._stop_serving()

    def bring_up(self, node_id: str) -> None:
        self._down.discard(node_id)
        self._changed()

    @property
    def down(self) -> frozenset[str]:
        return frozenset(self._down)

    def partition(self, *groups: Iterable[str]) -> None:
        """Only nodes in the same group reach each other until ``heal``."""
        self._groups = [frozenset(group) for group in groups]
        self._changed()

    def heal(self) -> None:
        self._groups = None
        self._changed()

    def connected(self, a: str, b: str) -> bool:
        return _connected(a, b, self._groups, self._down)

    def seen_connected(self, a: str, b: str) -> bool:
        """``connected`` as a node's membership view has it, ``membership_lag`` late."""
        if not self.membership_lag or not self._history:
            return self.connected(a, b)
        when = trio.current_time() - self.membership_lag
        groups, down = None, frozenset[str]()
        for changed_at, then_groups, then_down in self._history:
            if changed_at > when:
                break
            groups, down = then_groups, then_down
        return _connected(a, b, groups, down)

    def _changed(self) -> None:
        self._history.append((trio.current_time(), self._groups, frozenset(self._down)))
        del self._history[:-64]
        for mine, theirs in list(self._transfers):
            if not self.connected(mine.me, theirs.me):
                mine.close()  # the connection breaks: both ends fail from now on
                theirs.close()

    def _callee(self, caller: str, peer: str) -> SimPeers:
        callee = self._nodes.get(peer)
        if callee is None or callee.closed or not self.connected(caller, peer):
            raise PeerUnreachable(f"{peer} is not reachable from {caller}")
        return callee

    async def _hop(self) -> bool:
        """One message's trip: its delay, then whether it arrives."""
        low, high = self.faults.delay
        if high > 0:
            await trio.sleep(self.rng.uniform(low, high))
        return self.rng.random() >= self.faults.drop

    def _start_transfer(
        self, callee: SimPeers, handler: BulkHandler, header: Any, ends: tuple[SimBulk, SimBulk]
    ) -> None:
        if self._nursery is None:
            raise PeerUnreachable("the network is not running (use `async with running()`)")
        self._transfers.add(ends)
        self._nursery.start_soon(self._serve, callee, handler, header, ends)

    async def _serve(
        self, callee: SimPeers, handler: BulkHandler, header: Any, ends: tuple[SimBulk, SimBulk]
    ) -> None:
        """What ``Transport._serve_bulk`` does with a handler."""
        mine, bulk = ends
        try:
            with callee._serving():
                try:
                    await handler(mine.me, header, bulk)
                    await bulk.send_eof()
                except TransportError:
                    raise
                except Exception as error:  # noqa: BLE001 - the caller sees HandlerFailed
                    await bulk.send_error("HandlerFailed", repr(error))
        except TransportError:
            pass
        finally:
            bulk.close()
            self._transfers.discard(ends)


def _connected(
    a: str, b: str, groups: list[frozenset[str]] | None, down: frozenset[str] | set[str]
) -> bool:
    if a in down or b in down:
        return False
    return groups is None or any(a in group and b in group for group in groups)


class SimPeers:
    """One node's :class:`~cluster.peers.Peers` on a :class:`SimNetwork`."""

    def __init__(self, network: SimNetwork, node_id: str) -> None:
        self._net = network
        self._id = node_id
        self.handlers: dict[str, Handler] = {}
        self.bulk_handlers: dict[str, BulkHandler] = {}
        self.closed = False
        self._handling: set[trio.CancelScope] = set()  # one per handler running
        self._idle = trio.Event()

    @property
    def node_id(self) -> str:
        return self._id

    async def aclose(self) -> None:
        """Stop serving: calls to this node fail from now on, its handlers in flight are
        cancelled, and this returns once they have all ended."""
        self.closed = True
        self._stop_serving()
        while self._handling:
            self._idle = trio.Event()
            await self._idle.wait()

    def _stop_serving(self) -> None:
        for scope in self._handling:
            scope.cancel()

    @contextmanager
    def _serving(self) -> Iterator[None]:
        """Run one of this node's handlers; ``PeerUnreachable`` if the node stops under it."""
        scope = trio.CancelScope()
        self._handling.add(scope)
        try:
            with scope:
                yield
        finally:
            self._handling.discard(scope)
            if not self._handling:
                self._idle.set()
        if scope.cancelled_caught:
            raise PeerUnreachable(f"{self._id} stopped while handling a call")

    def voters(self) -> frozenset[str]:
        return frozenset(self._net.voters) | {self._id}

    def reachable(self) -> frozenset[str]:
        net = self._net
        return frozenset(
            n for n in net.members() if n != self._id and net.seen_connected(self._id, n)
        )

    def on(self, method: str, handler: Handler) -> None:
        self.handlers[method] = handler

    def on_bulk(self, method: str, handler: BulkHandler) -> None:
        self.bulk_handlers[method] = handler

    async def request(
        self, peer: str, method: str, payload: Any, *, timeout: float | None = None
    ) -> Any:
        timeout = REQUEST_TIMEOUT if timeout is None else timeout
        with trio.move_on_after(timeout):
            return await self._deliver(peer, method, payload)
        raise RequestTimeout(f"{method} to {peer}: no answer within {timeout}s")

    async def _deliver(self, peer: str, method: str, payload: Any) -> Any:
        net = self._net
        callee = net._callee(self._id, peer)
        if not await net._hop():
            await trio.sleep_forever()  # lost: the caller's timeout fires
        handler = callee.handlers.get(method)
        if handler is None:
            raise RemoteError("UnknownMethod", f"no handler for {method!r}")
        copies = 2 if net.rng.random() < net.faults.duplicate else 1
        reply: Any = None
        for _ in range(copies):
            if callee.closed or not net.connected(self._id, peer):
                raise PeerUnreachable(f"{peer} went away")
            with callee._serving():
                try:
                    reply = _wire(await handler(self._id, _wire(payload)))
                except Exception as error:  # noqa: BLE001 - the transport's: a RemoteError
                    raise RemoteError("HandlerFailed", repr(error)) from None
        if not await net._hop() or not net.connected(self._id, peer):
            await trio.sleep_forever()
        return reply

    @asynccontextmanager
    async def open_bulk(self, peer: str, method: str, header: Any) -> AsyncIterator[SimBulk]:
        net = self._net
        callee = net._callee(self._id, peer)
        handler = callee.bulk_handlers.get(method)
        if handler is None:
            raise RemoteError("UnknownMethod", f"no handler for {method!r}")
        to_callee, from_caller = trio.open_memory_channel[tuple[str, Any]](2)
        to_caller, from_callee = trio.open_memory_channel[tuple[str, Any]](2)
        mine = SimBulk(net, self._id, peer, to_callee, from_callee)
        theirs = SimBulk(net, peer, self._id, to_caller, from_caller)
        net._start_transfer(callee, handler, _wire(header), (mine, theirs))
        try:
            yield mine
        finally:
            mine.close()


class SimBulk:
    """One end of a bulk transfer (the interface of :class:`~cluster.transport.BulkStream`)."""

    def __init__(
        self,
        network: SimNetwork,
        me: str,
        peer: str,
        send: trio.MemorySendChannel[tuple[str, Any]],
        receive: trio.MemoryReceiveChannel[tuple[str, Any]],
    ) -> None:
        self._net, self.me, self.peer_id = network, me, peer
        self._send, self._receive = send, receive
        self._eof_sent = False
        self._eof_received = False

    def _check(self) -> None:
        if not self._net.connected(self.me, self.peer_id):
            raise PeerUnreachable(f"bulk transfer with {self.peer_id}: cut")

    async def _put(self, message: tuple[str, Any]) -> None:
        self._check()
        try:
            await self._send.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise PeerUnreachable(f"bulk transfer with {self.peer_id}: closed") from error

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_sent:
            raise trio.ClosedResourceError("bulk body already ended")
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            await self._put(("data", bytes(view[start : start + CHUNK])))

    async def send_eof(self) -> None:
        if not self._eof_sent:
            self._eof_sent = True
            await self._put(("eof", None))

    async def send_error(self, code: str, text: str) -> None:
        self._eof_sent = True
        await self._put(("err", (code, text)))

    async def receive(self) -> bytes:
        if self._eof_received:
            return b""
        self._check()
        try:
            kind, value = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError) as error:
            raise PeerUnreachable(f"bulk transfer with {self.peer_id}: closed") from error
        self._check()
        if kind == "data":
            return value  # type: ignore[no-any-return]
        self._eof_received = True
        if kind == "err":
            raise RemoteError(*value)
        return b""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.receive():
            yield chunk

    def close(self) -> None:
        self._send.close()
        self._receive.close()

    async def aclose(self) -> None:
        self.close()
