"""A deterministic simulation of many `Swim` nodes over a faulty in-memory network.

Theory of operation
-------------------
One process, one virtual clock, one priority queue of timed events: "tick node X" (at the time
its `Swim.next_deadline()` asks for), "deliver this message to node X", and scheduled actions
(crash, pause, resume, partition...). Popping events in time order and feeding each node only
what happens to it is all a network of SWIM nodes is; nothing sleeps, so hundreds of protocol
periods of a hundred nodes take seconds. Every random choice — message loss, delay, the nodes'
own probe order — comes from one seeded `random.Random`, so a seed replays exactly.

The network routes a `Send` by address (as IP does) and refuses it when the node at that address
is not the node id the sender named (as the mTLS identity pin does). It loses each message with
probability `loss`, delays it by `min_delay` plus an exponential jitter, and drops messages
between nodes on different sides of a partition. A crashed node neither runs nor receives; a
paused node (SIGSTOP) keeps its state but neither runs nor receives until resumed — its
messages are lost, as a sender's RPC would time out — and then finds its timers overdue.

An observer reads every node's `MemberChanged` events to measure, per crash, when some node first
suspected the victim, when some node first declared it dead, and when every running node had;
and it records every *false positive*: a node declared dead while it was running and had never
been crashed, paused, partitioned away or made to leave.
"""

from __future__ import annotations

import functools
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]

from cluster.swim import (
    ALIVE,
    DEAD,
    SUSPECT,
    Member,
    MemberChanged,
    Send,
    Swim,
    SwimConfig,
)


@dataclass(frozen=True)
class Network:
    """The simulated network's faults. Delays are in (virtual) seconds."""

    loss: float = 0.0
    min_delay: float = 0.0005
    mean_jitter: float = 0.002


@dataclass(frozen=True)
class Detection:
    """How long after a crash (seconds; None: not within the run) the cluster noticed it."""

    crashed_at: float
    first_suspect: float | None
    first_dead: float | None
    all_dead: float | None


@dataclass(frozen=True)
class FalsePositive:
    time: float
    observer: str
    subject: str


@dataclass
class SimNode:
    node_id: str
    address: str
    swim: Swim
    status: str = "running"  # running | crashed | paused | left
    #: Its wall clock minus the simulation's (what `Member.clock_offset` should find).
    clock_offset: float = 0.0
    #: Ever crashed, paused or left: being declared dead is then no false positive.
    faulted: bool = False
    group: int = 0
    tick_at: float | None = field(default=None, repr=False)


_TICK, _DELIVER, _ACTION = 0, 1, 2


class Simulation:
    """N nodes named n0000, n0001, ... at addresses 10.0.x.y:7946."""

    def __init__(self, n: int, seed: int = 0, config: SwimConfig | None = None,
                 network: Network | None = None, converged: bool = True,
                 wire_format: bool = False) -> None:
        """`converged`: start with every node knowing every other as alive (what a long-lived
        cluster looks like); otherwise node 0 starts alone and the others join through it
        over the first protocol period. `wire_format`: pass every message through msgpack,
        as the transport will (slower; proves the messages are wire-ready)."""
        self.rng = random.Random(seed)
        self.config = config or SwimConfig()
        self.network = network or Network()
        self.now = 0.0
        self.nodes: list[SimNode] = []
        self._by_id: dict[str, int] = {}
        self._by_address: dict[str, int] = {}
        self._queue: list[tuple[float, int, int, Any]] = []
        self._order = 0
        self.false_positives: list[FalsePositive] = []
        self.first_suspect: dict[str, float] = {}
        self.first_dead: dict[str, float] = {}
        self.all_dead: dict[str, float] = {}
        self._dead_views: dict[str, set[str]] = {}
        self._running = n
        self._watch: str | None = None
        self.messages_sent = 0
        #: Distinct suspicions raised, as (member, incarnation): true ones and false ones.
        self.suspicions: set[tuple[str, int]] = set()
        self._wire_format = wire_format
        ids = [f"n{i:04d}" for i in range(n)]
        addresses = [f"10.0.{i // 256}.{i % 256}:7946" for i in range(n)]
        known = [Member(i, a, 0, ALIVE, 0.0, {}) for i, a in zip(ids, addresses)] \
            if converged else []
        for index, (node_id, address) in enumerate(zip(ids, addresses)):
            swim = Swim(node_id, address, {}, self.config, self._child_rng(), known)
            self.nodes.append(SimNode(node_id, address, swim))
            self._by_id[node_id] = index
            self._by_address[address] = index
        for index, node in enumerate(self.nodes):
            if converged or index == 0:
                self._schedule_tick(index)
            else:
                seeds: list[tuple[str | None, str]] = [(None, self.nodes[0].address)]
                self.at(self.rng.random() * self.config.protocol_period,
                        functools.partial(self._join, node, seeds))

    # ----- running

    def at(self, time: float, action: Callable[[], None]) -> None:
        """Run `action` at virtual time `time`."""
        self._push(time, _ACTION, action)

    def run_until(self, time: float) -> None:
        """Process every event up to `time` (or until a watched crash is fully detected)."""
        queue = self._queue
        while queue and queue[0][0] <= time:
            when, _, kind, payload = heapq.heappop(queue)
            self.now = when
            if kind == _TICK:
                node = self.nodes[payload]
                if node.tick_at == when and node.status == "running":
                    node.tick_at = None
                    self._dispatch(node, node.swim.tick(when, when + node.clock_offset))
                    self._after_input(payload)
            elif kind == _DELIVER:
                index, sender, message = payload
                node = self.nodes[index]
                if node.status == "running":
                    self._dispatch(node, node.swim.receive(when, sender, message,
                                                           when + node.clock_offset))
                    self._after_input(index)
            else:
                payload()
            if self._watch is not None and self._watch in self.all_dead:
                return
        self.now = max(self.now, time)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    # ----- faults

    def crash(self, node_id: str) -> None:
        node = self.node(node_id)
        node.status, node.faulted = "crashed", True
        self._running -= 1
        for table in (self.first_suspect, self.first_dead, self.all_dead):
            table.pop(node_id, None)
        self._check_all_dead(node_id)

    def restart(self, node_id: str, seeds: int = 3) -> None:
        """Start a crashed node afresh (incarnation 0, knowing nobody) and join via `seeds`
        random running nodes, as a restarted process with static seeds would."""
        index = self._by_id[node_id]
        node = self.nodes[index]
        node.swim = Swim(node_id, node.address, {}, self.config, self._child_rng())
        if node.status != "running":
            self._running += 1
        node.status = "running"
        peers = [n for n in self.nodes if n.status == "running" and n is not node]
        chosen = self.rng.sample(peers, min(seeds, len(peers)))
        self._join(node, [(None, peer.address) for peer in chosen])

    def pause(self, node_id: str) -> None:
        node = self.node(node_id)
        node.status, node.faulted = "paused", True
        self._running -= 1
        self._check_all_dead(node_id)

    def resume(self, node_id: str) -> None:
        index = self._by_id[node_id]
        self.nodes[index].status = "running"
        self._running += 1
        self._schedule_tick(index)

    def leave(self, node_id: str) -> None:
        node = self.node(node_id)
        self._dispatch(node, node.swim.leave(self.now))
        node.status, node.faulted = "left", True
        self._running -= 1

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut the network between `groups`; nodes named in none form one more group. Every
        node then counts as faulted: declaring the other side dead is the detector working."""
        for node in self.nodes:
            node.group = 0
        for number, group in enumerate(groups, start=1):
            for node_id in group:
                node = self.node(node_id)
                node.group = number
        if groups:
            for node in self.nodes:
                node.faulted = True

    def heal(self) -> None:
        self.partition()

    # ----- measuring

    def node(self, node_id: str) -> SimNode:
        return self.nodes[self._by_id[node_id]]

    def view(self, observer: str, subject: str) -> Member | None:
        return self.node(observer).swim.member(subject)

    def measure_crash(self, victim: str, within: float) -> Detection:
        """Crash `victim` now and run until every running node has it dead (or `within`)."""
        crashed_at = self.now
        self.crash(victim)
        self._watch = victim
        try:
            self.run_until(crashed_at + within)
        finally:
            self._watch = None

        def since(table: dict[str, float]) -> float | None:
            return table[victim] - crashed_at if victim in table else None

        return Detection(crashed_at, since(self.first_suspect), since(self.first_dead),
                         since(self.all_dead))

    # ----- plumbing

    def _child_rng(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))

    def _push(self, time: float, kind: int, payload: Any) -> None:
        self._order += 1
        heapq.heappush(self._queue, (time, self._order, kind, payload))

    def _schedule_tick(self, index: int) -> None:
        node = self.nodes[index]
        when = max(self.now, node.swim.next_deadline())
        if node.tick_at != when:
            node.tick_at = when
            self._push(when, _TICK, index)

    def _join(self, node: SimNode, seeds: list[tuple[str | None, str]]) -> None:
        self._dispatch(node, node.swim.join(self.now, seeds))
        self._after_input(self._by_id[node.node_id])

    def _after_input(self, index: int) -> None:
        node = self.nodes[index]
        if node.status == "running":
            self._schedule_tick(index)
        for event in node.swim.take_events():
            self._observe(node.node_id, event)

    def _dispatch(self, node: SimNode, sends: list[Send]) -> None:
        network = self.network
        rng = self.rng
        for send in sends:
            self.messages_sent += 1
            index = self._by_address.get(send.to_address)
            if index is None:
                continue
            target = self.nodes[index]
            if send.to_node_id is not None and send.to_node_id != target.node_id:
                continue
            if target.group != node.group or (network.loss and rng.random() < network.loss):
                continue
            delay = network.min_delay
            if network.mean_jitter:
                delay += rng.expovariate(1.0 / network.mean_jitter)
            message = send.message
            if self._wire_format:
                message = msgpack.unpackb(msgpack.packb(message, use_bin_type=True), raw=False)
            self._push(self.now + delay, _DELIVER, (index, node.node_id, message))

    def _observe(self, observer: str, event: MemberChanged) -> None:
        subject = event.member.node_id
        state = event.member.state
        if state == SUSPECT:
            self.suspicions.add((subject, event.member.incarnation))
            self.first_suspect.setdefault(subject, self.now)
        views = self._dead_views.setdefault(subject, set())
        if state == DEAD:
            self.first_dead.setdefault(subject, self.now)
            views.add(observer)
            node = self.nodes[self._by_id[subject]]
            if node.status == "running" and not node.faulted:
                self.false_positives.append(FalsePositive(self.now, observer, subject))
            self._check_all_dead(subject)
        else:
            views.discard(observer)

    def _check_all_dead(self, subject: str) -> None:
        """Record when every running node (but the subject) holds `subject` dead."""
        views = self._dead_views.get(subject, set())
        if subject in self.all_dead or self.node(subject).status == "running":
            return
        if len(views) >= self._running and all(
                node.node_id in views for node in self.nodes if node.status == "running"):
            self.all_dead[subject] = self.now
