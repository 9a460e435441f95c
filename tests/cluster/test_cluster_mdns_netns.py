"""Three real agents in three network namespaces on one bridge form a cluster by mDNS alone.

The LAN comes from ``tests.cluster.netns`` (namespaces, a bridge in a hub namespace, addresses in
10.250.x.0/24 that exist only inside them; everything deleted afterwards). In each node
namespace ``zeronode up`` listens on that namespace's address, so mDNS is on by default (the
host is not loopback). The founder starts without a token; the other two get only
``--join TOKEN`` (from ``zeronode token`` on the founder's data dir) and no ``--peer``: they must
find the founder, and each other, through ``_zeronode._tcp.local.``. Then ``zeronode status
--json``, run inside each namespace against its own agent, must show three alive members.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent_process import REPO_ROOT, clean_env
from tests.cluster.netns import Lan, lan_of, skip_reason

NODES = 3
API_PORT = 9700
CLUSTER_PORT = 9701
READY_TIMEOUT = 20.0
FORMATION_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())),
]


@dataclass
class NamespacedAgent:
    lan: Lan
    index: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self.lan.addresses[self.index]

    @property
    def endpoint_flags(self) -> list[str]:
        return ["--data-dir", str(self.data_dir), "--host", self.address,
                "--port", str(API_PORT)]  # fmt: skip

    def zeronode(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """``python -m zeronode.cli ARGS`` inside this agent's namespace."""
        command = self.lan.exec_command(self.index, sys.executable, "-m", "zeronode.cli", *args)
        return subprocess.run(
            command, cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def start(self, *extra: str) -> None:
        # `ip netns exec` execs the command: the Popen pid is the agent itself.
        command = self.lan.exec_command(
            self.index, sys.executable, "-m", "zeronode.cli", "up", *self.endpoint_flags,
            "--cluster-port", str(CLUSTER_PORT), *extra,
        )  # fmt: skip
        with self.log("stdout").open("wb") as out, self.log("stderr").open("wb") as err:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=clean_env(), stdout=out, stderr=err
            )

    def log(self, stream: str) -> Path:
        return self.data_dir.parent / f"agent{self.index}.{stream}"

    def output(self) -> str:
        return "\n".join(
            f"--- agent {self.index} ({self.address}) {stream}\n"
            + self.log(stream).read_text(errors="replace")[-3000:]
            for stream in ("stdout", "stderr")
            if self.log(stream).exists()
        )

    def status(self) -> dict[str, Any] | None:
        """``zeronode status --json`` inside the namespace; None when the agent does not answer."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"agent {self.index} exited with {self.process.returncode}\n{self.output()}"
            )
        result = self.zeronode("status", "--json", *self.endpoint_flags)
        if result.returncode not in (0, 1):  # 2: the agent cannot be reached (yet)
            return None
        return dict(json.loads(result.stdout))

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def wait_until_answering(agent: NamespacedAgent) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while (document := agent.status()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"agent {agent.index} not answering\n{agent.output()}")
        time.sleep(0.2)
    return document


def alive_members(document: dict[str, Any] | None) -> set[str]:
    if document is None:
        return set()
    return {m["node_id"] for m in document["members"] if m["state"] == "alive"}


@pytest.fixture
def lan() -> Iterator[Lan]:
    with lan_of("zn-mdns", NODES) as network:
        yield network


def test_three_namespaced_agents_given_only_the_token_form_one_cluster(
    lan: Lan, tmp_path: Path
) -> None:
    agents = [NamespacedAgent(lan, index, tmp_path / f"node{index}" / "data")
              for index in range(NODES)]  # fmt: skip
    for agent in agents:
        agent.data_dir.parent.mkdir(parents=True)
    try:
        founder, *joiners = agents
        founder.start()
        founder_id = wait_until_answering(founder)["node_id"]
        token = founder.zeronode("token", "--data-dir", str(founder.data_dir))
        assert token.returncode == 0, token.stderr
        started = time.monotonic()
        for joiner in joiners:
            joiner.start("--join", token.stdout.strip())  # no --peer: mDNS only
        ids = {founder_id} | {wait_until_answering(joiner)["node_id"] for joiner in joiners}
        assert len(ids) == NODES

        documents: list[dict[str, Any] | None] = [None] * NODES
        deadline = started + FORMATION_TIMEOUT
        while not all(alive_members(document) == ids for document in documents):
            if time.monotonic() > deadline:
                seen = [sorted(alive_members(document)) for document in documents]
                logs = "\n".join(agent.output() for agent in agents)
                raise AssertionError(
                    f"no cluster of {NODES} within {FORMATION_TIMEOUT} s; alive as seen by "
                    f"each: {seen}\n{logs}"
                )
            documents = [agent.status() for agent in agents]
            time.sleep(0.2)
        formed = time.monotonic() - started
        print(f"three namespaced agents formed one cluster by mDNS {formed:.1f} s after the "
              f"joiners started")  # fmt: skip

        for agent, document in zip(agents, documents):
            assert document is not None
            assert document["verdict"]["healthy"] and document["verdict"]["alive"] == NODES
            members = {m["node_id"]: m for m in document["members"]}
            assert set(members) == ids
            # Each member is known by its namespace address, learned without any --peer.
            addresses = {m["address"] for m in members.values()}
            assert addresses == {f"{address}:{CLUSTER_PORT}" for address in lan.addresses}
            assert members[document["node_id"]]["self"]
        assert len({document["cluster_id"] for document in documents if document}) == 1
    finally:
        exits = [agent.stop() for agent in agents]
    assert exits == [0] * NODES, "\n".join(agent.output() for agent in agents)
