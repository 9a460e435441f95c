"""SWIM membership with Lifeguard, as a pure state machine.

Theory of operation
-------------------
Every node runs one `Swim`. It does no I/O and reads no clock: the runtime feeds it inputs
(`tick`, `receive`, `join`, `leave`, `update_meta`, `set_loop_lag`) with the current monotonic
time `now` (and optionally the wall clock `wall`, carried in pings and acks), and it answers with
`Send`s to deliver. Membership changes of other nodes are queued as `MemberChanged` events
(`take_events`). Randomness comes from the `random.Random` it is given, so a seeded simulation
(`cluster.swim_sim`) replays exactly.

*Failure detection.* Once per protocol period a node probes the next member of a shuffled
round-robin (every member is probed once per round, so a crash is noticed within one round in
the worst case and about one period on average across the cluster). The probe is a `ping`; if
no `ack` comes within the probe timeout, `ping_req`s go to k other members, who ping the target
and relay its `ack`, or answer `nack` if they heard nothing. No ack by the end of the period makes
the target *suspect*. A suspicion becomes *dead* after the Lifeguard suspicion timeout: it starts
at `max = 6·min` (`min = 4·max(1, log10 n)·period`) and shrinks logarithmically to `min` as k
other members independently confirm the suspicion. A suspected node that hears of it refutes by
announcing itself alive with a higher incarnation; suspicions about a member ride on every
message sent to it, so it hears quickly (Lifeguard's "buddy" rule; we extend it to members we
think dead, so a node that was paused learns it at once and comes back).

*Precedence* (as in SWIM and memberlist), per member, for an update of incarnation i against the
known incarnation j:
  alive(i)   wins over anything known when i > j (this is how a node refutes and rejoins);
  suspect(i) wins over alive or suspect when i >= j (a higher i restarts the suspicion);
  dead(i), left(i) win over alive or suspect when i >= j;
  nothing but the member's own alive(i > j) changes dead or left ("left is final" for that life).
Suspicion or death reports about unknown members are ignored; only alive introduces a member.

*Local health (Lifeguard).* A multiplier 0..`max_health` rises when our own probes fail without
the expected nacks (suggesting that we, not the target, are sick), when we must refute, and when
our event loop lags (`set_loop_lag`, or a `tick` that comes later than `next_deadline()`); it falls
by one on each successful probe. Probe period and timeout are stretched by `1 + multiplier`, so an
overloaded node slows down instead of accusing healthy peers. A tick that arrives late also
voids the probe in flight and gives suspicion timers back the time lost: time during which the
node could not run (a GC pause, SIGSTOP) must not count against the peers it was waiting for.

*Dissemination.* Each accepted change is queued and piggybacked on pings, acks, ping_reqs and
nacks, least-sent and newest first, within a byte budget; each is sent
`retransmit_mult·ceil(log10(n+1))` times, which reaches every member with high probability in
O(log n) periods. News (a change just accepted) is also pushed at once to `gossip_fanout` random
members, so that a suspect hears of its suspicion, and its refutation spreads, in well under the
suspicion timeout even on a lossy network (memberlist gets the same from gossiping every 200 ms;
pushing on news costs nothing while nothing changes). Every `push_pull_interval` a node exchanges
its full member list with a random member (anti-entropy: heals what gossip missed) and with a
random dead one (how two sides of a healed partition meet again); a remote "dead" arrives as a
suspicion that the node can still refute. `join` is a push-pull with each seed. `leave`
announces "left" to every member directly, since the node stops at once.

*What this is not.* Liveness here is soft state for routing and for `zeronode status`. The
durable membership (the voters that count toward quorums) changes only by an explicit join or
`zeronode remove`, never by this module: a dead member stays listed until `dead_reap_time`.

Wire messages (msgpack-ready dicts, string keys; `gossip` is a list of updates and optional):
  ping      {type, seq, target, addr, clock, gossip}     target: node id the ping is meant for
  ack       {type, seq, clock, gossip}                   answers a ping, or relays one (same seq)
  ping_req  {type, seq, target, target_addr, addr, timeout, gossip}
  nack      {type, seq, gossip}                          the relay heard nothing within timeout
  push_pull {type, reply, addr, members}                 members: full list of updates
  gossip    {type, gossip}                               updates only (used by leave)
  update    {node, addr, inc, state, from?, meta?}       from: the accuser of suspect/dead
`addr` is the sender's own address, `clock` its wall clock (seconds).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgpack  # type: ignore[import-untyped]

MemberState = Literal["alive", "suspect", "dead", "left"]
ALIVE: MemberState = "alive"
SUSPECT: MemberState = "suspect"
DEAD: MemberState = "dead"
LEFT: MemberState = "left"
_STATES = frozenset((ALIVE, SUSPECT, DEAD, LEFT))

Message = dict[str, Any]


@dataclass(frozen=True)
class SwimConfig:
    """Protocol constants; the defaults suit a LAN of Python nodes (research, design 2)."""

    protocol_period: float = 1.0
    #: A Python event loop jitters, so this is longer than memberlist's 500 ms.
    probe_timeout: float = 0.8
    indirect_probes: int = 2
    suspicion_mult: float = 4.0
    suspicion_max_mult: float = 6.0
    #: Lifeguard's k: independent confirmations that shrink a suspicion to its minimum.
    suspicion_confirmations: int = 2
    retransmit_mult: int = 4
    #: Members that news (a newly accepted update) is pushed to at once, beyond piggybacking.
    gossip_fanout: int = 3
    max_health: int = 8
    #: Each full unit of loop lag (seconds) raises the health multiplier's floor by one.
    loop_lag_unit: float = 0.1
    push_pull_interval: float = 30.0
    dead_reap_time: float = 24 * 3600.0
    max_meta_bytes: int = 512
    max_gossip_bytes: int = 4096
    #: Weight of a new sample in the clock-offset and round-trip averages.
    clock_smoothing: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.probe_timeout < self.protocol_period:
            raise ValueError("probe_timeout must be positive and shorter than protocol_period")
        if self.indirect_probes < 0 or self.suspicion_confirmations < 0:
            raise ValueError("indirect_probes and suspicion_confirmations cannot be negative")


@dataclass(frozen=True)
class Member:
    """What one node knows about a member at one moment (an immutable snapshot)."""

    node_id: str
    address: str
    incarnation: int
    state: MemberState
    #: `now` at which the state last changed.
    state_since: float
    meta: Mapping[str, Any]
    #: `now` of the last message received from it (None: never, or this is ourselves).
    last_heard: float | None = None
    #: Its wall clock minus ours, estimated from direct ping/ack round trips.
    clock_offset: float | None = None
    rtt: float | None = None


@dataclass(frozen=True)
class Send:
    """A message to deliver. `to_node_id` is None for a seed known only by its address."""

    to_node_id: str | None
    to_address: str
    message: Message


@dataclass(frozen=True)
class MemberChanged:
    """Another member appeared, or its state, incarnation, address or meta changed."""

    member: Member
    previous_state: MemberState | None


class _Record:
    __slots__ = (
        "address",
        "clock_offset",
        "incarnation",
        "last_heard",
        "meta",
        "node_id",
        "rtt",
        "state",
        "state_since",
    )

    def __init__(self, node_id: str, address: str, incarnation: int, state: MemberState,
                 since: float, meta: dict[str, Any]) -> None:
        self.node_id = node_id
        self.address = address
        self.incarnation = incarnation
        self.state: MemberState = state
        self.state_since = since
        self.meta = meta
        self.last_heard: float | None = None
        self.clock_offset: float | None = None
        self.rtt: float | None = None

    def snapshot(self) -> Member:
        return Member(self.node_id, self.address, self.incarnation, self.state,
                      self.state_since, dict(self.meta), self.last_heard, self.clock_offset,
                      self.rtt)

    def update(self, accuser: str | None = None) -> Message:
        message: Message = {"node": self.node_id, "addr": self.address,
                            "inc": self.incarnation, "state": self.state}
        if self.state == ALIVE:
            message["meta"] = self.meta
        elif accuser is not None:
            message["from"] = accuser
        return message


class _Suspicion:
    """Lifeguard's dynamic suspicion timer for one member."""

    __slots__ = (
        "confirmers",
        "deadline",
        "incarnation",
        "max_timeout",
        "min_timeout",
        "needed",
        "start",
    )

    def __init__(self, incarnation: int, accuser: str, start: float, min_timeout: float,
                 max_timeout: float, needed: int) -> None:
        self.incarnation = incarnation
        self.start = start
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        self.needed = needed
        self.confirmers = {accuser}
        # With nobody left to confirm, waiting for confirmations is pointless: use the minimum.
        self.deadline = start + (max_timeout if needed >= 1 else min_timeout)

    def confirm(self, accuser: str) -> bool:
        """Count an independent accuser; True if it was new and shortened the timer."""
        confirmed = len(self.confirmers) - 1
        if confirmed >= self.needed or accuser in self.confirmers:
            return False
        self.confirmers.add(accuser)
        fraction = math.log(confirmed + 2) / math.log(self.needed + 1)
        timeout = self.max_timeout - fraction * (self.max_timeout - self.min_timeout)
        self.deadline = self.start + max(self.min_timeout, timeout)
        return True


class _Probe:
    __slots__ = (
        "direct_deadline",
        "end",
        "indirect",
        "nacks",
        "nacks_expected",
        "sent_at",
        "sent_wall",
        "seq",
        "target",
    )

    def __init__(self, target: str, seq: int, now: float, wall: float, timeout: float,
                 period: float) -> None:
        self.target = target
        self.seq = seq
        self.sent_at = now
        self.sent_wall = wall
        self.direct_deadline = now + timeout
        self.end = now + period
        self.indirect = False
        self.nacks_expected = 0
        self.nacks = 0


class _Relay:
    """A ping we sent for another member's ping_req."""

    __slots__ = ("address", "deadline", "request_seq", "requester")

    def __init__(self, requester: str, address: str, request_seq: int, deadline: float) -> None:
        self.requester = requester
        self.address = address
        self.request_seq = request_seq
        self.deadline = deadline


class _Broadcast:
    __slots__ = ("order", "size", "transmits", "update")

    def __init__(self, update: Message, order: int) -> None:
        self.update = update
        self.size = len(msgpack.packb(update))
        self.transmits = 0
        self.order = order


_NUMBER = (int, float)
_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "ping": {"seq": int, "target": str, "addr": str, "clock": _NUMBER},
    "ack": {"seq": int, "clock": _NUMBER},
    "nack": {"seq": int},
    "ping_req": {"seq": int, "target": str, "target_addr": str, "addr": str,
                 "timeout": _NUMBER},
    "push_pull": {"reply": bool, "addr": str, "members": list},
    "gossip": {},
}


def _valid_message(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    kind = message.get("type")
    fields = _FIELDS.get(kind) if type(kind) is str else None
    if fields is None:
        return False
    if not all(isinstance(message.get(name), types) for name, types in fields.items()):
        return False
    return isinstance(message.get("gossip", []), list)


def _valid_update(update: Any) -> bool:
    # Exact types: msgpack decodes to exactly these, and this runs for every update received.
    if type(update) is not dict:
        return False
    get = update.get
    incarnation = get("inc")
    return (type(get("node")) is str and type(get("addr")) is str
            and type(incarnation) is int and incarnation >= 0 and get("state") in _STATES
            and type(get("from", "")) is str and type(get("meta", _NO_META)) is dict)


_NO_META: dict[str, Any] = {}


class Swim:
    """One node's view of the cluster: feed it inputs, deliver the `Send`s it returns."""

    def __init__(self, self_id: str, address: str, meta: Mapping[str, Any],
                 config: SwimConfig | None = None, rng: random.Random | None = None,
                 known: Iterable[Member] = ()) -> None:
        """`known`: members already believed (a snapshot, or a simulation's converged start);
        they are adopted and not gossiped; a suspect is adopted as alive, since its timer
        was not saved."""
        self.self_id = self_id
        self.config = config or SwimConfig()
        self._rng = rng or random.Random()
        self._self = _Record(self_id, address, 0, ALIVE, 0.0, self._checked_meta(meta))
        self._members: dict[str, _Record] = {}
        # Members neither dead nor left (not ourselves), for O(1) random choices.
        self._live: list[str] = []
        self._live_index: dict[str, int] = {}
        for member in known:
            if member.node_id != self_id:
                state = ALIVE if member.state == SUSPECT else member.state
                record = _Record(member.node_id, member.address, member.incarnation,
                                 state, member.state_since, dict(member.meta))
                self._members[member.node_id] = record
                if state == ALIVE:
                    self._add_live(member.node_id)
        self._probe_order: list[str] = []
        self._probe_index = 0
        self._probe: _Probe | None = None
        self._next_probe_at: float | None = None
        self._next_push_pull_at = 0.0
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, _Suspicion] = {}
        self._queue: dict[str, _Broadcast] = {}
        self._queue_order = 0
        self._news = False
        self._seq = 0
        self._health = 0
        #: The deadline we last asked for: what `next_deadline` answers.
        self._planned = -math.inf
        self._left = False
        self._events: list[MemberChanged] = []
        #: Messages and updates dropped as malformed (a peer's bug or version skew).
        self.malformed = 0

    # ----- what the runtime reads

    @property
    def health(self) -> int:
        """Lifeguard's local health multiplier: timeouts are stretched by (1 + health)."""
        return self._health

    @property
    def incarnation(self) -> int:
        return self._self.incarnation

    def member(self, node_id: str) -> Member | None:
        record = self._self if node_id == self.self_id else self._members.get(node_id)
        return record.snapshot() if record else None

    def members(self) -> list[Member]:
        """Every member we know, ourselves first; dead ones stay until reaped."""
        return [self._self.snapshot()] + [r.snapshot() for r in self._members.values()]

    def take_events(self) -> list[MemberChanged]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float:
        """When `tick` must next be called (-inf: now). A later tick counts as loop lag."""
        return self._planned

    def _compute_deadline(self) -> float:
        if self._left:
            return math.inf
        if self._next_probe_at is None:
            return -math.inf
        probe = self._probe
        deadline = self._next_push_pull_at
        if probe is None:
            deadline = min(deadline, self._next_probe_at)
        else:
            deadline = min(deadline, probe.end if probe.indirect else probe.direct_deadline)
        for relay in self._relays.values():
            deadline = min(deadline, relay.deadline)
        for suspicion in self._suspicions.values():
            deadline = min(deadline, suspicion.deadline)
        return deadline

    # ----- inputs

    def set_loop_lag(self, lag_seconds: float) -> None:
        """The runtime measured its event loop running `lag_seconds` late: raise our health
        multiplier's floor by one per `loop_lag_unit`, so our probes wait longer."""
        level = int(lag_seconds / self.config.loop_lag_unit + 1e-9)  # 0.3 / 0.1 is 2.999...
        self._health = max(self._health, min(self.config.max_health, level))

    def update_meta(self, meta: Mapping[str, Any]) -> None:
        """Publish new metadata (bounded by `max_meta_bytes`) under a new incarnation, which
        is what makes other members accept it."""
        self._self.meta = self._checked_meta(meta)
        self._self.incarnation += 1
        self._enqueue(self._self.update())

    def join(self, now: float, seeds: Iterable[tuple[str | None, str]]) -> list[Send]:
        """Push-pull our state with each seed `(node_id or None, address)`: each seed learns
        of us, and its reply tells us every member it knows."""
        if self._left:
            return []
        self._self.state_since = now
        out = [Send(seed_id, address, self._push_pull_message(reply=False))
               for seed_id, address in seeds
               if seed_id != self.self_id and address != self._self.address]
        self._planned = self._compute_deadline()
        return out

    def leave(self, now: float) -> list[Send]:
        """Leave gracefully: tell every live member directly, then stop for good."""
        if self._left:
            return []
        self._left = True
        self._planned = math.inf
        self._self.state = LEFT
        self._self.state_since = now
        message = {"type": "gossip", "gossip": [self._self.update()]}
        return [Send(r.node_id, r.address, message) for r in self._members.values()
                if r.state in (ALIVE, SUSPECT)]

    def tick(self, now: float, wall: float | None = None) -> list[Send]:
        """Run the timers that are due at `now`."""
        if self._left:
            return []
        wall = now if wall is None else wall
        out: list[Send] = []
        if self._next_probe_at is None:
            # Spread the nodes' probes over the period instead of all probing at once.
            self._next_probe_at = now + self._rng.random() * self.config.protocol_period
            self._next_push_pull_at = now + self._rng.random() * self.config.push_pull_interval
        elif now - self._planned >= self.config.loop_lag_unit:
            self._stalled(now, now - self._planned)
        for seq, relay in list(self._relays.items()):
            if now >= relay.deadline:
                del self._relays[seq]
                out.append(self._send(relay.requester, relay.address,
                                      {"type": "nack", "seq": relay.request_seq}))
        for node_id, suspicion in list(self._suspicions.items()):
            if now >= suspicion.deadline:
                self._declare(now, self._members[node_id], DEAD, suspicion.incarnation,
                              self.self_id)
        self._run_probe(now, wall, out)
        if now >= self._next_push_pull_at:
            self._next_push_pull_at = now + self.config.push_pull_interval
            self._reap(now)
            # One live member for anti-entropy, and one dead one (Serf's reconnect): after a
            # partition heals, that is how the two sides find each other again.
            peers = self._random_members(1, exclude=None)
            dead = [r for r in self._members.values() if r.state == DEAD]
            if dead:
                peers.append(self._rng.choice(dead))
            for peer in peers:
                message = self._push_pull_message(reply=False)
                out.append(Send(peer.node_id, peer.address, message))
        self._push_news(out)
        self._planned = self._compute_deadline()
        return out

    def receive(self, now: float, sender: str, message: Any,
                wall: float | None = None) -> list[Send]:
        """Handle a message from `sender`, the node id the transport authenticated.
        Malformed messages are dropped whole (counted in `malformed`)."""
        if self._left or sender == self.self_id:
            return []
        if not _valid_message(message):
            self.malformed += 1
            return []
        wall = now if wall is None else wall
        record = self._members.get(sender)
        if record is not None:
            record.last_heard = now
        for update in message.get("gossip", ()):
            self._apply(now, update, sender, from_push_pull=False)
        out: list[Send] = []
        kind = message["type"]
        if kind == "ping":
            if message["target"] == self.self_id:
                out.append(self._send(sender, message["addr"],
                                      {"type": "ack", "seq": message["seq"], "clock": wall}))
        elif kind == "ack":
            self._on_ack(now, wall, sender, message, out)
        elif kind == "nack":
            probe = self._probe
            if probe is not None and probe.indirect and message["seq"] == probe.seq:
                probe.nacks += 1
        elif kind == "ping_req":
            self._on_ping_req(now, wall, sender, message, out)
        elif kind == "push_pull":
            for update in message["members"]:
                self._apply(now, update, sender, from_push_pull=True)
            if not message["reply"]:
                out.append(Send(sender, message["addr"], self._push_pull_message(reply=True)))
        self._push_news(out)
        self._planned = self._compute_deadline()
        return out

    # ----- probing

    def _run_probe(self, now: float, wall: float, out: list[Send]) -> None:
        probe = self._probe
        target = self._members.get(probe.target) if probe is not None else None
        if probe is not None and (target is None or target.state not in (ALIVE, SUSPECT)):
            self._probe = None  # it died or left meanwhile: nothing left to find out
        elif probe is not None and target is not None:
            if not probe.indirect and now >= probe.direct_deadline:
                probe.indirect = True
                helpers = self._random_members(self.config.indirect_probes,
                                               exclude=probe.target)
                # Half the time left for the relays to wait, half for their answers to come.
                timeout = (probe.end - now) / 2
                for helper in helpers:
                    out.append(self._send(helper.node_id, helper.address, {
                        "type": "ping_req", "seq": probe.seq, "target": target.node_id,
                        "target_addr": target.address, "addr": self._self.address,
                        "timeout": timeout}))
                probe.nacks_expected = len(helpers)
            if now >= probe.end:
                self._probe = None
                missing = probe.nacks_expected - probe.nacks
                # Relays that stayed silent suggest that we, not the target, are the problem.
                self._adjust_health(missing if probe.nacks_expected else 1)
                self._apply_suspect(now, target, target.incarnation, self.self_id)
        if self._probe is None and now >= self._next_probe_at:  # type: ignore[operator]
            scale = 1 + self._health
            self._next_probe_at = now + self.config.protocol_period * scale
            target = self._next_target()
            if target is not None:
                self._seq += 1
                self._probe = _Probe(target.node_id, self._seq, now, wall,
                                     self.config.probe_timeout * scale,
                                     self.config.protocol_period * scale)
                out.append(self._ping(target.node_id, target.address, self._seq, wall))

    def _next_target(self) -> _Record | None:
        """The next alive or suspect member of a shuffled round-robin."""
        for _ in range(2):
            while self._probe_index < len(self._probe_order):
                record = self._members.get(self._probe_order[self._probe_index])
                self._probe_index += 1
                if record is not None and record.state in (ALIVE, SUSPECT):
                    return record
            self._probe_order = [r.node_id for r in self._members.values()
                                 if r.state in (ALIVE, SUSPECT)]
            self._rng.shuffle(self._probe_order)
            self._probe_index = 0
        return None

    def _on_ack(self, now: float, wall: float, sender: str, message: Message,
                out: list[Send]) -> None:
        seq = message["seq"]
        probe = self._probe
        if probe is not None and seq == probe.seq:
            self._probe = None
            self._adjust_health(-1)
            record = self._members.get(sender)
            if sender == probe.target and record is not None:
                self._sample_clock(record, now - probe.sent_at,
                                   message["clock"] - (probe.sent_wall + wall) / 2)
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            out.append(self._send(relay.requester, relay.address,
                                  {"type": "ack", "seq": relay.request_seq, "clock": wall}))

    def _on_ping_req(self, now: float, wall: float, sender: str, message: Message,
                     out: list[Send]) -> None:
        if message["target"] == self.self_id:
            out.append(self._send(sender, message["addr"],
                                  {"type": "ack", "seq": message["seq"], "clock": wall}))
            return
        self._seq += 1
        timeout = min(max(message["timeout"], 0.0), self.config.probe_timeout)
        self._relays[self._seq] = _Relay(sender, message["addr"], message["seq"], now + timeout)
        out.append(self._ping(message["target"], message["target_addr"], self._seq, wall))

    def _ping(self, target: str, address: str, seq: int, wall: float) -> Send:
        return self._send(target, address, {"type": "ping", "seq": seq, "target": target,
                                            "addr": self._self.address, "clock": wall})

    def _sample_clock(self, record: _Record, rtt: float, offset: float) -> None:
        weight = self.config.clock_smoothing
        if record.clock_offset is None or record.rtt is None:
            record.clock_offset, record.rtt = offset, rtt
        else:
            record.clock_offset += weight * (offset - record.clock_offset)
            record.rtt += weight * (rtt - record.rtt)

    def _adjust_health(self, delta: int) -> None:
        self._health = min(self.config.max_health, max(0, self._health + delta))

    def _stalled(self, now: float, lateness: float) -> None:
        """We ran `lateness` seconds after our deadline (loop lag, a GC pause, SIGSTOP).
        Count it as loop lag; drop the probe and relays in flight, which we can no longer
        judge; and give each suspicion its remaining time back, and at least one period, so
        that refutations which queued up while we were stopped are read before anyone dies."""
        self.set_loop_lag(lateness)
        self._probe = None
        self._relays.clear()
        self._next_probe_at = now
        for suspicion in self._suspicions.values():
            suspicion.start += lateness
            suspicion.deadline = max(suspicion.deadline + lateness,
                                     now + self.config.protocol_period)

    def _random_members(self, count: int, exclude: str | None,
                        states: tuple[MemberState, ...] = (ALIVE,)) -> list[_Record]:
        """Up to `count` distinct random members in `states`, other than `exclude`."""
        live, members, rng = self._live, self._members, self._rng
        chosen: dict[str, _Record] = {}
        # Rejection sampling keeps this O(count) in a large cluster; a small or mostly
        # unsuitable one falls back to a scan.
        for _ in range(4 * count if len(live) > 4 * count else 0):
            record = members[live[int(rng.random() * len(live))]]
            if record.state in states and record.node_id != exclude:
                chosen[record.node_id] = record
                if len(chosen) == count:
                    return list(chosen.values())
        candidates = [members[node_id] for node_id in live
                      if members[node_id].state in states and node_id != exclude]
        return rng.sample(candidates, min(count, len(candidates)))

    def _add_live(self, node_id: str) -> None:
        self._live_index[node_id] = len(self._live)
        self._live.append(node_id)

    def _remove_live(self, node_id: str) -> None:
        index = self._live_index.pop(node_id)
        last = self._live.pop()
        if last != node_id:
            self._live[index] = last
            self._live_index[last] = index

    # ----- membership rules

    def _apply(self, now: float, update: Any, sender: str, from_push_pull: bool) -> None:
        if not _valid_update(update):
            self.malformed += 1
            return
        node_id, incarnation, state = update["node"], update["inc"], update["state"]
        accuser = update.get("from") or sender
        if node_id == self.self_id:
            self._about_self(update)
            return
        record = self._members.get(node_id)
        if state == ALIVE:
            self._apply_alive(now, record, update)
        elif record is None:
            return  # only alive introduces a member
        elif state == SUSPECT or (state == DEAD and from_push_pull):
            # A full-state "dead" may be stale: suspect instead, so the node can still refute.
            self._apply_suspect(now, record, incarnation, accuser)
        else:
            if record.state in (ALIVE, SUSPECT) and incarnation >= record.incarnation:
                self._declare(now, record, state, incarnation, accuser)

    def _apply_alive(self, now: float, record: _Record | None, update: Message) -> None:
        if record is None:
            record = _Record(update["node"], update["addr"], update["inc"], ALIVE, now,
                             dict(update.get("meta", {})))
            self._members[record.node_id] = record
            self._add_live(record.node_id)
            # Probe newcomers within the current round rather than after it.
            position = self._rng.randint(self._probe_index, len(self._probe_order))
            self._probe_order.insert(position, record.node_id)
            self._enqueue(record.update())
            self._events.append(MemberChanged(record.snapshot(), None))
            return
        if update["inc"] <= record.incarnation:
            return
        previous = record.state
        self._suspicions.pop(record.node_id, None)
        if previous in (DEAD, LEFT):
            self._add_live(record.node_id)
        record.incarnation = update["inc"]
        record.address = update["addr"]
        record.meta = dict(update.get("meta", {}))
        if previous != ALIVE:
            record.state, record.state_since = ALIVE, now
        self._enqueue(record.update())
        self._events.append(MemberChanged(record.snapshot(), previous))

    def _apply_suspect(self, now: float, record: _Record, incarnation: int,
                       accuser: str) -> None:
        if record.state in (DEAD, LEFT) or incarnation < record.incarnation:
            return
        suspicion = self._suspicions.get(record.node_id)
        if record.state == SUSPECT and suspicion is not None \
                and incarnation == suspicion.incarnation:
            if suspicion.confirm(accuser):
                # Re-gossip so the others get this independent confirmation too; it only
                # shortens timers, so piggybacking is soon enough.
                self._enqueue(record.update(accuser), news=False)
            return
        previous = record.state
        record.incarnation = incarnation
        record.state, record.state_since = SUSPECT, now
        self._suspicions[record.node_id] = self._new_suspicion(now, incarnation, accuser)
        self._enqueue(record.update(accuser))
        self._events.append(MemberChanged(record.snapshot(), previous))

    def _new_suspicion(self, now: float, incarnation: int, accuser: str) -> _Suspicion:
        n = len(self._live) + 1
        needed = self.config.suspicion_confirmations
        if n - 2 < needed:  # not counting ourselves and the suspect
            needed = 0
        minimum = (self.config.suspicion_mult * max(1.0, math.log10(n))
                   * self.config.protocol_period)
        return _Suspicion(incarnation, accuser, now, minimum,
                          self.config.suspicion_max_mult * minimum, needed)

    def _declare(self, now: float, record: _Record, state: MemberState, incarnation: int,
                 accuser: str) -> None:
        """Make `record` dead or left (the caller checked precedence)."""
        previous = record.state
        self._suspicions.pop(record.node_id, None)
        self._remove_live(record.node_id)
        record.incarnation = incarnation
        record.state, record.state_since = state, now
        self._enqueue(record.update(accuser if state == DEAD else None))
        self._events.append(MemberChanged(record.snapshot(), previous))

    def _about_self(self, update: Message) -> None:
        """Refute anything about us that is not our current alive record."""
        me = self._self
        incarnation = update["inc"]
        if update["state"] == ALIVE:
            stale = incarnation > me.incarnation or (
                incarnation == me.incarnation
                and (update["addr"] != me.address or update.get("meta", {}) != me.meta))
        else:
            stale = incarnation >= me.incarnation
        if stale:
            me.incarnation = max(me.incarnation, incarnation) + 1
            self._adjust_health(1)
            self._enqueue(me.update())

    def _reap(self, now: float) -> None:
        """Forget members dead or left for `dead_reap_time`; gossip cannot revive them,
        since only an alive update introduces a member."""
        horizon = now - self.config.dead_reap_time
        for node_id in [r.node_id for r in self._members.values()
                        if r.state in (DEAD, LEFT) and r.state_since <= horizon]:
            del self._members[node_id]

    # ----- dissemination

    def _enqueue(self, update: Message, news: bool = True) -> None:
        """Queue `update` for piggybacking (replacing any older update about that node) and,
        if it is `news`, for an immediate push."""
        self._queue_order += 1
        self._queue[update["node"]] = _Broadcast(update, self._queue_order)
        self._news = self._news or news

    def _push_news(self, out: list[Send]) -> None:
        """Send what was just learned to a few random members now, rather than wait for the
        next probes: a suspect must hear of its suspicion, and its refutation must reach
        everyone, well within the suspicion timeout."""
        if not self._news:
            return
        self._news = False
        for member in self._random_members(self.config.gossip_fanout, exclude=None,
                                           states=(ALIVE, SUSPECT)):
            out.append(self._send(member.node_id, member.address, {"type": "gossip"}))

    def _send(self, to: str, address: str, message: Message) -> Send:
        message["gossip"] = self._gossip_for(to)
        return Send(to, address, message)

    def _gossip_for(self, to: str) -> list[Message]:
        gossip: list[Message] = []
        record = self._members.get(to)
        if record is not None and record.state in (SUSPECT, DEAD):
            gossip.append(record.update(self.self_id))  # tell it, so it can refute
        if not self._queue:
            return gossip
        limit = self.config.retransmit_mult * math.ceil(math.log10(len(self._live) + 2))
        budget = self.config.max_gossip_bytes
        for node_id, item in sorted(self._queue.items(),
                                    key=lambda kv: (kv[1].transmits, -kv[1].order)):
            if item.size > budget:
                continue
            budget -= item.size
            gossip.append(item.update)
            item.transmits += 1
            if item.transmits >= limit:
                del self._queue[node_id]
        return gossip

    def _push_pull_message(self, reply: bool) -> Message:
        members = [self._self.update()] + [r.update() for r in self._members.values()]
        return {"type": "push_pull", "reply": reply, "addr": self._self.address,
                "members": members}

    def _checked_meta(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        copied = dict(meta)
        size = len(msgpack.packb(copied))
        if size > self.config.max_meta_bytes:
            raise ValueError(f"member meta is {size} bytes, over {self.config.max_meta_bytes}")
        return copied
