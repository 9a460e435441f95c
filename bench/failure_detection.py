"""Failure-detection time of real agents: kill -9 a member, time suspect and dead.

    python bench/failure_detection.py                 # 20 kills at the default 1 s period
    python bench/failure_detection.py --period 0.3    # same, faster detection
    python bench/failure_detection.py --quick         # 3 kills at 0.3 s: a first look
    python bench/failure_detection.py --kills 50 --json out.json

Three real ``zeronode up`` subprocesses on 127.0.0.1 (own data dirs, API and cluster ports,
``--no-mdns``, the founder's token and cluster port as the joiners' one static seed, like
``tests/cluster/test_cluster_agents.py``). Then, ``--kills`` times: ``kill -9`` one of the two
non-founders (alternately), poll ``GET /_zeronode/status`` on both survivors every 50 ms and
record the seconds from the kill until

- **suspect**: the first survivor shows the victim ``suspect`` (or already ``dead``);
- **dead**: both survivors show it ``dead``;

then restart it on the same data dir and ports and wait until all three see all three alive
(**rejoin**: from the restart until then, agent start included). Printed: p50 and p99 (nearest
rank; with 20 kills p99 is the worst one) and max of each, next to the bound from
``cluster.node.detection_bound`` for a healthy observer (no Lifeguard stretching). A kill not
detected within the bound plus ``--slack`` seconds is reported as missed.

The exit status is 0 unless the harness broke or a kill was missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cluster.node import detection_bound
from cluster.swim import SwimConfig
from tests.agent_process import AgentProcess, clean_env

POLL = 0.05
FORMATION_TIMEOUT = 30.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def states(agent: AgentProcess) -> dict[str, str]:
    """Member id -> state as ``agent`` sees it; {} when it does not answer."""
    try:
        url = f"{agent.endpoint}/_zeronode/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            document = json.load(response)
    except (OSError, urllib.error.URLError, ValueError):
        return {}
    return {m["node_id"]: m["state"] for m in document["members"]}


def wait_all_alive(agents: list[AgentProcess], timeout: float) -> float:
    """Seconds until every agent sees every agent alive; raises after ``timeout``."""
    ids = {agent.node_id for agent in agents}
    started = time.monotonic()
    while True:
        if all({n for n, s in states(a).items() if s == "alive"} == ids for a in agents):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            seen = {a.node_id: states(a) for a in agents}
            raise RuntimeError(f"agents not all alive within {timeout} s: {seen}")
        time.sleep(POLL)


def start_cluster(root: Path, period: float) -> list[AgentProcess]:
    args = ["--cluster-protocol-period", str(period), "--no-mdns"]
    founder = AgentProcess(root / "a" / "data", args=args, log_dir=root / "a")
    (root / "a").mkdir()
    agents = [founder.start()]
    token = subprocess.run(
        [sys.executable, "-m", "zeronode.cli", "token", "--data-dir", str(founder.data_dir)],
        cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    seed = f"127.0.0.1:{founder.cluster_port}"
    for name in ("b", "c"):
        (root / name).mkdir()
        joiner = AgentProcess(
            root / name / "data", args=[*args, "--peer", seed, "--join", token],
            log_dir=root / name,
        )  # fmt: skip
        agents.append(joiner)
        joiner.start()
    wait_all_alive(agents, FORMATION_TIMEOUT)
    return agents


def one_kill(
    victim: AgentProcess, survivors: list[AgentProcess], limit: float
) -> dict[str, float | None]:
    victim_id = victim.node_id
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.process.wait()
    suspect: float | None = None
    dead: dict[str, float] = {}
    while len(dead) < len(survivors):
        now = time.monotonic()
        if now - killed > limit:
            break
        for survivor in survivors:
            state = states(survivor).get(victim_id)
            seen = time.monotonic() - killed
            if state in ("suspect", "dead") and suspect is None:
                suspect = seen
            if state == "dead" and survivor.node_id not in dead:
                dead[survivor.node_id] = seen
        time.sleep(POLL)
    all_dead = max(dead.values()) if len(dead) == len(survivors) else None
    restarted = time.monotonic()
    victim.start()
    assert victim.node_id == victim_id, "the restarted node got a new id"
    wait_all_alive([victim, *survivors], FORMATION_TIMEOUT)
    return {"suspect": suspect, "dead": all_dead, "rejoin": time.monotonic() - restarted}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--period", type=float, default=1.0, help="protocol period, seconds")
    parser.add_argument("--quick", action="store_true", help="3 kills at period 0.3 s")
    parser.add_argument("--slack", type=float, default=10.0,
                        help="seconds past the dead bound before a kill counts as missed")
    parser.add_argument("--json", type=Path, help="write every sample and the summary here")
    options = parser.parse_args()
    if options.quick:
        options.kills, options.period = 3, 0.3

    config = SwimConfig(protocol_period=options.period, probe_timeout=0.8 * options.period)
    suspect_bound, dead_bound = detection_bound(config, 3)
    root = Path(tempfile.mkdtemp(prefix="zn-fd-bench-"))
    agents: list[AgentProcess] = []
    samples: list[dict[str, float | None]] = []
    print(f"3 agents on 127.0.0.1, protocol period {options.period} s, {options.kills} kills "
          f"({os.cpu_count()} CPUs, Python {platform.python_version()})", flush=True)  # fmt: skip
    started = time.monotonic()
    try:
        agents = start_cluster(root, options.period)
        print(f"cluster formed in {time.monotonic() - started:.1f} s", flush=True)
        others = agents[1:]  # never the founder
        for kill in range(options.kills):
            victim = others[kill % 2]
            survivors = [a for a in agents if a is not victim]
            sample = one_kill(victim, survivors, dead_bound + options.slack)
            samples.append(sample)
            shown = {k: "missed" if v is None else f"{v:.2f}" for k, v in sample.items()}
            print(f"kill {kill + 1:2}: suspect {shown['suspect']} s, dead {shown['dead']} s, "
                  f"rejoin {shown['rejoin']} s", flush=True)  # fmt: skip
    finally:
        for agent in agents:
            if agent.running:
                agent.stop()
        shutil.rmtree(root, ignore_errors=True)

    summary: dict[str, Any] = {"period": options.period, "kills": options.kills}
    bounds = {"suspect": suspect_bound, "dead": dead_bound, "rejoin": None}
    print(f"\n{'':8} {'p50':>7} {'p99':>7} {'max':>7} {'bound':>7} {'missed':>7}   (seconds)")
    missed_any = False
    for name in ("suspect", "dead", "rejoin"):
        values = [s[name] for s in samples if s[name] is not None]
        missed = sum(1 for s in samples if s[name] is None)
        missed_any |= missed > 0
        bound = bounds[name]
        row = {
            "p50": percentile(values, 0.5) if values else None,
            "p99": percentile(values, 0.99) if values else None,
            "max": max(values) if values else None,
            "bound": bound, "missed": missed,
        }  # fmt: skip
        summary[name] = row
        cells = [f"{row[k]:7.2f}" if row[k] is not None else f"{'-':>7}"
                 for k in ("p50", "p99", "max", "bound")]  # fmt: skip
        print(f"{name:8} {' '.join(cells)} {missed:7}")
    print(f"\nbound: cluster.node.detection_bound(SwimConfig(protocol_period={options.period}), 3)"
          f" = suspect {suspect_bound:.2f} s, dead {dead_bound:.2f} s (healthy observer, no "
          f"Lifeguard stretching); total run {time.monotonic() - started:.0f} s")  # fmt: skip
    if options.json:
        options.json.write_text(json.dumps({"summary": summary, "samples": samples}, indent=2))
    return 1 if missed_any else 0


if __name__ == "__main__":
    sys.exit(main())
