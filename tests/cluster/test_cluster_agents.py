"""Real agents forming a cluster on 127.0.0.1: join, status, crash, pause, removal, bad token.

Each agent is a ``zeronode up`` subprocess with its own data dir, API port and cluster port
(``tests/agent_process.py``); joiners get the founder's token from ``zeronode token`` and its
cluster port as their one static seed. SWIM runs with a short protocol period
(``--cluster-protocol-period``), so detection takes about two seconds instead of seven.

Detection bound (``cluster.node.detection_bound``, healthy observer, 3 members): a crashed
member is suspected within ``3 p`` (it is probed within one round of the two others, and found
silent at the end of that period) and declared dead ``4 p`` later (the minimum suspicion
timeout; with 3 members nobody else can confirm, so the minimum applies): ``7 p`` = 2.1 s at
``p`` = 0.3 s. Waits allow that plus :data:`SLACK` for a loaded two-core machine (Lifeguard
itself stretches timeouts on a lagging node).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from cluster.join import make_token, parse_token
from tests.agent_process import AgentFactory
from tests.cluster.agents import (
    CLUSTER_ARGS,
    DEAD_BOUND,
    FORMATION_TIMEOUT,
    SLACK,
    SUSPECT_BOUND,
    agent_flags,
    start_cluster,
    states,
    status,
    wait_for,
    zeronode,
)

pytestmark = pytest.mark.slow

def test_three_agents_form_a_cluster_that_status_reports(agent_factory: AgentFactory) -> None:
    started = time.monotonic()
    agents = start_cluster(agent_factory, 3)
    formed = time.monotonic() - started
    ids = {agent.node_id for agent in agents}
    for agent in agents:
        result = zeronode("status", "--json", *agent_flags(agent))
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["node_id"] == agent.node_id
        assert {m["node_id"] for m in document["members"]} == ids
        assert all(m["state"] == "alive" and m["voter"] for m in document["members"])
        assert document["verdict"] == {
            "healthy": True, "text": "healthy: 3 of 3 members alive", "alive": 3, "voters": 3
        }  # fmt: skip
        me = next(m for m in document["members"] if m["self"])
        assert me["api"] == f"127.0.0.1:{agent.port}" and me["version"]
        assert me["journal_position"] == 0 and me["disk_free"] > 0
    table = zeronode("status", *agent_flags(agents[1]))
    assert table.returncode == 0
    assert "healthy: 3 of 3 members alive" in table.stdout
    assert agents[0].node_id[:12] in table.stdout
    assert formed < 3 * 8.0  # three agent starts plus formation, on a loaded machine
    # One cluster, one id: the joiners share the founder's cluster id.
    assert len({status(agent)["cluster_id"] for agent in agents}) == 1


def test_kill_9_is_suspected_then_dead_and_a_restart_is_alive_again(
    agent_factory: AgentFactory,
) -> None:
    founder, survivor, victim = start_cluster(agent_factory, 3)
    victim_id = victim.node_id
    victim.kill()
    killed = time.monotonic()
    wait_for(
        lambda: states(founder)[victim_id] in ("suspect", "dead"),
        SUSPECT_BOUND + SLACK, "the victim is suspected",
    )  # fmt: skip
    for observer in (founder, survivor):
        wait_for(
            lambda observer=observer: states(observer)[victim_id] == "dead",
            DEAD_BOUND + SLACK, "the victim is declared dead by every survivor",
        )  # fmt: skip
    detected = time.monotonic() - killed
    print(f"kill -9 detected dead by both survivors after {detected:.2f} s "
          f"(bound {DEAD_BOUND:.1f} s without Lifeguard stretching)")
    degraded = zeronode("status", *agent_flags(founder))
    assert degraded.returncode == 1, degraded.stdout
    assert "degraded: 2 of 3 members alive" in degraded.stdout and "dead" in degraded.stdout

    victim.start()
    assert victim.node_id == victim_id
    wait_for(
        lambda: all(states(agent).get(victim_id) == "alive" for agent in (founder, survivor)),
        FORMATION_TIMEOUT, "the restarted node is alive again",
    )  # fmt: skip
    assert zeronode("status", *agent_flags(survivor)).returncode == 0


def test_a_paused_node_refutes_its_death_after_sigcont(agent_factory: AgentFactory) -> None:
    founder, survivor, paused = start_cluster(agent_factory, 3)
    assert paused.process is not None
    pid = paused.process.pid
    paused.send_signal(signal.SIGSTOP)
    try:
        wait_for(
            lambda: states(founder)[paused.node_id] == "dead",
            DEAD_BOUND + SLACK, "the paused node is declared dead",
        )  # fmt: skip
    finally:
        paused.send_signal(signal.SIGCONT)
    wait_for(
        lambda: all(states(agent)[paused.node_id] == "alive" for agent in (founder, survivor)),
        FORMATION_TIMEOUT, "the resumed node refuted and is alive again",
    )  # fmt: skip
    me = next(m for m in status(paused)["members"] if m["self"])
    assert me["incarnation"] > 0 and paused.process.pid == pid  # refuted, not restarted
    assert states(paused) == {a.node_id: "alive" for a in (founder, survivor, paused)}


def test_a_removed_member_is_refused_by_the_others(agent_factory: AgentFactory) -> None:
    founder, survivor, removed = start_cluster(agent_factory, 3)
    result = zeronode("remove", removed.node_id[:10], *agent_flags(founder))
    assert result.returncode == 0, result.stderr
    assert removed.node_id in result.stdout
    for agent in (founder, survivor):
        wait_for(
            lambda agent=agent: status(agent)["verdict"]["voters"] == 2
            and states(agent).get(removed.node_id, "removed") == "removed",
            SLACK, "every member knows of the removal",
        )  # fmt: skip
        assert status(agent)["verdict"]["healthy"]
    # From now on it is refused: restarted, it cannot get back in.
    removed.restart()
    wait_for(
        lambda: "pki.peer_refused" in founder.output() or "pki.peer_refused" in survivor.output(),
        SLACK, "a member refuses the removed node's certificate",
    )  # fmt: skip
    time.sleep(2 * DEAD_BOUND)
    assert states(founder).get(removed.node_id, "removed") == "removed"
    assert states(survivor).get(removed.node_id, "removed") == "removed"
    assert {s for n, s in states(removed).items() if n != removed.node_id} <= {
        "unknown", "dead", "suspect"
    }  # fmt: skip


def test_remove_must_be_signed_with_the_root_key(agent_factory: AgentFactory) -> None:
    import urllib.error
    import urllib.request

    founder = agent_factory(args=CLUSTER_ARGS)
    request = urllib.request.Request(
        f"{founder.endpoint}/_zeronode/cluster/remove", data=b'{"node": "ab"}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
    assert json.load(refused.value)["error"] == "AccessDenied"
    unknown = zeronode("remove", "ffff", *agent_flags(founder))
    assert unknown.returncode == 1 and "no member" in unknown.stderr


def test_a_wrong_token_is_refused_and_the_node_never_joins(
    agent_factory: AgentFactory, tmp_path: Path
) -> None:
    founder = agent_factory(args=CLUSTER_ARGS)
    real = parse_token(zeronode("token", "--data-dir", str(founder.data_dir)).stdout)
    wrong = make_token(real.ca_fingerprint, bytes(32))
    seed = f"127.0.0.1:{founder.cluster_port}"
    joiner = agent_factory(args=[*CLUSTER_ARGS, "--peer", seed, "--join", wrong])
    wait_for(lambda: "cluster.join_refused" in joiner.output(), SLACK, "the joiner is refused")
    assert "wrong join token" in joiner.output()
    # The founder logs its refusal after answering: it may trail the joiner's line a little.
    wait_for(lambda: "join.refused" in founder.output(), SLACK, "the founder logs the refusal")
    assert list(states(founder)) == [founder.node_id]
    document = status(joiner)
    assert [m["state"] for m in document["members"]] == ["joining"]
    assert zeronode("status", *agent_flags(joiner)).returncode == 1
    token = zeronode("token", "--data-dir", str(joiner.data_dir))
    assert token.returncode == 1 and "cluster" in token.stderr


def test_status_exits_2_when_no_agent_answers(tmp_path: Path) -> None:
    from tests.agent_process import free_port

    result = zeronode("status", "--data-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 2 and "cannot reach the agent" in result.stderr
