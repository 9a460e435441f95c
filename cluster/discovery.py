"""Finding peers to dial: mDNS announce/browse of ``_zeronode._tcp.local.`` plus static seeds.

Theory of operation
-------------------
**Discovery yields candidates, never members.** A :class:`Candidate` says "a node of this
cluster may listen at host:cluster_port". Everything it carries is a *hint*: an mDNS record is
unauthenticated (anyone on the LAN can announce any TXT record, fingerprint included, since every
node broadcasts it), and a seed is only an address an operator typed. The runtime must dial the
candidate over mutual TLS and trust only what the handshake proves: the chain to the cluster CA
and the node id pinned from the peer's certificate (``pki.peer_node_id``). A candidate's
``node_id`` is what the peer *claims*; when it is not ``None`` the runtime should pin the
handshake to it, and a mismatch means a stale or spoofed record. The runtime must also drop a
candidate whose certificate names this node (a seed list shared by every node lists itself).

**mDNS never decides liveness.** A node killed without a goodbye keeps its records in peers'
caches for 2 minutes (SRV/A) to 75 minutes (PTR/TXT) (research A4). Liveness comes from
membership (SWIM) alone; a candidate may well be dead.

**mDNS from trio** (research A4, measured). zeroconf runs its own asyncio loop on a daemon
thread (``use_asyncio=False``), bound to the explicit cluster interfaces (``InterfaceChoice.All``
would multicast on docker bridges too), IPv4 only. Its blocking calls (constructor,
``register_service`` with its ~1.6 s of probing, ``get_service_info``, ``close``) run through
``trio.to_thread``. ``ServiceBrowser`` callbacks run on zeroconf's thread; they hand each event to
trio with ``TrioToken.run_sync_soon`` and a non-blocking send, dropping it if the buffer is full
(never ``trio.from_thread.run_sync``, which would stall zeroconf's thread until trio runs).
Closing is shielded and sends goodbye packets, so peers forget a cleanly stopped node at once.

The record: instance ``<node id>._zeronode._tcp.local.``, host ``zn-<node id>.local.`` at the
node's cluster address, SRV port = the cluster port, and TXT ``v`` (discovery protocol version),
``fp`` (SHA-256 of the cluster CA, hex), ``id`` (node id), ``api`` (API port). Records of other
clusters (another ``fp``) and the node's own record are ignored. Two nodes claiming one node id
(a cloned data directory) collide in mDNS probing; the second one logs an error and stays silent
but still browses.

**Seeds** (``--peer HOST:CLUSTER_PORT``) become candidates with ``node_id=None`` (unknown until
the handshake) and are offered like mDNS ones. **Re-offers:** every known candidate (each seed,
and each mDNS record until its goodbye or expiry) is offered again about every
``reoffer_interval`` seconds (jittered ±20 %), so a seed that was down at start, or a dial that
failed, is retried without the runtime keeping its own list. **Dedupe:** the same candidate
(same ``(node_id, host, cluster_port)`` and same content) is offered at most once per
``dedupe_window``; keep that well below the re-offer interval. A full candidate buffer drops the
offer; the next re-offer repeats it. The filter is pure (:class:`CandidateFilter`).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import trio
from zeroconf import (
    IPVersion,
    NonUniqueNameException,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

from cluster.pki import is_node_id

__all__ = [
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "Candidate",
    "CandidateFilter",
    "Discovery",
    "DiscoveryError",
    "InvalidRecord",
    "Seed",
    "SeedError",
    "open_discovery",
    "parse_record",
    "parse_seed",
    "record_properties",
]

log = logging.getLogger("cluster.discovery")

SERVICE_TYPE = "_zeronode._tcp.local."
PROTOCOL_VERSION = 1
"""Version of the TXT record layout. Carried to the runtime as a hint, not filtered here: nodes of
different versions must still find each other during a rolling upgrade."""

_FINGERPRINT_BYTES = 32
_RESOLVE_TIMEOUT_MS = 3000
_RESOLVERS = 4
"""At most this many ``get_service_info`` threads at once: a flood of spoofed names cannot
occupy trio's whole thread pool."""
_MAX_MDNS_PEERS = 512
"""Bound on remembered mDNS records, so spoofed announcements cannot grow memory without limit."""
_EVENT_BUFFER = 256
_CANDIDATE_BUFFER = 128
_JITTER = 0.2

Source = Literal["mdns", "seed"]


class DiscoveryError(Exception):
    """Discovery cannot start (for example: the cluster interface has no such address)."""


class SeedError(ValueError):
    """A ``--peer`` value is not ``HOST:PORT``; the message says what is wrong and shows the form."""


class InvalidRecord(ValueError):
    """An mDNS record is not a well-formed zeronode announcement."""


@dataclass(frozen=True)
class Candidate:
    """A place where a node of this cluster may listen. Unauthenticated: confirm over mutual TLS.

    ``node_id``, ``api_port``, ``fingerprint`` and ``protocol_version`` are what an mDNS record
    claims; a seed knows none of them (``None``). ``host`` is an IP address for mDNS and the host
    as typed (IP or name, IPv6 without brackets) for a seed.
    """

    node_id: str | None
    host: str
    cluster_port: int
    api_port: int | None
    fingerprint: bytes | None
    source: Source
    protocol_version: int | None = None


@dataclass(frozen=True)
class Seed:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def candidate(self) -> Candidate:
        return Candidate(None, self.host, self.port, None, None, "seed")


_HOSTNAME_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_SEED_FORM = "write HOST:CLUSTER_PORT, e.g. 10.0.0.5:7946, node1.lan:7946 or [fd00::5]:7946"


def _parse_port(text: str, seed: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise SeedError(f"peer {seed!r}: port {text!r} is not a number; {_SEED_FORM}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise SeedError(f"peer {seed!r}: port {port} is outside 1-65535")
    return port


def _parse_host(host: str, seed: str) -> str:
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise SeedError(f"peer {seed!r}: {host!r} is not a valid IPv4 address") from None
    name = host.lower().removesuffix(".")
    if len(name) > 253 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in name.split(".")):
        raise SeedError(f"peer {seed!r}: {host!r} is neither an IP address nor a host name")
    return name


def parse_seed(text: str) -> Seed:
    """Parse ``HOST:PORT`` or ``[IPV6]:PORT`` (an operator's ``--peer``), or raise :class:`SeedError`.

    IPv4 and IPv6 addresses are normalised; host names are lower-cased and resolved later, by
    whoever dials them, so a seed whose DNS name is not resolvable yet still works later.
    """
    seed = text.strip()
    if not seed:
        raise SeedError(f"peer is empty; {_SEED_FORM}")
    if seed.startswith("["):
        match = re.fullmatch(r"\[([^\]]*)\]:(.*)", seed)
        if match is None:
            raise SeedError(
                f"peer {seed!r}: an IPv6 address in brackets needs a port after it; {_SEED_FORM}"
            )
        try:
            host = str(ipaddress.IPv6Address(match[1]))
        except ValueError:
            raise SeedError(f"peer {seed!r}: {match[1]!r} is not a valid IPv6 address") from None
        return Seed(host, _parse_port(match[2], seed))
    host, colon, port = seed.rpartition(":")
    if not colon:
        raise SeedError(f"peer {seed!r} has no port; {_SEED_FORM}")
    if ":" in host:
        raise SeedError(f"peer {seed!r}: put an IPv6 address in brackets, e.g. [::1]:7946")
    if not host:
        raise SeedError(f"peer {seed!r} has no host; {_SEED_FORM}")
    return Seed(_parse_host(host, seed), _parse_port(port, seed))


def record_properties(*, fingerprint: bytes, node_id: str, api_port: int) -> dict[str, str]:
    """The TXT properties a node announces (the SRV record carries the cluster port)."""
    return {
        "v": str(PROTOCOL_VERSION),
        "fp": fingerprint.hex(),
        "id": node_id,
        "api": str(api_port),
    }


def _text(properties: Mapping[bytes, bytes | None], key: bytes) -> str:
    value = properties.get(key)
    if value is None:
        raise InvalidRecord(f"TXT has no {key.decode()!r}")
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRecord(f"TXT {key.decode()!r} is not ASCII") from None


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InvalidRecord(f"{what} {text!r} is not a port")
    return int(text)


def parse_record(
    properties: Mapping[bytes, bytes | None], addresses: Sequence[str], port: int | None
) -> tuple[Candidate, ...]:
    """The candidates an announcement names (one per address), or :class:`InvalidRecord`.

    Pure: ``properties`` as zeroconf decodes TXT, ``addresses`` the record's IPv4 addresses,
    ``port`` its SRV port. Well-formed is all this checks; the fingerprint is compared later.
    """
    version_text = _text(properties, b"v")
    if not version_text.isdigit():
        raise InvalidRecord(f"version {version_text!r} is not a number")
    try:
        fingerprint = bytes.fromhex(_text(properties, b"fp"))
    except ValueError:
        raise InvalidRecord("fingerprint is not hex") from None
    if len(fingerprint) != _FINGERPRINT_BYTES:
        raise InvalidRecord(f"fingerprint has {len(fingerprint)} bytes, not {_FINGERPRINT_BYTES}")
    node_id = _text(properties, b"id")
    if not is_node_id(node_id):
        raise InvalidRecord(f"node id {node_id!r} is malformed")
    api_port = _port(_text(properties, b"api"), "API port")
    cluster_port = _port(str(port), "SRV port")
    if not addresses:
        raise InvalidRecord("no IPv4 address")
    return tuple(
        Candidate(node_id, host, cluster_port, api_port, fingerprint, "mdns", int(version_text))
        for host in addresses
    )


class CandidateFilter:
    """Decides which offers reach the runtime (pure: the caller passes the time).

    Drops this node's own record and its own address among the seeds, other clusters'
    records, and repeats: a candidate equal to the one offered for the same
    ``(node_id, host, cluster_port)`` less than ``dedupe_window`` seconds ago.
    """

    def __init__(
        self,
        *,
        fingerprint: bytes,
        node_id: str,
        own_address: tuple[str, int],
        dedupe_window: float,
    ) -> None:
        self.fingerprint = fingerprint
        self.node_id = node_id
        self.own_address = own_address
        self.dedupe_window = dedupe_window
        self._offered: dict[tuple[str | None, str, int], tuple[Candidate, float]] = {}

    def rejects(self, candidate: Candidate) -> str | None:
        """Why this candidate is never of use (``None`` if it may be): own or foreign."""
        if candidate.node_id == self.node_id:
            return "own record"
        if (candidate.host, candidate.cluster_port) == self.own_address:
            return "own address"
        if candidate.fingerprint is not None and candidate.fingerprint != self.fingerprint:
            return "other cluster"
        return None

    def is_repeat(self, candidate: Candidate, now: float) -> bool:
        key = (candidate.node_id, candidate.host, candidate.cluster_port)
        last = self._offered.get(key)
        return last is not None and last[0] == candidate and now - last[1] < self.dedupe_window

    def offered(self, candidate: Candidate, now: float) -> None:
        """Record that ``candidate`` went out at ``now`` (call only when it really did)."""
        self._offered[(candidate.node_id, candidate.host, candidate.cluster_port)] = (
            candidate,
            now,
        )

    def forget_before(self, now: float) -> None:
        """Drop bookkeeping older than the window, so spoofed names do not accumulate."""
        self._offered = {
            key: (candidate, at)
            for key, (candidate, at) in self._offered.items()
            if now - at < self.dedupe_window
        }


def _send_or_drop(
    channel: trio.MemorySendChannel[tuple[str, ServiceStateChange]],
    event: tuple[str, ServiceStateChange],
) -> None:
    try:
        channel.send_nowait(event)
    except (trio.WouldBlock, trio.ClosedResourceError):
        pass  # a lost Added only delays that peer until zeroconf re-reports it; seeds still work


class Discovery:
    """A running discovery; create it with :func:`open_discovery`."""

    def __init__(
        self,
        *,
        candidate_filter: CandidateFilter,
        seeds: Sequence[Seed],
        reoffer_interval: float,
        rng: random.Random,
        api_port: int,
    ) -> None:
        self._filter = candidate_filter
        self._seeds = tuple(seed.candidate() for seed in seeds)
        self._reoffer_interval = reoffer_interval
        self._rng = rng
        self._api_port = api_port
        self._send, self._receive = trio.open_memory_channel[Candidate](_CANDIDATE_BUFFER)
        self._mdns_known: dict[str, tuple[Candidate, ...]] = {}
        self._wanted: dict[str, int] = {}
        self._generation = 0
        self._resolving: set[str] = set()
        self._resolvers = trio.CapacityLimiter(_RESOLVERS)
        self._record_lock = trio.Lock()
        self._zeroconf: Zeroconf | None = None
        self._registered = False

    def candidates(self) -> trio.MemoryReceiveChannel[Candidate]:
        """The candidates to dial, in order found; ``async for`` over it. Meant for one reader."""
        return self._receive

    async def update(self, *, api_port: int) -> None:
        """Announce a new API port (for instance once the API listener has bound port 0)."""
        async with self._record_lock:
            self._api_port = api_port
            if self._registered and self._zeroconf is not None:
                await trio.to_thread.run_sync(self._zeroconf.update_service, self._service_info())

    def _offer(self, candidate: Candidate) -> None:
        now = trio.current_time()
        if self._filter.rejects(candidate) or self._filter.is_repeat(candidate, now):
            return
        try:
            self._send.send_nowait(candidate)
        except trio.WouldBlock:
            return  # the runtime is behind; the next re-offer repeats it
        self._filter.offered(candidate, now)

    def _known(self) -> list[Candidate]:
        return [*self._seeds, *(c for found in self._mdns_known.values() for c in found)]

    async def _reoffer_forever(self) -> None:
        while True:
            for candidate in self._known():
                self._offer(candidate)
            self._filter.forget_before(trio.current_time())
            jitter = self._rng.uniform(1 - _JITTER, 1 + _JITTER)
            await trio.sleep(self._reoffer_interval * jitter)

    # -- mDNS ---------------------------------------------------------------------------------

    def _service_info(self) -> ServiceInfo:
        node_id = self._filter.node_id
        host_ip, cluster_port = self._filter.own_address
        return ServiceInfo(
            SERVICE_TYPE,
            f"{node_id}.{SERVICE_TYPE}",
            port=cluster_port,
            properties=record_properties(
                fingerprint=self._filter.fingerprint, node_id=node_id, api_port=self._api_port
            ),
            server=f"zn-{node_id}.local.",
            addresses=[socket.inet_aton(host_ip)],
        )

    async def _announce(self, zeroconf: Zeroconf) -> None:
        async with self._record_lock:
            try:
                await trio.to_thread.run_sync(zeroconf.register_service, self._service_info())
            except NonUniqueNameException:
                log.error(
                    "discovery.node_id_conflict node_id=%s: another machine announces this node "
                    "id (a copied data directory?); not announcing, still browsing",
                    self._filter.node_id,
                )
                return
            except Exception:
                log.exception("discovery.announce_failed; not announcing, still browsing")
                return
            self._registered = True
            log.info(
                "discovery.announced node_id=%s address=%s:%d",
                self._filter.node_id,
                *self._filter.own_address,
            )

    async def _handle_events(
        self,
        events: trio.MemoryReceiveChannel[tuple[str, ServiceStateChange]],
        nursery: trio.Nursery,
    ) -> None:
        async for name, change in events:
            if change is ServiceStateChange.Removed:
                self._wanted.pop(name, None)
                self._mdns_known.pop(name, None)
                continue
            self._generation += 1
            self._wanted[name] = self._generation
            if name not in self._resolving:
                self._resolving.add(name)
                nursery.start_soon(self._resolve, name)

    async def _resolve(self, name: str) -> None:
        """Read ``name``'s records until a reading is not overtaken by a newer event for it."""
        zeroconf = self._zeroconf
        assert zeroconf is not None
        try:
            while name in self._wanted:
                generation = self._wanted[name]
                info = await trio.to_thread.run_sync(
                    zeroconf.get_service_info,
                    SERVICE_TYPE,
                    name,
                    _RESOLVE_TIMEOUT_MS,
                    limiter=self._resolvers,
                    abandon_on_cancel=True,
                )
                if self._wanted.get(name) != generation:
                    continue  # updated or removed while we read: read again, or stop
                del self._wanted[name]
                if info is None:
                    log.debug("discovery.unresolved name=%s", name)
                else:
                    self._learn(name, info)
        finally:
            self._resolving.discard(name)

    def _learn(self, name: str, info: ServiceInfo) -> None:
        try:
            found = parse_record(
                info.properties, info.parsed_addresses(IPVersion.V4Only), info.port
            )
        except InvalidRecord as error:
            log.debug("discovery.ignored name=%s reason=%s", name, error)
            return
        reason = self._filter.rejects(found[0])
        if reason:
            log.debug("discovery.ignored name=%s reason=%s", name, reason)
            return
        if name not in self._mdns_known and len(self._mdns_known) >= _MAX_MDNS_PEERS:
            log.warning("discovery.too_many_records name=%s limit=%d", name, _MAX_MDNS_PEERS)
            return
        self._mdns_known[name] = found
        for candidate in found:
            self._offer(candidate)

    async def _run_mdns(
        self, zeroconf: Zeroconf, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._zeroconf = zeroconf
        send_event, receive_event = trio.open_memory_channel[tuple[str, ServiceStateChange]](
            _EVENT_BUFFER
        )
        token = trio.lowlevel.current_trio_token()

        def on_change(
            zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:  # runs on zeroconf's thread
            try:
                token.run_sync_soon(_send_or_drop, send_event, (name, state_change))
            except trio.RunFinishedError:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._handle_events, receive_event, nursery)
            browser = ServiceBrowser(zeroconf, SERVICE_TYPE, handlers=[on_change])
            try:
                nursery.start_soon(self._announce, zeroconf)
                task_status.started()
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(browser.cancel)
                    send_event.close()


def _check_address(host_ip: str) -> None:
    try:
        ipaddress.IPv4Address(host_ip)
    except ValueError:
        raise DiscoveryError(f"mDNS announces an IPv4 address; {host_ip!r} is not one") from None


@asynccontextmanager
async def open_discovery(
    *,
    fingerprint: bytes,
    node_id: str,
    host_ip: str,
    cluster_port: int,
    api_port: int,
    interfaces: Sequence[str] = (),
    seeds: Sequence[Seed] = (),
    mdns: bool = True,
    reoffer_interval: float = 30.0,
    dedupe_window: float = 5.0,
    rng: random.Random | None = None,
) -> AsyncIterator[Discovery]:
    """Announce this node and offer candidates (see the module docstring) while the block runs.

    ``host_ip`` is the address peers should dial (announced in mDNS); ``interfaces`` the IPv4
    addresses to run mDNS on, required when ``mdns`` (no "all interfaces" default, on purpose).
    On exit the announcement is withdrawn with goodbye packets, even when cancelled.
    Raises :class:`DiscoveryError` if mDNS cannot start on ``interfaces``.
    """
    if len(fingerprint) != _FINGERPRINT_BYTES:
        raise ValueError(f"fingerprint must be {_FINGERPRINT_BYTES} bytes (SHA-256 of the CA)")
    if not is_node_id(node_id):
        raise ValueError(f"node id {node_id!r} is malformed")
    if reoffer_interval <= 0 or dedupe_window >= reoffer_interval * (1 - _JITTER):
        raise ValueError("dedupe_window must be shorter than the re-offer interval minus jitter")
    discovery = Discovery(
        candidate_filter=CandidateFilter(
            fingerprint=fingerprint,
            node_id=node_id,
            own_address=(host_ip, cluster_port),
            dedupe_window=dedupe_window,
        ),
        seeds=seeds,
        reoffer_interval=reoffer_interval,
        rng=rng or random.Random(),
        api_port=api_port,
    )
    zeroconf: Zeroconf | None = None
    if mdns:
        _check_address(host_ip)
        if not interfaces:
            raise DiscoveryError("mDNS needs explicit interfaces (the cluster addresses)")
        try:
            zeroconf = await trio.to_thread.run_sync(
                lambda: Zeroconf(
                    interfaces=list(interfaces), ip_version=IPVersion.V4Only, use_asyncio=False
                )
            )
        except OSError as error:
            raise DiscoveryError(f"cannot start mDNS on {list(interfaces)}: {error}") from error
    try:
        async with trio.open_nursery() as nursery:
            if zeroconf is not None:
                await nursery.start(discovery._run_mdns, zeroconf)
            nursery.start_soon(discovery._reoffer_forever)
            try:
                yield discovery
            finally:
                nursery.cancel_scope.cancel()
    finally:
        discovery._send.close()
        if zeroconf is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(zeroconf.close)  # unregisters: sends goodbyes
