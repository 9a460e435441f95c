"""Micro-benchmark: RPC rate of cluster.transport over loopback mutual TLS, two processes.

    python bench/transport_rpc.py [--requests 20000] [--concurrency 256] [--bulk-mib 256]

A fresh cluster (CA + two node certificates, from ``cluster.pki``) is made in a temp dir; the
server node runs in a child process (``--serve``) so each side has its own trio loop, as two
nodes would. The client measures, with 64-byte payloads:

- *one in flight*: sequential requests, each awaiting its answer (the latency a SWIM ping sees);
- *pipelined*: ``--concurrency`` tasks sharing the one control connection;
- *bulk*: ``--bulk-mib`` streamed through ``open_bulk`` to a handler that discards it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster import pki
from cluster.transport import BulkStream, Transport


def make_identities(directory: Path) -> None:
    server = pki.NodeIdentity.load_or_create(directory / "server")
    authority = pki.initialise_cluster(server)
    client = pki.NodeIdentity.load_or_create(directory / "client")
    client.install_membership(
        authority.issue(client.node_id, client.key.public_key()),
        [authority.certificate],
        None,
        server.join_secret or b"",
    )


def transport_for(directory: Path) -> Transport:
    identity = pki.NodeIdentity.load_or_create(directory)
    return Transport(
        identity.node_id,
        pki.server_context(identity),
        pki.client_context(identity),
        partial(pki.peer_node_id, identity=identity),
    )


async def serve(directory: Path) -> None:
    transport = transport_for(directory)

    async def echo(peer_id: str, payload: Any) -> Any:
        return payload

    async def discard(peer_id: str, header: Any, bulk: BulkStream) -> None:
        async for _ in bulk:
            pass

    transport.on("echo", echo)
    transport.on_bulk("discard", discard)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(transport.serve, "127.0.0.1", 0)
        print(transport.node_id, port, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes our stdin
        await transport.aclose()


async def measure(directory: Path, server_id: str, port: int, args: argparse.Namespace) -> None:
    client = transport_for(directory / "client")
    address = ("127.0.0.1", port)
    payload = b"x" * 64
    async with trio.open_nursery() as nursery:
        await nursery.start(client.serve, "127.0.0.1", 0)
        await client.connect(address, server_id)
        for _ in range(500):  # warm up
            await client.request(server_id, address, "echo", payload)

        count = args.requests // 4
        start = time.perf_counter()
        for _ in range(count):
            await client.request(server_id, address, "echo", payload)
        elapsed = time.perf_counter() - start
        print(
            f"one in flight : {count / elapsed:9,.0f} RPC/s  ({elapsed / count * 1e6:.0f} µs each)"
        )

        remaining = args.requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await client.request(server_id, address, "echo", payload)

        start = time.perf_counter()
        async with trio.open_nursery() as workers:
            for _ in range(args.concurrency):
                workers.start_soon(worker)
        elapsed = time.perf_counter() - start
        print(
            f"pipelined x{args.concurrency}: {args.requests / elapsed:9,.0f} RPC/s"
            f"  ({args.requests:,} requests in {elapsed:.2f}s)"
        )

        chunk = b"\0" * (1 << 20)
        start = time.perf_counter()
        async with client.open_bulk(server_id, address, "discard", None) as bulk:
            for _ in range(args.bulk_mib):
                await bulk.send(chunk)
            await bulk.send_eof()
            async for _ in bulk:
                pass
        elapsed = time.perf_counter() - start
        print(f"bulk          : {args.bulk_mib / elapsed:9,.0f} MiB/s ({args.bulk_mib} MiB)")
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--bulk-mib", type=int, default=256)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, args.serve)
        return
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        make_identities(directory)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(directory / "server")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            server_id, port = server.stdout.readline().split()
            trio.run(measure, directory, server_id, int(port), args)
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
