"""The SWIM + Lifeguard state machine, one rule at a time, driven by hand-made messages.

Times are plain numbers: the machine reads no clock. Tests that tick at arbitrary times do so on
fresh nodes (a node's first tick only arms its timers) or tick exactly at `next_deadline()`, so
that the late-tick rule (a late tick is loop lag) fires only where a test wants it.
"""

from __future__ import annotations

import math
import random
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.swim import (
    ALIVE,
    DEAD,
    LEFT,
    SUSPECT,
    Member,
    MemberChanged,
    Send,
    Swim,
    SwimConfig,
)

PEERS = ("b", "c", "d", "e")


def addr(node_id: str) -> str:
    return f"{node_id}.lan:7946"


def make(self_id: str = "a", peers: tuple[str, ...] = PEERS, seed: int = 1,
         **config: Any) -> Swim:
    known = [Member(p, addr(p), 0, ALIVE, 0.0, {}) for p in peers]
    return Swim(self_id, addr(self_id), {"version": "1"}, SwimConfig(**config),
                random.Random(seed), known)


def update(node_id: str, inc: int, state: str, accuser: str | None = None,
           **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"node": node_id, "addr": addr(node_id), "inc": inc,
                              "state": state}
    if state == ALIVE:
        result["meta"] = {}
    if accuser is not None:
        result["from"] = accuser
    result.update(extra)
    return result


def tell(swim: Swim, *updates: dict[str, Any], sender: str = "b",
         now: float = 0.0) -> list[Send]:
    return swim.receive(now, sender, {"type": "gossip", "gossip": list(updates)})


def view(swim: Swim, node_id: str) -> tuple[str, int] | None:
    member = swim.member(node_id)
    return (member.state, member.incarnation) if member else None


def step(swim: Swim) -> tuple[float, list[Send]]:
    """Tick exactly when the node asked to be ticked."""
    now = swim.next_deadline()
    return now, swim.tick(now)


def start_probe(swim: Swim) -> tuple[float, Send]:
    """Run the node until it sends its first probe; return when, and the ping."""
    swim.tick(0.0)
    now, sends = step(swim)
    (ping,) = [s for s in sends if s.message["type"] == "ping"]
    return now, ping


def carries(send: Send, node_id: str, state: str, inc: int) -> bool:
    return any(u["node"] == node_id and u["state"] == state and u["inc"] == inc
               for u in send.message.get("gossip", ()))


# ----- precedence (SWIM / memberlist)


@pytest.mark.parametrize(("known", "incoming", "expected"), [
    ((ALIVE, 1), (ALIVE, 2), (ALIVE, 2)),
    ((ALIVE, 1), (ALIVE, 1), (ALIVE, 1)),
    ((ALIVE, 1), (SUSPECT, 1), (SUSPECT, 1)),
    ((ALIVE, 1), (SUSPECT, 0), (ALIVE, 1)),
    ((SUSPECT, 1), (ALIVE, 1), (SUSPECT, 1)),
    ((SUSPECT, 1), (ALIVE, 2), (ALIVE, 2)),
    ((SUSPECT, 1), (SUSPECT, 2), (SUSPECT, 2)),
    ((ALIVE, 1), (DEAD, 1), (DEAD, 1)),
    ((SUSPECT, 1), (DEAD, 1), (DEAD, 1)),
    ((SUSPECT, 2), (DEAD, 1), (SUSPECT, 2)),
    ((DEAD, 1), (SUSPECT, 5), (DEAD, 1)),
    ((DEAD, 1), (ALIVE, 1), (DEAD, 1)),
    ((DEAD, 1), (ALIVE, 2), (ALIVE, 2)),
    ((DEAD, 1), (LEFT, 2), (DEAD, 1)),
    ((ALIVE, 1), (LEFT, 1), (LEFT, 1)),
    ((SUSPECT, 1), (LEFT, 1), (LEFT, 1)),
    ((LEFT, 1), (SUSPECT, 3), (LEFT, 1)),
    ((LEFT, 1), (DEAD, 3), (LEFT, 1)),
    ((LEFT, 1), (ALIVE, 1), (LEFT, 1)),
    ((LEFT, 1), (ALIVE, 2), (ALIVE, 2)),
])
def test_update_precedence(known: tuple[str, int], incoming: tuple[str, int],
                           expected: tuple[str, int]) -> None:
    swim = Swim("a", addr("a"), {}, SwimConfig(), random.Random(1),
                [Member(p, addr(p), known[1], ALIVE, 0.0, {}) for p in PEERS])
    if known[0] != ALIVE:
        tell(swim, update("e", known[1], known[0], accuser="c"))
    assert view(swim, "e") == known
    tell(swim, update("e", incoming[1], incoming[0], accuser="c"), now=1.0)
    assert view(swim, "e") == expected


def test_left_is_final_until_the_node_itself_rejoins() -> None:
    swim = make()
    tell(swim, update("e", 3, LEFT))
    for claim in (update("e", 9, SUSPECT, "b"), update("e", 9, DEAD, "b"),
                  update("e", 3, ALIVE)):
        tell(swim, claim)
        assert view(swim, "e") == (LEFT, 3)
    tell(swim, update("e", 4, ALIVE))
    assert view(swim, "e") == (ALIVE, 4)


def test_only_alive_introduces_a_member() -> None:
    swim = make()
    tell(swim, update("z", 5, SUSPECT, "b"), update("y", 5, DEAD, "b"), update("x", 5, LEFT))
    assert [view(swim, n) for n in "zyx"] == [None, None, None]
    tell(swim, update("z", 0, ALIVE, meta={"version": "2"}))
    member = swim.member("z")
    assert member is not None
    assert (member.state, member.address, member.meta) == (ALIVE, addr("z"), {"version": "2"})


def test_member_changed_events_report_changes_only() -> None:
    swim = make()
    tell(swim, update("z", 0, ALIVE))
    tell(swim, update("z", 0, ALIVE))  # nothing new
    swim.receive(1.0, "z", {"type": "gossip"})  # heard from: not a change
    tell(swim, update("z", 0, SUSPECT, "b"))
    events = swim.take_events()
    assert [(e.member.node_id, e.previous_state, e.member.state) for e in events] == [
        ("z", None, ALIVE), ("z", ALIVE, SUSPECT)]
    assert all(isinstance(e, MemberChanged) for e in events)
    assert swim.take_events() == []


# ----- refutation


@pytest.mark.parametrize("claim", [SUSPECT, DEAD, LEFT])
def test_a_node_refutes_claims_about_itself(claim: str) -> None:
    swim = make()
    sends = tell(swim, update("a", 5, claim, accuser="b"))
    assert swim.incarnation == 6
    assert view(swim, "a") == (ALIVE, 6)
    assert swim.health == 1  # being suspected hints that we may be the slow one
    # The refutation is pushed at once to a few members, and rides on later messages too.
    assert len(sends) == SwimConfig().gossip_fanout
    assert all(carries(s, "a", ALIVE, 6) for s in sends)


def test_stale_claims_about_itself_are_ignored() -> None:
    swim = make()
    tell(swim, update("a", 0, SUSPECT, accuser="b"))
    assert swim.incarnation == 1
    tell(swim, update("a", 0, DEAD, accuser="c"))
    tell(swim, update("a", 1, ALIVE, meta={"version": "1"}))
    assert swim.incarnation == 1


def test_an_outdated_address_or_meta_for_itself_is_corrected() -> None:
    """A node that restarts on a new address at the same incarnation must not stay known at
    the old one."""
    swim = make()
    tell(swim, update("a", 0, ALIVE, addr="old.lan:7946", meta={"version": "1"}))
    assert swim.incarnation == 1


def test_a_restarted_node_comes_back_through_a_seed() -> None:
    seed = make("b", peers=("a", "c"))
    tell(seed, update("a", 4, DEAD, accuser="c"), sender="c")
    fresh = Swim("a", addr("a"), {}, SwimConfig(), random.Random(2))
    (join,) = fresh.join(10.0, [(None, addr("b"))])
    assert (join.to_node_id, join.to_address) == (None, addr("b"))
    replies = seed.receive(10.0, "a", join.message)
    assert view(seed, "a") == (DEAD, 4)  # a fresh alive(0) is older news
    (reply,) = [r for r in replies if r.message["type"] == "push_pull"]
    pushed = fresh.receive(10.1, "b", reply.message)
    assert fresh.incarnation == 5  # refuted its old death
    assert {view(fresh, n) for n in "bc"} == {(ALIVE, 0)}
    (to_seed,) = [s for s in pushed if s.to_node_id == "b"]
    seed.receive(10.2, "a", to_seed.message)
    assert view(seed, "a") == (ALIVE, 5)


# ----- Lifeguard suspicion timeout


def suspicion_deadline_state(peers: int, confirmations: list[str], at: float) -> str:
    """State of "p1" on a fresh node after p0 accused it at t=10 and `confirmations` agreed,
    ticked once at `at` (a fresh node's first tick expires timers but sends no probe)."""
    names = tuple(f"p{i}" for i in range(peers))
    swim = make(peers=names)
    tell(swim, update("p1", 0, SUSPECT, accuser="p0"), sender="p0", now=10.0)
    for accuser in confirmations:
        tell(swim, update("p1", 0, SUSPECT, accuser=accuser), sender=accuser, now=10.5)
    swim.tick(at)
    member = swim.member("p1")
    assert member is not None
    return member.state


def lifeguard_timeout(n: int, confirmations: int, k: int = 2) -> float:
    minimum = 4 * max(1.0, math.log10(n))
    maximum = 6 * minimum
    if k == 0:
        return minimum
    fraction = math.log(confirmations + 1) / math.log(k + 1)
    return max(minimum, maximum - fraction * (maximum - minimum))


@pytest.mark.parametrize(("confirmations", "expected"), [
    ([], lifeguard_timeout(20, 0)),                # 31.2 s: the maximum
    (["p2"], lifeguard_timeout(20, 1)),            # decays with one confirmation
    (["p2", "p2", "p0"], lifeguard_timeout(20, 1)),  # the same accuser counts once
    (["p2", "p3"], lifeguard_timeout(20, 2)),      # k = 2 confirmations: the minimum, 5.2 s
    (["p2", "p3", "p4"], lifeguard_timeout(20, 2)),  # never below the minimum
])
def test_suspicion_timeout_decays_with_independent_confirmations(
        confirmations: list[str], expected: float) -> None:
    # 19 peers and ourselves: n = 20, min = 4 * log10(20) s, max = 6 * min.
    assert suspicion_deadline_state(19, confirmations, 10 + expected - 0.01) == SUSPECT
    assert suspicion_deadline_state(19, confirmations, 10 + expected + 0.01) == DEAD


def test_small_clusters_expect_no_confirmations() -> None:
    # With three members nobody else can confirm: the minimum applies from the start.
    assert suspicion_deadline_state(2, [], 10 + 4 - 0.01) == SUSPECT
    assert suspicion_deadline_state(2, [], 10 + 4 + 0.01) == DEAD


def test_a_declared_death_is_gossiped() -> None:
    swim = make()
    tell(swim, update("e", 0, SUSPECT, accuser="b"), now=0.0)
    sends = swim.tick(100.0)
    assert view(swim, "e") == (DEAD, 0)
    assert sends and all(carries(s, "e", DEAD, 0) for s in sends)


# ----- probing


def test_a_probe_answered_in_time_raises_no_suspicion() -> None:
    a, b = make(peers=("b",)), make("b", peers=("a",))
    sent_at, ping = start_probe(a)
    assert ping.to_node_id == "b" and ping.message["target"] == "b"
    (ack,) = b.receive(sent_at + 0.01, "a", ping.message)
    assert ack.message["type"] == "ack" and ack.to_address == addr("a")
    a.receive(sent_at + 0.02, "b", ack.message)
    # Done: no ping_req at the probe timeout, only the next probe one period later.
    assert a.next_deadline() == pytest.approx(sent_at + 1.0)
    assert view(a, "b") == (ALIVE, 0)
    assert a.health == 0


def indirect_probe(nacks: int, relayed_ack: bool = False) -> tuple[Swim, str]:
    """a probes its target, gets no direct ack, asks two helpers, then hears `nacks` nacks
    (or one relayed ack), and runs to the end of the period."""
    a = make(peers=("b", "c", "d"))
    sent_at, ping = start_probe(a)
    target = ping.to_node_id
    now, sends = step(a)
    assert now == pytest.approx(sent_at + 0.8)
    requests = [s for s in sends if s.message["type"] == "ping_req"]
    assert len(requests) == 2
    assert {s.to_node_id for s in requests} == {"b", "c", "d"} - {target}
    for request in requests:
        assert request.message["target"] == target
        assert request.message["seq"] == ping.message["seq"]
        assert 0 < request.message["timeout"] < 0.2
    for request in requests[:nacks]:
        a.receive(now + 0.05, request.to_node_id, {"type": "nack", "seq": ping.message["seq"]})
    if relayed_ack:
        a.receive(now + 0.05, requests[0].to_node_id,
                  {"type": "ack", "seq": ping.message["seq"], "clock": now})
    end, _ = step(a)
    assert end == pytest.approx(sent_at + 1.0)
    assert target is not None
    return a, target


def test_no_ack_by_the_end_of_the_period_makes_the_target_suspect() -> None:
    a, target = indirect_probe(nacks=2)
    assert view(a, target) == (SUSPECT, 0)
    # Both relays answered, so the fault is the target's, not ours: health unchanged.
    assert a.health == 0


def test_missing_nacks_count_against_our_own_health() -> None:
    assert indirect_probe(nacks=1)[0].health == 1
    assert indirect_probe(nacks=0)[0].health == 2


def test_an_ack_relayed_by_a_helper_clears_the_probe() -> None:
    a, target = indirect_probe(nacks=0, relayed_ack=True)
    assert view(a, target) == (ALIVE, 0)
    assert a.health == 0


def test_a_helper_relays_the_ack_or_answers_nack() -> None:
    request = {"type": "ping_req", "seq": 7, "target": "c", "target_addr": addr("c"),
               "addr": addr("a"), "timeout": 0.1}
    helper = make("b", peers=("a", "c"))
    helper.tick(0.0)
    (ping,) = helper.receive(5.0, "a", request)
    assert (ping.to_node_id, ping.message["type"], ping.message["target"]) == ("c", "ping", "c")
    (relayed,) = helper.receive(5.01, "c", {"type": "ack", "seq": ping.message["seq"],
                                            "clock": 5.0})
    assert (relayed.to_node_id, relayed.message["type"], relayed.message["seq"]) == (
        "a", "ack", 7)

    silent = make("b", peers=("a", "c"))
    silent.receive(5.0, "a", request)
    assert not any(s.message["type"] == "nack" for s in silent.tick(5.09))
    nacks = [s for s in silent.tick(5.1) if s.message["type"] == "nack"]
    assert [(s.to_node_id, s.message["seq"]) for s in nacks] == [("a", 7)]


def test_a_ping_meant_for_another_node_is_not_answered() -> None:
    b = make("b", peers=("a",))
    assert b.receive(0.0, "a", {"type": "ping", "seq": 1, "target": "x", "addr": addr("a"),
                                "clock": 0.0}) == []


def test_a_suspect_hears_of_its_suspicion_on_our_messages() -> None:
    swim = make()
    tell(swim, update("e", 0, SUSPECT, accuser="c"))
    (ack,) = swim.receive(1.0, "e", {"type": "ping", "seq": 3, "target": "a",
                                     "addr": addr("e"), "clock": 1.0})
    assert ack.message["gossip"][0]["node"] == "e"
    assert ack.message["gossip"][0]["state"] == SUSPECT


# ----- Lifeguard local health


def test_loop_lag_stretches_probe_timeouts() -> None:
    swim = make()
    swim.set_loop_lag(0.05)
    assert swim.health == 0  # below one unit: ordinary jitter
    swim.set_loop_lag(0.5)
    assert swim.health == 5
    sent_at, _ = start_probe(swim)
    now, sends = step(swim)
    assert now == pytest.approx(sent_at + 0.8 * 6)
    assert any(s.message["type"] == "ping_req" for s in sends)
    end, _ = step(swim)
    assert end == pytest.approx(sent_at + 1.0 * 6)
    swim.set_loop_lag(60.0)
    assert swim.health == SwimConfig().max_health


def test_successful_probes_lower_the_multiplier() -> None:
    a, b = make(peers=("b",)), make("b", peers=("a",))
    a.set_loop_lag(0.3)
    sent_at, ping = start_probe(a)
    (ack,) = b.receive(sent_at, "a", ping.message)
    a.receive(sent_at + 0.01, "b", ack.message)
    assert a.health == 2


def test_a_late_tick_is_loop_lag_and_voids_the_probe_in_flight() -> None:
    swim = make()
    sent_at, ping = start_probe(swim)
    sends = swim.tick(sent_at + 5.0)  # the direct deadline passed 4.2 s ago: we were stopped
    assert swim.health == SwimConfig().max_health
    assert not any(s.message["type"] == "ping_req" for s in sends)
    (new_ping,) = [s for s in sends if s.message["type"] == "ping"]
    assert new_ping.message["seq"] != ping.message["seq"]
    assert swim.next_deadline() == pytest.approx(sent_at + 5.0 + 0.8 * 9)
    assert all(view(swim, p) == (ALIVE, 0) for p in PEERS)


def test_a_stall_does_not_count_against_suspects() -> None:
    def after_stall(**config: Any) -> tuple[str, int] | None:
        swim = make(**config)
        tell(swim, update("e", 0, SUSPECT, accuser="b"), now=0.0)
        swim.tick(0.0)
        swim.tick(30.0)  # stopped for 30 s, past the 24 s suspicion
        return view(swim, "e")

    assert after_stall() == (SUSPECT, 0)
    assert after_stall(loop_lag_unit=1e9) == (DEAD, 0)  # the rule switched off


# ----- dissemination


def test_each_update_is_retransmitted_a_bounded_number_of_times() -> None:
    swim = make()
    outgoing = tell(swim, update("z", 0, ALIVE))  # news: pushed at once
    for seq in range(40):
        outgoing += swim.receive(1.0, "b", {"type": "ping", "seq": seq, "target": "a",
                                            "addr": addr("b"), "clock": 1.0})
    live = 1 + len(PEERS) + 1
    limit = SwimConfig().retransmit_mult * math.ceil(math.log10(live + 1))
    assert sum(carries(s, "z", ALIVE, 0) for s in outgoing) == limit


def test_newer_news_about_a_member_replaces_the_older() -> None:
    swim = make()
    tell(swim, update("z", 0, ALIVE))
    tell(swim, update("z", 0, SUSPECT, accuser="b"))
    (ack,) = swim.receive(1.0, "c", {"type": "ping", "seq": 1, "target": "a",
                                     "addr": addr("c"), "clock": 1.0})
    about_z = [u for u in ack.message["gossip"] if u["node"] == "z"]
    assert [u["state"] for u in about_z] == [SUSPECT]


def test_meta_changes_travel_with_a_new_incarnation() -> None:
    a, b = make(), make("b", peers=("a",))
    a.update_meta({"version": "2", "api_port": 4566, "disks": 2, "free_bytes": 10**12})
    assert a.incarnation == 1
    sends = a.receive(1.0, "b", {"type": "ping", "seq": 1, "target": "a",
                                 "addr": addr("b"), "clock": 1.0})
    (ack,) = [s for s in sends if s.message["type"] == "ack"]
    b.receive(1.1, "a", ack.message)
    member = b.member("a")
    assert member is not None
    assert (member.incarnation, member.meta["free_bytes"]) == (1, 10**12)
    with pytest.raises(ValueError, match="meta"):
        a.update_meta({"blob": "x" * 1000})


def test_push_pull_exchanges_full_state_and_softens_remote_deaths() -> None:
    a = make()
    replies = a.receive(0.0, "b", {"type": "push_pull", "reply": False, "addr": addr("b"),
                                   "members": [update("e", 0, DEAD, "b"),
                                               update("z", 2, ALIVE), update("c", 0, LEFT)]})
    assert view(a, "e") == (SUSPECT, 0)  # a stale "dead" must stay refutable
    assert view(a, "z") == (ALIVE, 2)
    assert view(a, "c") == (LEFT, 0)
    (reply,) = [r for r in replies if r.message["type"] == "push_pull"]
    assert reply.to_node_id == "b" and reply.message["reply"] is True
    listed = {u["node"]: u["state"] for u in reply.message["members"]}
    assert listed == {"a": ALIVE, "b": ALIVE, "c": LEFT, "d": ALIVE, "e": SUSPECT,
                      "z": ALIVE}
    assert a.receive(0.1, "b", {**reply.message, "reply": True}) == []


def test_periodic_push_pull_also_reaches_a_dead_member() -> None:
    swim = make(push_pull_interval=5.0)
    tell(swim, update("e", 0, DEAD, "b"))
    swim.tick(0.0)
    targets: list[str | None] = []
    while swim.next_deadline() <= 10.0:
        _, sends = step(swim)
        targets += [s.to_node_id for s in sends if s.message["type"] == "push_pull"]
    assert "e" in targets and len(targets) >= 2


def test_dead_members_are_reaped_after_the_reap_time_and_stay_forgotten() -> None:
    swim = make(push_pull_interval=1.0, dead_reap_time=10.0)
    tell(swim, update("e", 0, DEAD, "b"), now=0.0)
    swim.tick(0.0)
    while swim.next_deadline() <= 12.0:
        step(swim)
    assert swim.member("e") is None
    tell(swim, update("e", 0, DEAD, "b"), now=13.0)
    assert swim.member("e") is None


# ----- join, leave, clocks, input hygiene


def test_join_pushes_and_pulls_with_each_seed() -> None:
    seed = make("s", peers=("c", "d"))
    fresh = Swim("a", addr("a"), {"version": "1"}, SwimConfig(), random.Random(3))
    sends = fresh.join(0.0, [(None, addr("s")), ("a", addr("a"))])  # ourselves: skipped
    assert [(s.to_node_id, s.message["type"]) for s in sends] == [(None, "push_pull")]
    (reply,) = [r for r in seed.receive(0.0, "a", sends[0].message)
                if r.message["type"] == "push_pull"]
    assert view(seed, "a") == (ALIVE, 0)
    fresh.receive(0.1, "s", reply.message)
    assert sorted(e.member.node_id for e in fresh.take_events()) == ["c", "d", "s"]


def test_leave_tells_every_live_member_then_stops() -> None:
    a = make()
    tell(a, update("e", 0, DEAD, "b"))
    sends = a.leave(5.0)
    assert sorted(s.to_node_id for s in sends) == ["b", "c", "d"]  # type: ignore[type-var]
    assert all(carries(s, "a", LEFT, 0) for s in sends)
    assert view(a, "a") == (LEFT, 0)
    assert a.tick(6.0) == [] and a.next_deadline() == math.inf
    b = make("b", peers=("a",))
    b.receive(5.1, "a", sends[0].message)
    assert view(b, "a") == (LEFT, 0)


def test_clock_offset_and_round_trip_are_estimated_from_direct_probes() -> None:
    a, b = make(peers=("b",)), make("b", peers=("a",))
    a.tick(0.0, wall=1000.0)
    now = a.next_deadline()
    (ping,) = a.tick(now, wall=1000.0 + now)
    # b's wall clock runs 5 s ahead; the ping takes 10 ms each way.
    (ack,) = b.receive(now + 0.01, "a", ping.message, wall=1005.0 + now + 0.01)
    a.receive(now + 0.02, "b", ack.message, wall=1000.0 + now + 0.02)
    member = a.member("b")
    assert member is not None and member.clock_offset is not None
    assert member.clock_offset == pytest.approx(5.0, abs=1e-6)
    assert member.rtt == pytest.approx(0.02)
    assert member.last_heard == pytest.approx(now + 0.02)


@pytest.mark.parametrize("message", [
    None, [], {}, {"type": "shout"}, {"type": "ping"},
    {"type": "ping", "seq": "1", "target": "a", "addr": "x", "clock": 0.0},
    {"type": "ack", "seq": 1, "clock": 0.0, "gossip": "lots"},
    {"type": "push_pull", "reply": False, "addr": "x", "members": {}},
])
def test_malformed_messages_are_dropped(message: Any) -> None:
    swim = make()
    assert swim.receive(0.0, "b", message) == []
    assert swim.malformed == 1


def test_malformed_updates_are_dropped_one_by_one() -> None:
    swim = make()
    tell(swim, {"node": "z"}, update("y", -1, ALIVE), update("x", 0, "zombie"),
         update("w", 0, ALIVE, meta=[1]), update("v", 0, ALIVE))
    assert swim.malformed == 4
    assert view(swim, "v") == (ALIVE, 0)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=6) | st.sampled_from(["ping", "ack", "nack", "ping_req", "push_pull",
                                             "gossip", "alive", "dead", "a", "b"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "seq", "target", "target_addr", "addr", "clock", "timeout",
                         "reply", "members", "gossip", "node", "inc", "state", "from", "meta"]),
        inner, max_size=8),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(message=_JSONISH)
def test_no_input_makes_the_machine_raise(message: Any) -> None:
    swim = make()
    swim.tick(0.0)
    for send in swim.receive(0.5, "b", message) + swim.tick(swim.next_deadline()):
        msgpack.packb(send.message)


def test_config_rejects_a_probe_timeout_longer_than_the_period() -> None:
    with pytest.raises(ValueError, match="probe_timeout"):
        SwimConfig(probe_timeout=1.5)
