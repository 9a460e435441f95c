"""A discovery node in its own process, for tests: prints every candidate it is offered.

    python -m tests.cluster.discovery_probe --fingerprint HEX --node-id ID --host-ip IP \\
        --cluster-port N --api-port N [--peer HOST:PORT ...]

Output is JSON lines on stdout: ``{"ready": true}`` once discovery runs, then one object per
candidate (the :class:`~cluster.discovery.Candidate` fields, fingerprint in hex). SIGTERM stops it
gracefully (goodbye packets sent) with exit status 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from typing import Any

import trio

from cluster.discovery import Candidate, open_discovery, parse_seed


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _as_json(candidate: Candidate) -> dict[str, Any]:
    fields = dataclasses.asdict(candidate)
    fields["fingerprint"] = candidate.fingerprint.hex() if candidate.fingerprint else None
    return fields


async def _run(arguments: argparse.Namespace) -> None:
    async with open_discovery(
        fingerprint=bytes.fromhex(arguments.fingerprint),
        node_id=arguments.node_id,
        host_ip=arguments.host_ip,
        cluster_port=arguments.cluster_port,
        api_port=arguments.api_port,
        interfaces=[arguments.host_ip],
        seeds=arguments.peer,
    ) as discovery:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(stop_on_signal)
                _emit({"ready": True})
                async for candidate in discovery.candidates():
                    _emit(_as_json(candidate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fingerprint", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--host-ip", required=True)
    parser.add_argument("--cluster-port", type=int, required=True)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--peer", type=parse_seed, action="append", default=[])
    trio.run(_run, parser.parse_args())


if __name__ == "__main__":
    main()
