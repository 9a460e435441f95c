"""mDNS discovery between three machines: three network namespaces on one Linux bridge.

Each node namespace gets a veth whose other end is a port of a bridge living in a fourth "hub"
namespace, so nothing is created in the host's own namespace and deleting the four namespaces
removes every link. Names carry the pid and a random suffix, so parallel runs do not collide;
addresses are in 10.250.0.0/16 and exist only inside these namespaces.

A discovery process (``tests.cluster.discovery_probe``) runs in each node namespace with only the
cluster fingerprint and its own address; each must be offered the other two by mDNS.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

REPO = Path(__file__).resolve().parents[2]
NODES = 3
DEADLINE = 60.0


def _skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux network namespaces"
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add); run as root to include it"
    if shutil.which("ip") is None:
        return "needs the `ip` command from iproute2 to create network namespaces"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]


def ip(*arguments: str) -> None:
    result = subprocess.run(["ip", *arguments], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)} failed: {result.stderr.strip()}")


@dataclass
class Lan:
    hub: str
    namespaces: list[str]
    addresses: list[str]
    created: list[str] = field(default_factory=list)

    def add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.created.append(name)

    def build(self) -> None:
        self.add_namespace(self.hub)
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        ip("-n", self.hub, "link", "set", "br0", "up")
        for index, (namespace, address) in enumerate(zip(self.namespaces, self.addresses)):
            self.add_namespace(namespace)
            port = f"port{index}"
            ip("-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", namespace)  # fmt: skip
            ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")

    def tear_down(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


@pytest.fixture
def lan() -> Iterator[Lan]:
    run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
    subnet = secrets.randbelow(256)
    network = Lan(
        hub=f"zn-disc-{run_id}-hub",
        namespaces=[f"zn-disc-{run_id}-n{index}" for index in range(NODES)],
        addresses=[f"10.250.{subnet}.{index + 1}" for index in range(NODES)],
    )
    try:
        network.build()
        yield network
    finally:
        network.tear_down()
    leftovers = [name for name in network.created if (Path("/run/netns") / name).exists()]
    assert not leftovers, f"namespaces left behind: {leftovers}"


@dataclass
class Probe:
    node_id: str
    address: str
    process: trio.Process
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if not message.get("ready"):
                    self.seen.append(message)

    def saw(self, other: Probe) -> bool:
        return any(
            candidate["node_id"] == other.node_id and candidate["host"] == other.address
            for candidate in self.seen
        )


async def test_three_namespaces_find_each_other_by_mdns(lan: Lan) -> None:
    fingerprint = secrets.token_hex(32)
    started = time.monotonic()
    probes: list[Probe] = []
    async with trio.open_nursery() as nursery:
        try:
            for namespace, address in zip(lan.namespaces, lan.addresses):
                node_id = secrets.token_hex(16)
                command = [
                    "ip", "netns", "exec", namespace, sys.executable, "-m",
                    "tests.cluster.discovery_probe", "--fingerprint", fingerprint,
                    "--node-id", node_id, "--host-ip", address,
                    "--cluster-port", "7946", "--api-port", "4566",
                ]  # fmt: skip
                process = await trio.lowlevel.open_process(
                    command, cwd=REPO, stdout=subprocess.PIPE
                )
                probe = Probe(node_id, address, process)
                probes.append(probe)
                nursery.start_soon(probe.read)
            with trio.fail_after(DEADLINE):
                while not all(
                    probe.saw(other) for probe in probes for other in probes if other is not probe
                ):
                    await trio.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            with trio.CancelScope(shield=True):
                for probe in probes:
                    if probe.process.returncode is None:
                        probe.process.send_signal(signal.SIGTERM)
                with trio.move_on_after(15):
                    for probe in probes:
                        await probe.process.wait()
                for probe in probes:
                    if probe.process.returncode is None:
                        probe.process.kill()
                        await probe.process.wait()
    print(f"three namespaces discovered each other in {elapsed:.1f} s (processes started)")
    assert [probe.process.returncode for probe in probes] == [0] * NODES
    for probe in probes:
        others = {other.node_id for other in probes if other is not probe}
        assert {candidate["node_id"] for candidate in probe.seen} == others
        for candidate in probe.seen:
            assert candidate["source"] == "mdns"
            assert candidate["fingerprint"] == fingerprint
            assert candidate["cluster_port"] == 7946 and candidate["api_port"] == 4566
