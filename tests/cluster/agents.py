"""Helpers for tests that run real agents as a cluster on 127.0.0.1.

Each agent is a ``zeronode up`` subprocess with its own data dir, API port and cluster port
(``tests/agent_process.py``); joiners get the founder's token from ``zeronode token`` and its
cluster port as their one static seed. SWIM runs with a short protocol period
(``--cluster-protocol-period``), so detection takes about two seconds instead of seven.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cluster.node import detection_bound
from cluster.swim import SwimConfig
from tests.agent_process import REPO_ROOT, AgentFactory, AgentProcess, clean_env

PERIOD = 0.3
CONFIG = SwimConfig(protocol_period=PERIOD, probe_timeout=0.8 * PERIOD)
SUSPECT_BOUND, DEAD_BOUND = detection_bound(CONFIG, 3)
SLACK = 6.0
FORMATION_TIMEOUT = 10.0
CLUSTER_ARGS = ["--cluster-protocol-period", str(PERIOD), "--no-mdns"]

T = TypeVar("T")


def zeronode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zeronode.cli", *args],
        cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def agent_flags(agent: AgentProcess) -> list[str]:
    return ["--data-dir", str(agent.data_dir), "--port", str(agent.port)]


def status(agent: AgentProcess) -> dict[str, Any]:
    """``GET /_zeronode/status`` (what ``zeronode status --json`` prints)."""
    import urllib.request

    url = f"{agent.endpoint}/_zeronode/status"
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.load(response))


def states(agent: AgentProcess) -> dict[str, str]:
    return {m["node_id"]: m["state"] for m in status(agent)["members"]}


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.1f} s: {what}")
        time.sleep(0.05)


def start_cluster(
    agent_factory: AgentFactory, size: int, *, args: Sequence[str] = (), **kwargs: Any
) -> list[AgentProcess]:
    """A founder and ``size - 1`` joiners with its token; returns once all see all alive.

    ``args`` are added to every agent's command line, ``kwargs`` passed to the factory.
    """
    founder = agent_factory(args=[*CLUSTER_ARGS, *args], **kwargs)
    token = zeronode("token", "--data-dir", str(founder.data_dir))
    assert token.returncode == 0, token.stderr
    seed = f"127.0.0.1:{founder.cluster_port}"
    joiners = [
        agent_factory(
            args=[*CLUSTER_ARGS, *args, "--peer", seed, "--join", token.stdout.strip()], **kwargs
        )
        for _ in range(size - 1)
    ]
    agents = [founder, *joiners]
    ids = {agent.node_id for agent in agents}

    def all_alive() -> bool:
        return all(
            {n for n, s in states(agent).items() if s == "alive"} == ids for agent in agents
        )

    wait_for(all_alive, FORMATION_TIMEOUT, f"{size} agents see each other alive")
    return agents
