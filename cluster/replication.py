"""Journal replication: push to every member, anti-entropy pulls, majority acknowledgement.

Theory of operation
-------------------
Every node's journal is a set of per-origin logs numbered 1, 2, 3... (``zeronode.journal``),
so what a node holds is its version vector and "what do you lack" is "every event above your
vector". Three flows keep the logs converging:

- **Push.** One pusher task per peer sends this node's own events above what that peer is
  known to hold, a bounded batch at a time, one request in flight. The reply carries the
  receiver's vector after ingesting: the next batch starts there, so a receiver that missed
  events (it restarted, a batch was lost) is simply sent them again. A pusher wakes on every
  local commit and also polls, so events written straight to the local journal (bookkeeping
  that needs no acknowledgement) spread too.
- **Pull (anti-entropy).** Every few seconds (jittered) a node asks a random reachable peer
  for every event above its own vector, third-party origins included (a dead node's events
  still spread), in bounded pages. A peer that compacted events the puller lacks answers
  "snapshot needed", and the puller installs that peer's snapshot (``snapshots.py``). Now and
  then the two compare state digests when their vectors are equal; a difference is an alarm.
- **Acknowledgement.** ``commit`` stores a write locally, wakes the pushers and returns once a
  majority of the voters (this node included) hold it. Any majority overlaps any other, so a
  ``barrier`` that hears the vectors of a majority learns of every acknowledged event and pulls
  what it lacks: a request that starts with a barrier sees every write acknowledged before it
  arrived, on any node (read-after-write). A write runs a barrier of its own before it is
  stored, so its hybrid-logical-clock stamp is later than every write acknowledged before
  it: last-writer-wins then agrees with the order clients saw, whatever the clock skew.
  Without a reachable majority (or when its barrier hears from none) a write is refused
  *before* it is stored (``QuorumUnavailable``, a retryable 503 to clients) while a read's
  barrier serves what the node holds (reads continue). A write stored whose acknowledgement times out
  is also answered 503: it is durable here and spreads once the partition heals, like an AWS
  5xx whose effect may or may not have happened. ``ack="local"`` answers every write at once
  and lets last-writer-wins reconcile after a partition.

Events apply strictly in per-origin order (the journal refuses a gap), unknown kinds are
quarantined by the journal, and an ``(origin, seq)`` held with other content is counted and
logged as an alarm, never applied.

Wire forms (msgpack over the cluster transport): an event is ``[origin, seq, hlc, entity,
kind, payload]``; ``repl.push`` ``{"events": [...]}`` -> ``{"vv": {...}}``; ``repl.pull``
``{"vv": {...}, "max_bytes": n}`` -> ``{"events": [...], "vv": {...}, "more": bool}`` or
``{"snapshot": true, "vv": {...}}``; ``repl.vv`` ``{"digest": bool}`` -> ``{"vv": {...}}``
(with ``"state_hash"`` when asked and the vector held still while it was computed).
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from cluster.peers import Peers
from cluster.snapshots import fetch_snapshot
from cluster.transport import TransportError
from zeronode.journal import BehindFloor, Event, SnapshotRejected

__all__ = [
    "ACK_MODES",
    "QuorumUnavailable",
    "ReplicatedJournal",
    "ReplicationConfig",
    "Replicator",
    "decode_events",
    "encode_events",
    "majority",
]

log = logging.getLogger("cluster.replication")

PUSH_METHOD = "repl.push"
PULL_METHOD = "repl.pull"
VV_METHOD = "repl.vv"
ACK_MODES = ("majority", "local")  # also what zeronode.config accepts for `ack`
MAX_WIRE_EVENTS = 10_000  # a push or pull page longer than this is refused as malformed
OWN_TAIL_EVENTS = 512  # own events kept in memory for the pushers (see ``_OwnTail``)


# The replicator whose barrier the current task (one AWS request) last passed: its next commit
# needs no barrier of its own (see ``commit``).
_passed_barrier: contextvars.ContextVar[Replicator | None] = contextvars.ContextVar(
    "passed_barrier", default=None
)


class QuorumUnavailable(Exception):
    """A write cannot be acknowledged by a majority of the members (retry later)."""


@dataclass(frozen=True)
class ReplicationConfig:
    """Timings and bounds; the defaults suit a LAN (tests shorten them)."""

    ack: str = "majority"
    ack_timeout: float = 5.0  # how long a write waits for a majority once stored
    barrier_timeout: float = 1.0  # how long a barrier waits to hear from a majority
    pull_interval: tuple[float, float] = (2.0, 5.0)  # anti-entropy period, uniformly jittered
    poll_interval: float = 1.0  # a pusher's check for events that bypassed commit
    batch_bytes: int = 1 << 20  # payload bytes per push or pull page (one event at least)
    request_timeout: float = 5.0
    snapshot_timeout: float = 600.0
    digest_every: int = 5  # compare state digests on every n-th anti-entropy round

    def __post_init__(self) -> None:
        if self.ack not in ACK_MODES:
            raise ValueError(f"ack must be one of {ACK_MODES}, not {self.ack!r}")


def majority(voters: int) -> int:
    return voters // 2 + 1


def encode_events(events: Iterable[Event]) -> list[list[Any]]:
    return [[e.origin, e.seq, e.hlc, e.entity, e.kind, e.payload] for e in events]


def decode_events(wire: Any) -> list[Event]:
    """Events from their wire form; raises ``ValueError`` for anything else.

    Only the shape is checked here; the journal validates each envelope (``malformation``).
    """
    if not isinstance(wire, list) or len(wire) > MAX_WIRE_EVENTS:
        raise ValueError("events must be a list of at most %d items" % MAX_WIRE_EVENTS)
    events = []
    for item in wire:
        if not isinstance(item, list) or len(item) != 6:
            raise ValueError("an event is a list of six fields")
        events.append(Event(*item))
    return events


def _vector(wire: Any) -> dict[str, int]:
    if not isinstance(wire, dict) or not all(
        isinstance(o, str) and isinstance(s, int) and not isinstance(s, bool)
        for o, s in wire.items()
    ):
        raise ValueError("a version vector maps origin ids to integers")
    return dict(wire)


def _covers(vector: Mapping[str, int], target: Mapping[str, int]) -> bool:
    return all(vector.get(origin, 0) >= seq for origin, seq in target.items())


def _merge(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    merged = dict(a)
    for origin, seq in b.items():
        if seq > merged.get(origin, 0):
            merged[origin] = seq
    return merged


class Replicator:
    """Replicates one journal to its peers; see the module docstring.

    ``register()`` the handlers before the cluster serves, then run ``run()`` for the life of
    the node. ``commit`` and ``barrier`` may be called from any task meanwhile.
    """

    def __init__(
        self,
        journal: Any,
        peers: Peers,
        config: ReplicationConfig | None = None,
        *,
        rng: random.Random | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        self._journal = journal
        self._peers = peers
        self.config = config or ReplicationConfig()
        self._rng = rng or random.Random()
        self._tmp_dir = tmp_dir or Path(journal.path).parent
        self._known: dict[str, dict[str, int]] = {}
        self._known_changed = trio.Event()
        self._committed = trio.Event()
        self._pushers: set[str] = set()
        self._tail = _OwnTail(OWN_TAIL_EVENTS)
        self._nursery: trio.Nursery | None = None
        # barrier rounds: callers take the next round's ticket and wait for its event
        self._next_round = 0
        self._rounds_pending: dict[int, _Round] = {}
        self._barrier_wanted = trio.Event()
        self._snapshot_lock = trio.Lock()
        self._rounds = 0
        self.conflicts = 0
        self.quarantined = 0
        self.divergences = 0
        self.snapshots_installed = 0
        self.refused_writes = 0
        self.ack_timeouts = 0
        self.last_pull: float | None = None

    # -- what other layers read ------------------------------------------------------------

    def known_positions(self) -> dict[str, dict[str, int]]:
        """The last version vector heard from each peer (a lower bound of what it holds)."""
        return {peer: dict(vector) for peer, vector in self._known.items()}

    def status(self) -> dict[str, Any]:
        voters = self._peers.voters()
        position = self._journal.position()
        peers = {}
        for peer in sorted(voters - {self._peers.node_id}):
            vector = self._known.get(peer)
            peers[peer] = {
                "reachable": peer in self._peers.reachable(),
                "behind": None if vector is None else sum(
                    max(0, seq - vector.get(origin, 0)) for origin, seq in position.items()
                ),
            }
        return {
            "ack": self.config.ack,
            "voters": len(voters),
            "majority": majority(len(voters)),
            "writable": self.config.ack == "local" or self._majority_reachable(),
            "peers": peers,
            "conflicts": self.conflicts,
            "quarantined": self.quarantined,
            "divergences": self.divergences,
            "snapshots_installed": self.snapshots_installed,
            "refused_writes": self.refused_writes,
            "ack_timeouts": self.ack_timeouts,
            "last_pull": self.last_pull,
        }

    # -- serving ---------------------------------------------------------------------------

    def register(self) -> None:
        self._peers.on(PUSH_METHOD, self._on_push)
        self._peers.on(PULL_METHOD, self._on_pull)
        self._peers.on(VV_METHOD, self._on_vv)

    async def _on_push(self, peer: str, payload: Any) -> Any:
        await self._ingest(peer, decode_events(payload["events"]))
        return {"vv": self._journal.position()}

    async def _on_pull(self, peer: str, payload: Any) -> Any:
        after = _vector(payload["vv"])
        self._learn(peer, after)
        max_bytes = min(int(payload.get("max_bytes") or self.config.batch_bytes), 4 << 20)
        position = self._journal.position()
        try:
            events = await self._journal.events(
                after, limit=MAX_WIRE_EVENTS, max_bytes=max_bytes
            )
        except BehindFloor as behind:
            log.info("replication.snapshot_needed peer=%s reason=%s", peer, behind)
            return {"snapshot": True, "vv": position}
        more = bool(events) and not _covers(_merge(after, _top(events)), position)
        return {"events": encode_events(events), "vv": position, "more": more}

    async def _on_vv(self, peer: str, payload: Any) -> Any:
        before = self._journal.position()
        reply: dict[str, Any] = {"vv": before}
        if isinstance(payload, dict) and payload.get("digest"):
            state_hash = await self._journal.state_hash()
            if self._journal.position() == before:
                reply["state_hash"] = state_hash
        return reply

    # -- writing ---------------------------------------------------------------------------

    def _majority_reachable(self) -> bool:
        voters = self._peers.voters()
        reachable = self._peers.reachable() & voters
        return 1 + len(reachable - {self._peers.node_id}) >= majority(len(voters))

    async def commit(self, mutation: Callable[..., Any]) -> list[Event]:
        """Submit ``mutation`` to the journal and return its events once acknowledged.

        Raises ``QuorumUnavailable`` without writing if a majority of the voters is not
        reachable, or after ``ack_timeout`` if it stored the write but not enough members
        confirmed it (the write stays, and spreads when they come back).

        The write first needs a barrier (see the module docstring). A request that passed
        one when it began (``barrier`` in the same task, as the AWS layer runs it) has it:
        every write acknowledged before the request arrived is held here. The first commit
        after that barrier uses it; any other commit runs a barrier of its own.
        """
        if self.config.ack == "local":
            events = list(await self._journal.submit(mutation))
            self._tail.add(events)
            self._wake_pushers()
            return events
        passed = _passed_barrier.get() is self  # this request's own barrier, if it synced
        _passed_barrier.set(None)
        if not self._majority_reachable() or not (passed or await self._sync()):
            self.refused_writes += 1
            raise QuorumUnavailable("a majority of the cluster's members is not reachable")
        events = list(await self._journal.submit(mutation))
        if not events:
            return events
        self._tail.add(events)
        self._wake_pushers()
        own = self._peers.node_id
        seq = events[-1].seq
        with trio.move_on_after(self.config.ack_timeout):
            while True:
                voters = self._peers.voters()
                holding = 1 + sum(
                    1 for voter in voters - {own}
                    if self._known.get(voter, {}).get(own, 0) >= seq
                )
                if holding >= majority(len(voters)):
                    return events
                changed = self._known_changed
                await changed.wait()
        self.ack_timeouts += 1
        raise QuorumUnavailable(
            f"the write is stored but a majority did not confirm it within "
            f"{self.config.ack_timeout:g}s"
        )

    def _wake_pushers(self) -> None:
        self._committed.set()
        self._committed = trio.Event()

    def _learn(self, peer: str, vector: Mapping[str, int]) -> None:
        known = self._known.get(peer)
        merged = dict(vector) if known is None else _merge(known, vector)
        if merged != known:
            self._known[peer] = merged
            self._known_changed.set()
            self._known_changed = trio.Event()

    async def _ingest(self, peer: str, events: Sequence[Event]) -> None:
        if not events:
            return
        report = await self._journal.ingest(events)
        if report.conflicts:
            self.conflicts += len(report.conflicts)
            log.error(
                "replication.conflict peer=%s events=%s", peer,
                ",".join(f"{e.origin}:{e.seq}" for e in report.conflicts[:5]),
            )
        if report.quarantined:
            self.quarantined += len(report.quarantined)
            log.warning("replication.quarantined peer=%s count=%d kinds=%s", peer,
                        len(report.quarantined),
                        ",".join(sorted({e.kind for e in report.quarantined})))

    # -- reading ---------------------------------------------------------------------------

    async def barrier(self) -> bool:
        """Make this node hold every event a majority had acknowledged when the call was
        made; returns whether it could (``False`` when no majority answered within
        ``barrier_timeout``: the node then serves what it holds). Concurrent callers share
        rounds; a caller only joins a round that starts after its call."""
        synced = await self._sync()
        _passed_barrier.set(self if synced else None)
        return synced

    async def _sync(self) -> bool:
        if self.config.ack == "local" or majority(len(self._peers.voters())) == 1:
            return True
        if self._nursery is None or not self._majority_reachable():
            return False
        ticket = self._next_round
        pending = self._rounds_pending.get(ticket)
        if pending is None:
            pending = self._rounds_pending[ticket] = _Round()
        self._barrier_wanted.set()
        await pending.done.wait()
        return pending.synced

    async def _barrier_loop(self) -> None:
        while True:
            await self._barrier_wanted.wait()
            self._barrier_wanted = trio.Event()
            ticket = self._next_round
            self._next_round += 1
            pending = self._rounds_pending.pop(ticket, None) or _Round()
            try:
                pending.synced = await self._barrier_round()
            finally:
                pending.done.set()

    async def _barrier_round(self) -> bool:
        voters = self._peers.voters()
        asked = sorted(self._peers.reachable() & voters - {self._peers.node_id})
        need = majority(len(voters)) - 1
        if len(asked) < need:
            return False
        answers: dict[str, dict[str, int]] = {}
        target: dict[str, int] | None = None
        with trio.move_on_after(self.config.barrier_timeout):
            replies: trio.MemoryReceiveChannel[tuple[str, dict[str, int] | None]]
            send, replies = trio.open_memory_channel(len(asked))
            async with trio.open_nursery() as nursery:
                for peer in asked:
                    nursery.start_soon(self._ask_vector, peer, send)
                for _ in asked:
                    peer, vector = await replies.receive()
                    if vector is not None:
                        answers[peer] = vector
                        if len(answers) >= need:
                            break
                nursery.cancel_scope.cancel()
            if len(answers) < need:
                return False
            target = {}
            for vector in answers.values():
                target = _merge(target, vector)
            for peer, vector in sorted(answers.items(), key=lambda kv: -sum(kv[1].values())):
                if _covers(self._journal.position(), target):
                    break
                if not _covers(self._journal.position(), _clip(target, vector)):
                    try:
                        await self._pull_from(peer, until=target)
                    except (TransportError, KeyError, TypeError, ValueError) as error:
                        log.info("replication.barrier_pull_failed peer=%s error=%s", peer, error)
        synced = target is not None and _covers(self._journal.position(), target)
        if not synced:
            log.debug("replication.barrier_failed answered=%d needed=%d", len(answers), need)
        return synced

    async def _ask_vector(
        self, peer: str, send: trio.MemorySendChannel[tuple[str, dict[str, int] | None]]
    ) -> None:
        vector: dict[str, int] | None = None
        try:
            reply = await self._peers.request(
                peer, VV_METHOD, {}, timeout=self.config.barrier_timeout
            )
            vector = _vector(reply["vv"])
            self._learn(peer, vector)
        except (TransportError, KeyError, TypeError, ValueError) as error:
            log.debug("replication.vv_failed peer=%s error=%s", peer, error)
        send.send_nowait((peer, vector))

    # -- pulling ---------------------------------------------------------------------------

    async def _pull_from(self, peer: str, *, until: Mapping[str, int] | None = None) -> None:
        """Pull pages from ``peer`` until it has nothing more (or ``until`` is covered)."""
        while True:
            position = self._journal.position()
            if until is not None and _covers(position, until):
                return
            reply = await self._peers.request(
                peer, PULL_METHOD, {"vv": position, "max_bytes": self.config.batch_bytes},
                timeout=self.config.request_timeout,
            )
            vector = _vector(reply["vv"])
            self._learn(peer, vector)
            if reply.get("snapshot"):
                await self._install_snapshot_from(peer)
                if self._journal.position() == position:
                    return
                continue
            await self._ingest(peer, decode_events(reply["events"]))
            if not reply.get("more") or self._journal.position() == position:
                return

    async def _install_snapshot_from(self, peer: str) -> None:
        async with self._snapshot_lock:
            try:
                with trio.fail_after(self.config.snapshot_timeout):
                    info = await fetch_snapshot(self._peers, peer, self._journal, self._tmp_dir)
            except (SnapshotRejected, trio.TooSlowError) as error:
                log.warning("replication.snapshot_failed peer=%s error=%r", peer, error)
                return
        self.snapshots_installed += 1
        log.info("replication.snapshot_installed peer=%s size=%d", peer, info.size)

    async def anti_entropy_once(self) -> None:
        """One round: pull everything from a random reachable peer, sometimes compare digests."""
        candidates = sorted(self._peers.reachable())
        if not candidates:
            return
        peer = self._rng.choice(candidates)
        self._rounds += 1
        try:
            await self._pull_from(peer)
            self.last_pull = time.time()
            if self.config.digest_every and self._rounds % self.config.digest_every == 0:
                await self._compare_digests(peer)
        except (TransportError, KeyError, TypeError, ValueError) as error:
            log.info("replication.pull_failed peer=%s error=%s", peer, error)

    async def _compare_digests(self, peer: str) -> None:
        mine_before = self._journal.position()
        reply = await self._peers.request(
            peer, VV_METHOD, {"digest": True}, timeout=self.config.request_timeout
        )
        theirs = reply.get("state_hash")
        if theirs is None or _vector(reply["vv"]) != mine_before:
            return
        mine = await self._journal.state_hash()
        if self._journal.position() != mine_before or mine == theirs:
            return
        self.divergences += 1
        log.error(
            "replication.divergence peer=%s: same version vector, different state hash"
            " (%s here, %s there)", peer, mine[:16], str(theirs)[:16],
        )

    # -- pushing ---------------------------------------------------------------------------

    async def _push_loop(self, peer: str) -> None:
        """Send this node's own events to ``peer``, one bounded batch at a time."""
        own = self._peers.node_id
        backoff = 0.0
        while peer in self._peers.voters() | self._peers.reachable():
            woken = self._committed
            if backoff:
                with trio.move_on_after(backoff):
                    await trio.sleep_forever()
            sent = False
            if peer in self._peers.reachable():
                try:
                    sent = await self._push_once(peer, own)
                    backoff = 0.0
                except (TransportError, KeyError, TypeError, ValueError) as error:
                    log.debug("replication.push_failed peer=%s error=%s", peer, error)
                    backoff = min(max(2 * backoff, 0.2), 5.0)
                    continue
            if not sent:
                with trio.move_on_after(self.config.poll_interval):
                    await woken.wait()
        self._pushers.discard(peer)

    async def _push_once(self, peer: str, own: str) -> bool:
        """Push one batch if ``peer`` lacks own events; returns whether it sent one."""
        known = self._known.get(peer)
        if known is None:
            reply = await self._peers.request(
                peer, VV_METHOD, {}, timeout=self.config.request_timeout
            )
            self._learn(peer, _vector(reply["vv"]))
            known = self._known[peer]
        position = self._journal.position()
        if known.get(own, 0) >= position.get(own, 0):
            return False
        events = None
        if known.get(own, 0) >= self._journal.floor().get(own, 0):  # else: BehindFloor below
            events = self._tail.after(known.get(own, 0), position[own], self.config.batch_bytes)
        if events is None:
            after = dict(position)
            after[own] = known.get(own, 0)
            try:
                events = await self._journal.events(
                    after, limit=MAX_WIRE_EVENTS, max_bytes=self.config.batch_bytes
                )
            except BehindFloor:
                return False  # it needs a snapshot: its own anti-entropy pull will fetch one
        if not events:
            return False
        reply = await self._peers.request(
            peer, PUSH_METHOD, {"events": encode_events(events)},
            timeout=self.config.request_timeout,
        )
        self._learn(peer, _vector(reply["vv"]))
        return True

    async def _supervise_pushers(self, nursery: trio.Nursery) -> None:
        while True:
            for peer in sorted(self._peers.voters() - {self._peers.node_id} - self._pushers):
                self._pushers.add(peer)
                nursery.start_soon(self._push_loop, peer)
            await trio.sleep(self.config.poll_interval)

    async def _anti_entropy_loop(self) -> None:
        while True:
            await trio.sleep(self._rng.uniform(*self.config.pull_interval))
            await self.anti_entropy_once()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._barrier_loop)
            nursery.start_soon(self._supervise_pushers, nursery)
            nursery.start_soon(self._anti_entropy_loop)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
                for pending in self._rounds_pending.values():  # nobody will run them now
                    pending.done.set()
                self._rounds_pending.clear()


class _OwnTail:
    """This node's latest own events, as ``commit`` got them from the journal.

    A pusher sends a fresh write from here instead of reading it back from SQLite (a trip
    through a worker thread per peer per write). Only an unbroken run ending at the journal's
    own position is used: events written straight to the local journal leave a gap, and the
    pusher then reads the journal as before.
    """

    def __init__(self, limit: int) -> None:
        self._events: deque[Event] = deque(maxlen=limit)

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            if self._events and event.seq != self._events[-1].seq + 1:
                self._events.clear()
            self._events.append(event)

    def after(self, seq: int, top: int, max_bytes: int) -> list[Event] | None:
        """Own events ``seq+1 .. top`` (a page of about ``max_bytes``, one at least), or
        ``None`` when this tail does not hold all of them."""
        if not self._events or self._events[0].seq > seq + 1 or self._events[-1].seq != top:
            return None
        page: list[Event] = []
        size = 0
        for event in list(self._events)[seq + 1 - self._events[0].seq:]:
            if page and size + len(event.payload) > max_bytes:
                break
            page.append(event)
            size += len(event.payload)
        return page


@dataclass
class _Round:
    """One barrier round, as its callers wait for it."""

    done: trio.Event = field(default_factory=trio.Event)
    synced: bool = False


def _top(events: Iterable[Event]) -> dict[str, int]:
    top: dict[str, int] = {}
    for event in events:
        top[event.origin] = max(top.get(event.origin, 0), event.seq)
    return top


def _clip(target: Mapping[str, int], vector: Mapping[str, int]) -> dict[str, int]:
    """The part of ``target`` that ``vector`` can supply."""
    return {origin: min(seq, vector.get(origin, 0)) for origin, seq in target.items()}


class ReplicatedJournal:
    """A journal whose ``submit`` is a replicated ``commit``; everything else is the local
    journal's (reads included: a request runs one ``barrier`` before it starts)."""

    def __init__(self, journal: Any, replicator: Replicator) -> None:
        self.local = journal
        self._replicator = replicator

    async def submit(self, mutation: Callable[..., Any]) -> list[Event]:
        return await self._replicator.commit(mutation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)
