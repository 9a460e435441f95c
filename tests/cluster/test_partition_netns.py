"""A real network partition: three agents in network namespaces on one bridge.

Node 2's port on the bridge is taken down (``ip link set ... down`` in the hub namespace):
packets between it and the others are dropped, as when a switch port or cable fails. SWIM
notices within a few protocol periods. With ``--ack majority`` the two-node side keeps taking
writes, node 2 answers writes with 503 ``ServiceUnavailable`` and still serves reads; with
``--ack local`` both sides write. Either way, once the port is back up, all three reach one
state hash (``GET /_zeronode/journal``), and with ``--ack local`` the later write of a key
wins on every node.

Clients run inside the namespaces (``tests.cluster.ns_client``), as the agents' addresses
exist only there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_process import REPO_ROOT, AgentProcess, clean_env
from tests.cluster.agents import (
    CLUSTER_ARGS,
    DEAD_BOUND,
    FORMATION_TIMEOUT,
    SLACK,
    wait_for,
    zeronode,
)
from tests.cluster.netns import Lan, ip, lan_of, skip_reason

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())),
]

KEYS = {
    "ZERONODE_ACCESS_KEY_ID": "AKIAZERONODEPARTITN1",
    "ZERONODE_SECRET_ACCESS_KEY": "zeronode-partition-secret-0123456789abcd",
}


class NamespacedAgent(AgentProcess):
    """An agent inside node namespace ``index`` of ``lan``, listening on its address."""

    def __init__(self, lan: Lan, index: int, data_dir: Path, args: list[str]) -> None:
        self.lan, self.index = lan, index
        self.address = lan.addresses[index]
        super().__init__(data_dir, args=["--host", self.address, *args], env=KEYS)

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def command(self) -> list[str]:
        return self.lan.exec_command(self.index, *super().command)

    def call(self, *operations: list[str]) -> list[Any]:
        done = subprocess.run(
            self.lan.exec_command(
                self.index, sys.executable, "-m", "tests.cluster.ns_client", self.endpoint,
                json.dumps(operations),
            ),
            cwd=REPO_ROOT, env=clean_env(KEYS), capture_output=True, text=True, timeout=60,
            check=True,
        )  # fmt: skip
        return list(json.loads(done.stdout))

    def health(self) -> dict[str, Any]:
        (answer,) = self.call(["health"])
        if "error" in answer and "node_id" not in answer:
            raise OSError(f"not ready: {answer}")
        return dict(answer)


@pytest.fixture
def lan() -> Iterator[Lan]:
    with lan_of("zn-part", 3) as network:
        yield network


def start_three(lan: Lan, tmp_path: Path, ack: str) -> Iterator[list[NamespacedAgent]]:
    agents: list[NamespacedAgent] = []
    try:
        flags = [*CLUSTER_ARGS, "--ack", ack, "--replicas", "3"]  # every node holds all bytes
        founder = NamespacedAgent(lan, 0, tmp_path / "n0", flags)
        agents.append(founder.start())
        token = zeronode("token", "--data-dir", str(founder.data_dir)).stdout.strip()
        seed = f"{founder.address}:{founder.cluster_port}"
        for index in (1, 2):
            joiner = NamespacedAgent(
                lan, index, tmp_path / f"n{index}", [*flags, "--peer", seed, "--join", token]
            )
            agents.append(joiner.start())
        ids = {agent.node_id for agent in agents}
        wait_for(lambda: all(alive(agent) == ids for agent in agents), FORMATION_TIMEOUT + SLACK,
                 "three namespaced agents see each other alive")
        yield agents
    finally:
        for agent in agents:
            if agent.running:
                agent.stop()


def members(agent: NamespacedAgent) -> dict[str, str]:
    (status,) = agent.call(["status"])
    return {m["node_id"]: m["state"] for m in status.get("members", [])}


def alive(agent: NamespacedAgent) -> set[str]:
    return {node for node, state in members(agent).items() if state == "alive"}


def cut(lan: Lan, index: int, up: bool = False) -> None:
    ip("-n", lan.hub, "link", "set", f"port{index}", "up" if up else "down")


def split_and_wait(lan: Lan, agents: list[NamespacedAgent]) -> None:
    """Cut node 2 off and wait until both sides see the other side dead."""
    cut(lan, 2)
    majority, lone = agents[:2], agents[2]
    wait_for(
        lambda: all(members(a)[lone.node_id] == "dead" for a in majority)
        and alive(lone) == {lone.node_id},
        DEAD_BOUND + 3 * SLACK, "both sides of the partition see the other dead",
    )


def journals_agree(agents: list[NamespacedAgent]) -> bool:
    views = [agent.call(["journal"])[0] for agent in agents]
    return all(
        (v["position"], v["state_hash"]) == (views[0]["position"], views[0]["state_hash"])
        for v in views
    )


@pytest.fixture
def majority_trio(lan: Lan, tmp_path: Path) -> Iterator[list[NamespacedAgent]]:
    yield from start_three(lan, tmp_path, "majority")


@pytest.fixture
def local_trio(lan: Lan, tmp_path: Path) -> Iterator[list[NamespacedAgent]]:
    yield from start_three(lan, tmp_path, "local")


def test_the_majority_side_writes_the_minority_serves_reads_and_all_converge(
    lan: Lan, majority_trio: list[NamespacedAgent]
) -> None:
    a, b, lone = majority_trio
    created, etag = a.call(["create_bucket", "part"], ["put", "part", "k", "before"])
    assert created == 200 and isinstance(etag, str), (created, etag)
    wait_for(lambda: journals_agree(majority_trio), 10, "the object and its copies everywhere")
    split_and_wait(lan, majority_trio)
    written = a.call(["put", "part", "k", "during"], ["put", "part", "new", "x"])
    assert all(isinstance(etag, str) for etag in written), written
    assert b.call(["get", "part", "k"]) == ["during"]
    refused, read, listed = lone.call(["put", "part", "k", "lone"], ["get", "part", "k"], ["list", "part"])
    assert refused == {"error": "ServiceUnavailable", "status": 503}
    assert read == "before" and listed == ["k"]  # what it holds: reads go on
    cut(lan, 2, up=True)
    wait_for(lambda: journals_agree(majority_trio), DEAD_BOUND + 3 * SLACK,
             "after healing all three reach one state hash")
    assert lone.call(["get", "part", "k"], ["list", "part"]) == ["during", ["k", "new"]]


def test_with_ack_local_both_sides_write_and_the_later_write_wins_everywhere(
    lan: Lan, local_trio: list[NamespacedAgent]
) -> None:
    a, b, lone = local_trio
    a.call(["create_bucket", "part"])
    wait_for(lambda: journals_agree(local_trio), 10, "the bucket reached every node")
    split_and_wait(lan, local_trio)
    assert isinstance(a.call(["put", "part", "k", "majority-side"])[0], str)
    assert isinstance(lone.call(["put", "part", "k", "lone-side"])[0], str)  # later: it wins
    assert isinstance(lone.call(["put", "part", "only-lone", "x"])[0], str)
    cut(lan, 2, up=True)
    wait_for(lambda: journals_agree(local_trio), DEAD_BOUND + 3 * SLACK,
             "after healing all three reach one state hash")
    for agent in local_trio:
        assert agent.call(["get", "part", "k"], ["list", "part"]) == ["lone-side", ["k", "only-lone"]]
