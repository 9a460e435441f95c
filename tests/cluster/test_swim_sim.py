"""Many SWIM nodes over the simulated network: detection bounds, no false deaths, recovery.

Bounds, in protocol periods (1 s by default) for n nodes:
- first suspicion of a crashed node: within 6 periods. Each period every node probes someone,
  so the victim escapes all probes of a period with probability ~1/e, six in a row ~0.25%
  (the bench's p99 over 60 kills at 100 nodes is 5.2);
- every running node holds it dead: guaranteed within the Lifeguard maximum `6 * 4 * log10(n)`
  plus those 6 periods, O(log n); in practice, since many probers independently confirm the
  suspicion, within the minimum `4 * log10(n)` plus 6 periods (bench p99 at 100 nodes: 13.2).
  The tighter bound is what these tests assert; the seeds are fixed, so the runs are exact.
"""

from __future__ import annotations

import math

import pytest

from cluster.swim import ALIVE, DEAD, LEFT
from cluster.swim_sim import Network, Simulation


def states_of(sim: Simulation, subject: str) -> set[str]:
    """What every running node (but the subject) thinks of `subject`."""
    views = [sim.view(n.node_id, subject) for n in sim.nodes
             if n.status == "running" and n.node_id != subject]
    return {v.state if v else "unknown" for v in views}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_100_nodes_detect_a_crash_within_o_log_n_periods(seed: int) -> None:
    sim = Simulation(100, seed=seed)
    sim.run_until(20.0)
    detection = sim.measure_crash("n0042", within=120.0)
    suspicion_min = 4 * math.log10(100)
    assert detection.first_suspect is not None and detection.first_suspect <= 6
    assert detection.all_dead is not None
    assert detection.all_dead <= suspicion_min + 6
    assert sim.false_positives == []


@pytest.mark.slow
def test_no_false_dead_at_10_percent_loss_over_300_periods() -> None:
    sim = Simulation(100, seed=7, network=Network(loss=0.10))
    sim.run_until(250.0)
    # The loss did cause suspicions, and every one of them was refuted in time...
    assert len(sim.first_suspect) > 20
    assert sim.false_positives == []
    # ...while a real crash is still found, lossy network or not.
    detection = sim.measure_crash("n0013", within=50.0)
    assert detection.all_dead is not None and detection.all_dead <= 4 * math.log10(100) + 10
    sim.run_until(300.0)
    assert sim.false_positives == []


def test_a_node_paused_past_the_suspicion_timeout_comes_back_and_refutes() -> None:
    sim = Simulation(30, seed=3)
    sim.run_until(10.0)
    sim.pause("n0007")
    sim.run_until(10.0 + 6 * 4 * math.log10(30) + 5)  # past the maximum suspicion timeout
    assert states_of(sim, "n0007") == {DEAD}
    incarnation = sim.node("n0007").swim.incarnation
    sim.resume("n0007")
    sim.run_for(3.0)
    assert states_of(sim, "n0007") == {ALIVE}
    assert sim.node("n0007").swim.incarnation > incarnation
    # Its overdue timers did not make it accuse anyone on waking.
    assert sim.false_positives == []
    assert {m.state for m in sim.node("n0007").swim.members()} == {ALIVE}


def test_a_crashed_node_restarts_and_rejoins() -> None:
    sim = Simulation(30, seed=4)
    sim.run_until(5.0)
    sim.measure_crash("n0011", within=60.0)
    assert states_of(sim, "n0011") == {DEAD}
    sim.restart("n0011")
    sim.run_for(3.0)
    assert states_of(sim, "n0011") == {ALIVE}
    assert len(sim.node("n0011").swim.members()) == 30


def test_a_graceful_leave_is_seen_at_once_and_never_as_death() -> None:
    sim = Simulation(30, seed=5)
    sim.run_until(5.0)
    sim.leave("n0020")
    sim.run_for(1.0)
    assert states_of(sim, "n0020") == {LEFT}
    sim.run_for(60.0)
    assert states_of(sim, "n0020") == {LEFT}
    assert "n0020" not in sim.first_suspect


def test_both_sides_of_a_healed_partition_find_each_other() -> None:
    sim = Simulation(20, seed=6)
    sim.run_until(5.0)
    sim.partition([f"n{i:04d}" for i in range(10)])
    sim.run_until(65.0)
    assert states_of(sim, "n0001") == {ALIVE, DEAD}  # alive on its side, dead on the other
    sim.heal()
    sim.run_for(2 * sim.config.push_pull_interval)
    for node in sim.nodes:
        assert states_of(sim, node.node_id) == {ALIVE}


def test_nodes_joining_through_one_seed_converge() -> None:
    sim = Simulation(50, seed=8, converged=False)
    sim.run_until(10.0)
    for node in sim.nodes:
        assert {m.state for m in node.swim.members()} == {ALIVE}
        assert len(node.swim.members()) == 50


def test_clock_offsets_are_estimated() -> None:
    sim = Simulation(10, seed=9)
    sim.node("n0003").clock_offset = 2.5
    sim.node("n0004").clock_offset = -1.0
    sim.run_until(40.0)
    member = sim.view("n0004", "n0003")
    assert member is not None and member.clock_offset is not None
    assert member.clock_offset == pytest.approx(3.5, abs=0.01)
    assert member.rtt is not None and member.rtt < 0.05


def test_messages_survive_msgpack_and_a_seed_replays_exactly() -> None:
    def run(wire_format: bool) -> tuple[object, int]:
        sim = Simulation(20, seed=10, network=Network(loss=0.05), wire_format=wire_format)
        sim.run_until(10.0)
        return sim.measure_crash("n0005", within=60.0), sim.messages_sent

    assert run(wire_format=True) == run(wire_format=False)
