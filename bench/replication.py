"""Replication figures for issue 5, against real agents on 127.0.0.1.

    python bench/replication.py [--ops 300] [--catchup 10000] [--workdir DIR]

Starts a one-node cluster and a three-node cluster (``--ack majority``, the default; the
agents share one root key) and measures, with boto3 and 4 KiB objects:

- ``ack 1 node`` / ``ack 3 nodes``: PutObject latency (p50/p99), one client, on the single
  node and on node A of the three (a write waits for a majority: A and one peer);
- ``A->C visible``: from the start of a PutObject on A to the end of the first HeadObject on
  C that finds it (issued right after the PUT returns: read-after-write makes it the first);
- ``catch-up``: node C is stopped, ``--catchup`` objects are written on A (8 clients), C is
  started again; the time from C answering HTTP to C's journal reaching A's version vector
  and state hash, and the events per second that makes.

The snapshot install figure (100,000 objects) is ``bench/snapshot_install.py``'s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.agent_process import AgentProcess  # noqa: E402
from tests.cluster.agents import start_cluster  # noqa: E402

KEY_ID, SECRET = "AKIAZERONODEBENCH001", "zeronode-bench-secret-key-0123456789abcd"
ENV = {"ZERONODE_ACCESS_KEY_ID": KEY_ID, "ZERONODE_SECRET_ACCESS_KEY": SECRET}
BODY = b"x" * 4096


def client(agent: AgentProcess) -> Any:
    return boto3.client(
        "s3", endpoint_url=agent.endpoint, region_name="us-east-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, max_pool_connections=16,
                      s3={"addressing_style": "path"}),
    )  # fmt: skip


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms  (n={len(ordered)})"


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def journal(agent: AgentProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{agent.endpoint}/_zeronode/journal", timeout=10) as response:
        return dict(json.load(response))


class Factory:
    """What ``start_cluster`` expects of the test fixture: start an agent, remember it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.agents: list[AgentProcess] = []

    def __call__(self, **kwargs: Any) -> AgentProcess:
        agent = AgentProcess(self.workdir / f"node{len(self.agents)}", log_dir=self.workdir,
                             **kwargs)
        self.agents.append(agent)
        return agent.start()

    def stop_all(self) -> None:
        for agent in self.agents:
            if agent.running:
                agent.stop()


def ack_latency(agent: AgentProcess, ops: int, bucket: str) -> list[float]:
    s3 = client(agent)
    s3.create_bucket(Bucket=bucket)
    for i in range(20):  # warm up connections and caches
        s3.put_object(Bucket=bucket, Key=f"warm-{i}", Body=BODY)
    return [
        timed(lambda i=i: s3.put_object(Bucket=bucket, Key=f"k{i}", Body=BODY))
        for i in range(ops)
    ]


def visible_latency(a: AgentProcess, c: AgentProcess, ops: int) -> list[float]:
    writer, reader = client(a), client(c)
    writer.create_bucket(Bucket="visible")
    samples = []
    for i in range(ops):
        started = time.perf_counter()
        writer.put_object(Bucket="visible", Key=f"k{i}", Body=BODY)
        reader.head_object(Bucket="visible", Key=f"k{i}")  # raises if not visible
        samples.append(time.perf_counter() - started)
    return samples


def settled(agent: AgentProcess) -> dict[str, Any]:
    """The agent's journal once it stopped changing for a second (object copies made)."""
    last = journal(agent)
    while True:
        time.sleep(1.0)
        now = journal(agent)
        if now == last:
            return now
        last = now


def catch_up(a: AgentProcess, c: AgentProcess, count: int) -> float:
    s3 = client(a)
    s3.create_bucket(Bucket="catchup")
    c.stop()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="catchup", Key=f"k{i}", Body=b""),
                      range(count)))
    target = settled(a)
    c.start()
    started = time.perf_counter()
    while True:
        mine = journal(c)
        if mine["position"] == target["position"] and mine["state_hash"] == target["state_hash"]:
            return time.perf_counter() - started
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--catchup", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as directory:
        workdir = Path(directory)
        single, triple = Factory(workdir / "one"), Factory(workdir / "three")
        (workdir / "one").mkdir()
        (workdir / "three").mkdir()
        try:
            lone = start_cluster(single, 1, env=ENV)[0]
            print(f"ack 1 node     {percentiles(ack_latency(lone, args.ops, 'ack1'))}")
            single.stop_all()
            a, _, c = start_cluster(triple, 3, env=ENV)
            print(f"ack 3 nodes    {percentiles(ack_latency(a, args.ops, 'ack3'))}")
            print(f"A->C visible   {percentiles(visible_latency(a, c, args.ops))}")
            events_before = sum(journal(a)["position"].values())
            seconds = catch_up(a, c, args.catchup)
            events = sum(journal(a)["position"].values()) - events_before
            print(f"catch-up       {seconds:7.2f} s for {events} events"
                  f" ({events / seconds:,.0f} events/s)")
        finally:
            single.stop_all()
            triple.stop_all()


if __name__ == "__main__":
    main()
