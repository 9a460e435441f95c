"""Network namespaces on one Linux bridge: a small LAN for tests that need real multicast.

Each node namespace gets a veth whose other end is a port of a bridge living in a separate
"hub" namespace, so nothing is created in the host's own namespace and deleting the namespaces
removes every link. Names carry the pid and a random suffix, so parallel runs do not collide;
addresses are in 10.250.0.0/16 and exist only inside these namespaces.

    with lan_of("zn-disc", 3) as lan:
        ... ip netns exec lan.namespaces[i] ... on lan.addresses[i]

Tests using it skip with :func:`skip_reason` when not root or without ``ip``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def skip_reason() -> str | None:
    """Why namespace tests cannot run here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "needs Linux network namespaces"
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add); run as root to include it"
    if shutil.which("ip") is None:
        return "needs the `ip` command from iproute2 to create network namespaces"
    return None


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

    def leftovers(self) -> list[str]:
        return [name for name in self.created if (Path("/run/netns") / name).exists()]

    def exec_command(self, index: int, *command: str) -> list[str]:
        """``command`` run inside node namespace ``index``."""
        return ["ip", "netns", "exec", self.namespaces[index], *command]


@contextmanager
def lan_of(prefix: str, nodes: int) -> Iterator[Lan]:
    """A fresh LAN of ``nodes`` namespaces, always torn down; asserts none is left behind."""
    run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
    subnet = secrets.randbelow(256)
    network = Lan(
        hub=f"{prefix}-{run_id}-hub",
        namespaces=[f"{prefix}-{run_id}-n{index}" for index in range(nodes)],
        addresses=[f"10.250.{subnet}.{index + 1}" for index in range(nodes)],
    )
    try:
        network.build()
        yield network
    finally:
        network.tear_down()
    leftovers = network.leftovers()
    assert not leftovers, f"namespaces left behind: {leftovers}"
