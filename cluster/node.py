"""The cluster runtime: identity, transport, discovery and SWIM bound together under trio.

Theory of operation
-------------------
:func:`open_cluster_node` is the only entry point. On start it loads (or creates) the node's
identity in ``state_dir`` under the id the caller gives (the agent passes its journal's, so a
node has one id everywhere), then decides what the node is:

- already a member: it rejoins its cluster (a join token for that same cluster is ignored);
- no token and not a member: it *founds* a one-node cluster (a CA, a join secret, its own
  certificate), so every node can print a token and stays standalone until others join it;
- a token and not a member: it joins through the candidates discovery offers (``--peer``
  seeds, mDNS), one after another, again at every re-offer, until a member admits it. A wrong
  token or a foreign cluster is logged as an error each time and the node never becomes a
  member;
- a token for another cluster while a member: a *lone founder* (no other node ever joined it,
  so nobody else holds its CA) forgets its one-node cluster and joins; any other member
  refuses to start, since a node belongs to one cluster for its life.

As a member it serves the cluster port (mutual TLS; a caller without a certificate goes to
``join.serve_join``), runs the SWIM state machine with the trio clock (one task sleeps until
``Swim.next_deadline()`` or until a message arrives; SWIM messages travel as transport
notifications ``"swim"``), a loop-lag watchdog that feeds Lifeguard's self-awareness, a task
that refreshes this node's metadata every ``meta_interval`` seconds, and a task that dials
every candidate (mutual TLS proves who answers) and push-pulls with it. On exit it leaves
gracefully: "left" is delivered to every live member as requests, so it is not lost in an
outbox that closes a moment later.

**The durable membership (voters)** is ``voters.json`` in ``state_dir``: node id -> last
known cluster address. It grows by a join (the admitting member records the id; others record
a node the first time membership reports it, which it can only be after a join, since only a
join yields a certificate) and shrinks only by :meth:`ClusterNode.remove`. Failure detection
never touches it. Its addresses double as seeds at start, so a restarted founder finds the
cluster it made.

**Eviction** (``zeronode remove``) adds the id to the eviction list (``pki.EvictionList``,
which the TLS identity pin consults on every new connection), drops it from the voters, and
tells every live member at once (``cluster.evict``). A member that missed it catches up by
anti-entropy: each node publishes a digest of its eviction list in its metadata (``ev``), and
a node that sees a digest unlike its own fetches that member's list (``cluster.evicted``) and
merges it; lists only grow, so they converge. Messages from an evicted node are dropped and
none are sent to it, so membership soon sees it dead; status shows it as ``removed``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from cluster import pki
from cluster.discovery import Candidate, Seed, open_discovery
from cluster.join import (
    ForeignCluster,
    JoinError,
    JoinRefused,
    JoinToken,
    join_cluster,
    parse_token,
    serve_join,
    token_for,
)
from cluster.swim import ALIVE, SUSPECT, Member, Send, Swim, SwimConfig
from cluster.transport import BulkHandler, Handler, Transport, TransportError

__all__ = ["ClusterError", "ClusterNode", "MemberView", "open_cluster_node"]

log = logging.getLogger("cluster.node")

VOTERS_FILE = "voters.json"
LOOP_LAG_PROBE = 0.1
"""The watchdog sleeps this long and reports how late it woke as loop lag."""
LEAVE_TIMEOUT = 1.0
EVICT_TIMEOUT = 2.0

MetaProvider = Callable[[], Awaitable[Mapping[str, Any]]]
"""``async meta_provider() -> {...}``: this node's metadata as members see it (small: SWIM
carries at most ``SwimConfig.max_meta_bytes``, ``ev`` included)."""


class ClusterError(Exception):
    """The cluster node cannot start or cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class MemberView:
    """One member as ``zeronode status`` shows it.

    ``state`` is SWIM's (alive, suspect, dead, left) or: ``joining`` (this node, not yet
    admitted), ``unknown`` (a voter not heard of since this node started), ``removed`` (evicted).
    ``last_heard`` is seconds ago (None: never, or this node).
    """

    node_id: str
    address: str
    state: str
    incarnation: int
    last_heard: float | None
    clock_offset: float | None
    rtt: float | None
    meta: Mapping[str, Any]
    is_self: bool
    voter: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "state": self.state,
            "incarnation": self.incarnation,
            "last_heard": self.last_heard,
            "clock_offset": self.clock_offset,
            "rtt": self.rtt,
            "meta": dict(self.meta),
            "self": self.is_self,
            "voter": self.voter,
        }


class _Voters:
    """The durable membership, persisted as JSON ``{node id: address}`` (see the module doc)."""

    def __init__(self, path: Path, voters: dict[str, str]) -> None:
        self.path = path
        self.addresses = voters
        self.changed = trio.Event()

    @classmethod
    def load(cls, path: Path) -> _Voters:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as error:
            raise ClusterError(f"cannot read {path}: {error}") from None
        if not isinstance(data, dict) or not all(
            pki.is_node_id(k) and isinstance(v, str) for k, v in data.items()
        ):
            raise ClusterError(f"{path} does not hold a voters list")
        return cls(path, data)

    def set(self, node_id: str, address: str) -> None:
        if self.addresses.get(node_id) != address:
            self.addresses[node_id] = address
            self.changed.set()

    def discard(self, node_id: str) -> None:
        if self.addresses.pop(node_id, None) is not None:
            self.changed.set()

    def save(self) -> None:
        text = json.dumps(self.addresses, indent=1, sort_keys=True) + "\n"
        pki._write_atomic(self.path, text.encode(), private=False)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertised_host(host: str, seeds: Sequence[Seed]) -> str:
    """The address other nodes should dial: ``host`` itself unless it is a wildcard, in which
    case the local address of the route to the first seed (or of the host name)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return socket.gethostbyname(host)
    if not address.is_unspecified:
        return host
    for seed in seeds:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((seed.host, seed.port))  # UDP: no packet is sent
                return str(probe.getsockname()[0])
        except OSError:
            continue
    return socket.gethostbyname(socket.gethostname())


def eviction_digest(evicted: pki.EvictionList) -> str:
    """A short digest of the eviction list, published in metadata for anti-entropy."""
    if not len(evicted):
        return ""
    return hashlib.sha256(",".join(evicted).encode()).hexdigest()[:12]


class ClusterNode:
    """A running cluster node (see the module docstring); made by :func:`open_cluster_node`."""

    def __init__(
        self,
        identity: pki.NodeIdentity,
        voters: _Voters,
        *,
        host: str,
        advertise: str,
        cluster_port: int,
        token: JoinToken | None,
        meta_provider: MetaProvider,
        swim_config: SwimConfig,
        meta_interval: float,
        wall_clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.identity = identity
        self.node_id = identity.node_id
        self._voters = voters
        self._host = host
        self._advertise = advertise
        self._cluster_port = cluster_port
        self._token = token
        self._meta_provider = meta_provider
        self.swim_config = swim_config
        self._meta_interval = meta_interval
        self._wall = wall_clock
        self._rng = rng
        self.address = _join_address(advertise, cluster_port)
        self.swim: Swim | None = None
        self.transport: Transport | None = None
        self._meta: dict[str, Any] = {}
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.joined = trio.Event()
        #: The worst loop lag the watchdog has seen since start (seconds), for status.
        self.loop_lag_max = 0.0
        if identity.is_member:
            self.joined.set()
        # Handlers other layers (replication, forwarding) serve: kept here so they can be
        # registered before the transport exists (a joining node has none until admitted).
        self._handlers: dict[str, Handler] = {}
        self._bulk_handlers: dict[str, BulkHandler] = {}

    # -- what status reads -------------------------------------------------------------------

    @property
    def cluster_id(self) -> str | None:
        authority = self.identity.authority
        return authority.cluster_id if authority is not None else None

    @property
    def voters(self) -> dict[str, str]:
        return dict(self._voters.addresses)

    def token(self) -> str:
        """The join token of this node's cluster (``JoinError`` while not a member)."""
        return token_for(self.identity)

    def self_view(self) -> MemberView:
        if self.swim is None:
            return MemberView(self.node_id, self.address, "joining", 0, None, None, None,
                              dict(self._meta), True, False)
        member = self.swim.member(self.node_id)
        assert member is not None
        return self._view(member, trio.current_time())

    def members(self) -> list[MemberView]:
        """Every member this node knows, itself first, then every voter not heard of since
        start (``unknown``)."""
        if self.swim is None:
            return [self.self_view()]
        now = trio.current_time()
        views = [self._view(member, now) for member in self.swim.members()]
        seen = {view.node_id for view in views}
        for node_id, address in sorted(self._voters.addresses.items()):
            if node_id not in seen:
                views.append(MemberView(node_id, address, "unknown", 0, None, None, None, {},
                                        False, True))
        return views

    def _view(self, member: Member, now: float) -> MemberView:
        state = "removed" if member.node_id in self.identity.evicted else member.state
        heard = None if member.last_heard is None else max(0.0, now - member.last_heard)
        return MemberView(
            member.node_id, member.address, state, member.incarnation, heard,
            member.clock_offset, member.rtt, member.meta, member.node_id == self.node_id,
            member.node_id in self._voters.addresses,
        )

    def resolve(self, prefix: str) -> str:
        """The one known node id starting with ``prefix`` (status shows short ids)."""
        known = set(self._voters.addresses)
        if self.swim is not None:
            known.update(member.node_id for member in self.swim.members())
        matches = sorted(node_id for node_id in known if node_id.startswith(prefix.lower()))
        if len(matches) != 1 or not prefix:
            what = "no member" if not matches else f"{len(matches)} members"
            raise ClusterError(f"{what} of this cluster has an id starting with {prefix!r}")
        return matches[0]

    # -- serving other layers -----------------------------------------------------------------

    def on(self, method: str, handler: Handler) -> None:
        """Serve ``method`` to authenticated peers (now, or as soon as the transport runs)."""
        self._handlers[method] = handler
        if self.transport is not None:
            self.transport.on(method, handler)

    def on_bulk(self, method: str, handler: BulkHandler) -> None:
        """Serve bulk transfers to ``method`` (now, or as soon as the transport runs)."""
        self._bulk_handlers[method] = handler
        if self.transport is not None:
            self.transport.on_bulk(method, handler)

    # -- eviction ----------------------------------------------------------------------------

    async def remove(self, node_id: str) -> None:
        """Evict ``node_id`` cluster-wide (see the module docstring). Returns once this node
        has persisted it and the live members were told (best effort: stragglers catch up)."""
        if node_id == self.node_id:
            raise ClusterError("a node cannot remove itself: run `zeronode remove` elsewhere")
        if not pki.is_node_id(node_id):
            raise ClusterError(f"not a node id: {node_id!r}")
        await self._evict([node_id])
        log.warning("cluster.removed node=%s by=%s", node_id, self.node_id)
        if self.swim is None or self.transport is None:
            return
        transport = self.transport
        live = [m for m in self.swim.members()[1:] if m.state in (ALIVE, SUSPECT)
                and m.node_id not in self.identity.evicted]

        async def tell(member: Member) -> None:
            try:
                await transport.request(member.node_id, _split_address(member.address),
                                        "cluster.evict", {"nodes": [node_id]},
                                        timeout=EVICT_TIMEOUT)
            except TransportError as error:
                log.info("cluster.evict_not_delivered to=%s error=%s", member.node_id, error)

        async with trio.open_nursery() as nursery:
            for member in live:
                nursery.start_soon(tell, member)

    async def _evict(self, node_ids: Sequence[str]) -> None:
        new = [n for n in node_ids if n not in self.identity.evicted and pki.is_node_id(n)]
        if not new:
            return
        if self.node_id in new:
            log.error("cluster.this_node_removed node=%s: the other members refuse it from now "
                      "on; wipe the data directory to join again as a new node", self.node_id)
            new.remove(self.node_id)
        await trio.to_thread.run_sync(self.identity.evicted.add, new)
        for node_id in new:
            self._voters.discard(node_id)
        await self._publish_meta()

    async def _on_evict(self, peer_id: str, payload: Any) -> None:
        nodes = payload.get("nodes") if isinstance(payload, dict) else None
        if isinstance(nodes, list) and all(pki.is_node_id(n) for n in nodes):
            log.info("cluster.evict_received from=%s nodes=%s", peer_id, ",".join(nodes))
            await self._evict(nodes)

    async def _on_evicted_query(self, peer_id: str, payload: Any) -> list[str]:
        return list(self.identity.evicted)

    # -- start -------------------------------------------------------------------------------

    async def _run(
        self,
        seeds: Sequence[Seed],
        mdns: bool,
        api_port: int,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._meta = dict(await self._meta_provider())
        fingerprint = (self._token.ca_fingerprint if self._token is not None
                       and not self.identity.is_member else self._fingerprint())
        known = [Seed(*_split_address(a)) for n, a in self._voters.addresses.items()
                 if n != self.node_id and a]
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            async with open_discovery(
                fingerprint=fingerprint,
                node_id=self.node_id,
                host_ip=self._advertise,
                cluster_port=self._cluster_port,
                api_port=api_port,
                interfaces=[self._advertise] if mdns else [],
                seeds=list(dict.fromkeys([*seeds, *known])),
                mdns=mdns,
                reoffer_interval=max(2.0, 10 * self.swim_config.protocol_period),
                dedupe_window=max(1.0, 4 * self.swim_config.protocol_period),
            ) as discovery:
                candidates = discovery.candidates()
                if not self.identity.is_member:
                    task_status.started()
                    if not seeds and not mdns:
                        log.error("cluster.cannot_join: a join token needs --peer seeds or mDNS")
                    through = await self._join(candidates)
                    await self._serve(nursery)
                    nursery.start_soon(self._dial, through)
                else:
                    await self._serve(nursery)
                    task_status.started()
                async for candidate in candidates:
                    nursery.start_soon(self._dial, candidate)

    def _fingerprint(self) -> bytes:
        if self.identity.authority is not None:
            return self.identity.authority.fingerprint
        return pki.ca_fingerprint(self.identity.ca_certificates[-1])

    async def _join(self, candidates: trio.MemoryReceiveChannel[Candidate]) -> Candidate:
        """Try each candidate until one admits us; returns that one."""
        assert self._token is not None
        async for candidate in candidates:
            where = _join_address(candidate.host, candidate.cluster_port)
            try:
                await join_cluster(candidate.host, candidate.cluster_port, self.identity,
                                   self._token)
            except JoinRefused as refusal:
                log.error("cluster.join_refused seed=%s reason=%s", where, refusal)
            except ForeignCluster as error:
                log.error("cluster.join_foreign_cluster seed=%s reason=%s", where, error)
            except (JoinError, OSError, trio.BrokenResourceError, trio.TooSlowError) as error:
                log.warning("cluster.join_failed seed=%s error=%s: %s", where,
                            type(error).__name__, error)
            else:
                log.info("cluster.joined node=%s via=%s", self.node_id, where)
                self.joined.set()
                return candidate
        raise ClusterError("discovery stopped before the node could join")

    async def _serve(self, nursery: trio.Nursery) -> None:
        """Start the transport and the membership tasks (the node is a member by now)."""
        identity = self.identity
        transport = Transport(
            self.node_id,
            pki.server_context(identity),
            pki.client_context(identity),
            lambda stream: pki.peer_node_id(stream, identity),
            connect_timeout=max(1.0, 2 * self.swim_config.protocol_period),
        )
        transport.on("swim", self._on_swim)
        transport.on("cluster.evict", self._on_evict)
        transport.on("cluster.evicted", self._on_evicted_query)
        transport.on_unauthenticated(self._on_join)
        for method, handler in self._handlers.items():
            transport.on(method, handler)
        for method, bulk_handler in self._bulk_handlers.items():
            transport.on_bulk(method, bulk_handler)
        try:
            port = await nursery.start(transport.serve, self._host, self._cluster_port)
        except OSError as error:
            raise ClusterError(
                f"cannot listen on {self._host}:{self._cluster_port} (cluster port): "
                f"{error.strerror}"
            ) from None
        self.transport = transport
        self._cluster_port = port
        self.address = _join_address(self._advertise, port)
        self._meta["ev"] = eviction_digest(identity.evicted)
        self.swim = Swim(self.node_id, self.address, self._meta, self.swim_config, self._rng)
        self._voters.set(self.node_id, self.address)
        log.info("cluster.member node=%s cluster=%s address=%s voters=%d", self.node_id,
                 self.cluster_id, self.address, len(self._voters.addresses))
        nursery.start_soon(self._swim_loop)
        nursery.start_soon(self._watch_loop_lag)
        nursery.start_soon(self._refresh_meta)
        nursery.start_soon(self._save_voters)

    async def _on_join(self, stream: trio.SSLStream[Any], peer: str) -> None:
        admitted = await serve_join(stream, self.identity, peer=peer)
        if admitted is not None:
            self._voters.set(admitted, self._voters.addresses.get(admitted, ""))

    # -- membership --------------------------------------------------------------------------

    async def _swim_loop(self) -> None:
        swim = self.swim
        assert swim is not None
        while True:
            self._wake = trio.Event()
            with trio.move_on_at(swim.next_deadline()):
                await self._wake.wait()
            now = trio.current_time()
            if now >= swim.next_deadline():
                await self._deliver(swim.tick(now, self._wall()))
            self._take_events()

    async def _on_swim(self, peer_id: str, payload: Any) -> None:
        swim = self.swim
        if swim is None or peer_id in self.identity.evicted:
            return
        await self._deliver(swim.receive(trio.current_time(), peer_id, payload, self._wall()))
        self._take_events()
        self._wake.set()

    async def _deliver(self, sends: Sequence[Send]) -> None:
        transport = self.transport
        assert transport is not None
        for send in sends:
            if send.to_node_id is None or send.to_node_id in self.identity.evicted:
                continue  # seeds are always dialled first, so every send names its node
            try:
                address = _split_address(send.to_address)
            except ValueError:
                continue
            await transport.notify(send.to_node_id, address, "swim", send.message)

    def _take_events(self) -> None:
        assert self.swim is not None
        for event in self.swim.take_events():
            member = event.member
            if member.node_id not in self.identity.evicted:
                self._voters.set(member.node_id, member.address)
            if member.state != event.previous_state:
                log.info("cluster.member_state node=%s state=%s previous=%s address=%s inc=%d",
                         member.node_id, member.state, event.previous_state, member.address,
                         member.incarnation)

    async def _dial(self, candidate: Candidate) -> None:
        """Confirm a candidate by mutual TLS and push-pull with it."""
        swim, transport = self.swim, self.transport
        assert swim is not None and transport is not None
        if candidate.node_id is not None:
            known = swim.member(candidate.node_id)
            if known is not None and known.state == ALIVE:
                return
        address = (candidate.host, candidate.cluster_port)
        try:
            peer_id = await transport.connect(address, candidate.node_id)
        except TransportError as error:
            log.debug("cluster.dial_failed address=%s error=%s", address, error)
            return
        if peer_id == self.node_id or peer_id in self.identity.evicted:
            return
        known = swim.member(peer_id)
        if known is None or known.state != ALIVE:
            await self._deliver(swim.join(trio.current_time(),
                                          [(peer_id, _join_address(*address))]))
            self._wake.set()

    async def _watch_loop_lag(self) -> None:
        """Lifeguard's self-awareness: how late does a short sleep wake up?"""
        assert self.swim is not None
        while True:
            before = trio.current_time()
            await trio.sleep(LOOP_LAG_PROBE)
            lag = trio.current_time() - before - LOOP_LAG_PROBE
            self.loop_lag_max = max(self.loop_lag_max, lag)
            if lag >= 1.0:  # a pause this long may well get this node suspected
                log.warning("cluster.loop_lag seconds=%.3f", lag)
            self.swim.set_loop_lag(lag)

    async def _refresh_meta(self) -> None:
        while True:
            await trio.sleep(self._meta_interval)
            self._meta = dict(await self._meta_provider())
            await self._publish_meta()
            await self._sync_evictions()

    async def _publish_meta(self) -> None:
        if self.swim is None:
            return
        meta = {**self._meta, "ev": eviction_digest(self.identity.evicted)}
        current = self.swim.member(self.node_id)
        if current is not None and dict(current.meta) == meta:
            return
        try:
            self.swim.update_meta(meta)
        except ValueError as error:
            log.warning("cluster.meta_too_large error=%s", error)
            return
        self._wake.set()

    async def _sync_evictions(self) -> None:
        """Anti-entropy for evictions: fetch the list of a member whose digest differs."""
        assert self.swim is not None and self.transport is not None
        mine = eviction_digest(self.identity.evicted)
        for member in self.swim.members()[1:]:
            if member.state != ALIVE or member.meta.get("ev", "") == mine:
                continue
            try:
                theirs = await self.transport.request(
                    member.node_id, _split_address(member.address), "cluster.evicted", None,
                    timeout=EVICT_TIMEOUT)
            except TransportError:
                continue
            if isinstance(theirs, list):
                await self._evict([n for n in theirs if isinstance(n, str)])
            return  # one exchange per round, as gossip would

    async def _save_voters(self) -> None:
        while True:
            await self._voters.changed.wait()
            self._voters.changed = trio.Event()
            await trio.to_thread.run_sync(self._voters.save)

    # -- stop --------------------------------------------------------------------------------

    async def _leave(self) -> None:
        """Tell every live member we are leaving (as requests, so the words are delivered
        before the connections close), then close the transport."""
        swim, transport = self.swim, self.transport
        if swim is None or transport is None:
            return
        sends = swim.leave(trio.current_time())

        async def say(send: Send) -> None:
            if send.to_node_id is None:
                return
            try:
                await transport.request(send.to_node_id, _split_address(send.to_address),
                                        "swim", send.message, timeout=LEAVE_TIMEOUT)
            except TransportError:
                pass

        with trio.move_on_after(LEAVE_TIMEOUT + 0.5):
            async with trio.open_nursery() as nursery:
                for send in sends:
                    nursery.start_soon(say, send)
        log.info("cluster.left node=%s told=%d", self.node_id, len(sends))
        await transport.aclose()
        if self._voters.changed.is_set():
            await trio.to_thread.run_sync(self._voters.save)


def _prepare(
    state_dir: Path, node_id: str, token: JoinToken | None
) -> tuple[pki.NodeIdentity, _Voters]:
    """Load the identity and voters and settle what the node is (see the module docstring).
    Blocking: runs in a worker thread."""
    try:
        identity = pki.NodeIdentity.load_or_create(state_dir, node_id)
    except pki.IdentityError as error:
        raise ClusterError(str(error)) from None
    voters = _Voters.load(state_dir / VOTERS_FILE)
    if identity.is_member and token is not None and not any(
        pki.ca_fingerprint(ca) == token.ca_fingerprint for ca in identity.ca_certificates
    ):
        others = set(voters.addresses) - {identity.node_id}
        if others or identity.authority is None:
            raise ClusterError(
                f"node {identity.node_id} belongs to cluster {_cluster_of(identity)} with "
                f"{len(others)} other member(s); the join token names another cluster. A node "
                "stays in one cluster: start it without a join token, or wipe its data "
                "directory to join the other cluster as a new node"
            )
        log.warning("cluster.leaving_lone_cluster node=%s cluster=%s: joining the token's "
                    "cluster instead", identity.node_id, _cluster_of(identity))
        identity.forget_membership()
        voters.addresses.clear()
        voters.save()
    if not identity.is_member and token is None:
        pki.initialise_cluster(identity)
        voters.addresses[identity.node_id] = ""
        voters.save()
    if identity.certificate is not None and identity.authority is not None and (
        pki.needs_renewal(identity.certificate)
    ):
        pki.renew_node_certificate(identity, identity.authority)
    return identity, voters


def _cluster_of(identity: pki.NodeIdentity) -> str:
    return identity.authority.cluster_id if identity.authority is not None else "unknown"


@asynccontextmanager
async def open_cluster_node(
    state_dir: Path,
    *,
    node_id: str,
    host: str,
    cluster_port: int,
    api_port: int,
    meta_provider: MetaProvider,
    seeds: Sequence[Seed] = (),
    join_token: str | None = None,
    mdns: bool = False,
    swim_config: SwimConfig | None = None,
    meta_interval: float = 5.0,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> AsyncIterator[ClusterNode]:
    """Run this node's part of the cluster while the block runs (see the module docstring).

    Returns once the node serves the cluster port, or at once when it must first join (then
    ``cluster.joined`` is set when it has). Raises :class:`ClusterError` for a bad token, an
    unusable identity directory or a cluster port that cannot be bound. Leaves gracefully on
    exit.
    """
    try:
        token = parse_token(join_token) if join_token else None
    except JoinError as error:
        raise ClusterError(f"join token: {error}") from None
    identity, voters = await trio.to_thread.run_sync(_prepare, Path(state_dir), node_id, token)
    advertise = await trio.to_thread.run_sync(advertised_host, host, list(seeds))
    node = ClusterNode(
        identity,
        voters,
        host=host,
        advertise=advertise,
        cluster_port=cluster_port,
        token=token,
        meta_provider=meta_provider,
        swim_config=swim_config or SwimConfig(),
        meta_interval=meta_interval,
        wall_clock=wall_clock,
        rng=rng or random.Random(),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node._run, seeds, mdns, api_port)
        try:
            yield node
        finally:
            with trio.CancelScope(shield=True):
                await node._leave()
            nursery.cancel_scope.cancel()


def detection_bound(config: SwimConfig, members: int) -> tuple[float, float]:
    """Seconds within which a crashed member is suspected, then declared dead, by a healthy
    observer (no Lifeguard stretching): it is probed within one round of the other members
    (``members - 1`` periods), found silent at the end of that probe's period, and declared
    dead when the suspicion times out (the minimum when too few members can confirm, else
    up to ``suspicion_max_mult`` times it)."""
    period = config.protocol_period
    suspect = members * period
    minimum = config.suspicion_mult * max(1.0, math.log10(members)) * period
    confirmers = members - 2
    suspicion = minimum if confirmers < config.suspicion_confirmations else (
        config.suspicion_max_mult * minimum)
    return suspect, suspect + suspicion
