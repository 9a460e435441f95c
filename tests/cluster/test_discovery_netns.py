"""mDNS discovery between three machines: three network namespaces on one Linux bridge.

The namespaces and the bridge come from ``tests.cluster.netns`` (a fourth "hub" namespace holds
the bridge; everything is deleted afterwards).

A discovery process (``tests.cluster.discovery_probe``) runs in each node namespace with only the
cluster fingerprint and its own address; each must be offered the other two by mDNS.
"""

from __future__ import annotations

import json
import secrets
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

from tests.cluster.netns import Lan, lan_of, skip_reason

REPO = Path(__file__).resolve().parents[2]
NODES = 3
DEADLINE = 60.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())),
]


@pytest.fixture
def lan() -> Iterator[Lan]:
    with lan_of("zn-disc", NODES) as network:
        yield network


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
