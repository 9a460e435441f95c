"""What the HTTP server alone costs per small PUT: the floor under the S3 CPU target.

    python bench/http_floor.py [--ops 1500]

Starts, one after the other, a do-nothing raw-ASGI app (reads the body, answers 200 with an
ETag) on hypercorn's trio worker and on its asyncio worker, the same answer from trio driving
h11 directly (no hypercorn), ``bench/null_endpoint.py`` (HTTP/1.1
parsed by hand on asyncio), zeronode itself and moto, and sends each the same boto3 4 KiB PutObject
loop (one client, ``Expect: 100-continue`` as boto3 sends it). Prints the server's CPU per
request (``/proc``, see ``procstat.py``) and ops/s. Issue 3's target is a quarter of moto's CPU
per PUT; this shows how much of that budget the HTTP layer takes before any S3 work. Compare
figures within one run only: machines differ by 2-3x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procstat import cpu_seconds  # noqa: E402
from bench.servers import (  # noqa: E402
    DUMMY_KEYS,
    Server,
    _launch,
    free_port,
    start_moto,
    start_null,
    start_zeronode,
    wait_ready,
)

ETAG = b'"5d41402abc4b2a76b9719d911017c592"'
LEAN_HOST = [sys.executable, str(Path(__file__).with_name("lean_host.py"))]


async def do_nothing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raw ASGI: drain the request body, answer 200 with an ETag; lifespan acknowledged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"etag", ETAG), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def serve(worker: str, port: int) -> None:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    if worker == "trio":
        import trio
        from hypercorn.trio import serve as trio_serve

        trio.run(trio_serve, do_nothing, config)
    else:
        import asyncio

        from hypercorn.asyncio import serve as asyncio_serve

        asyncio.run(asyncio_serve(do_nothing, config))  # type: ignore[arg-type]


def serve_h11_on_trio(port: int) -> None:
    """The same do-nothing answer from one trio task per connection driving h11 directly:
    what a lean server on our stack (trio + h11, no hypercorn) would cost."""
    import h11
    import trio

    async def connection(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(1 << 16)
                conn.receive_data(data)
                if not data:
                    return
            elif isinstance(event, h11.Request):
                if any(name == b"expect" for name, _ in event.headers):
                    proceed = h11.InformationalResponse(status_code=100, headers=[])
                    await stream.send_all(conn.send(proceed))
            elif isinstance(event, h11.EndOfMessage):
                headers = [(b"etag", ETAG), (b"content-length", b"0")]
                await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return  # Connection: close
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return

    async def guarded(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                await connection(stream)
            except (h11.ProtocolError, trio.BrokenResourceError):
                pass

    trio.run(partial(trio.serve_tcp, guarded, port, host="127.0.0.1"))


def start_server(worker: str, workdir: Path) -> Server:
    port = free_port()
    command = [sys.executable, __file__, "--serve", worker, "--port", str(port)]
    return _launch(f"server-{worker}", command, workdir, port, DUMMY_KEYS)


def measure(server: Server, ops: int) -> tuple[float, float]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=server.endpoint, region_name=server.region,
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )  # fmt: skip
    try:
        client.create_bucket(Bucket="floor-bench")
    except client.exceptions.ClientError:
        pass  # the do-nothing servers answer anything
    body = bytes(4096)
    for i in range(100):
        client.put_object(Bucket="floor-bench", Key=f"warm{i}", Body=body)
    cpu, wall = cpu_seconds(server.pid), time.monotonic()
    for i in range(ops):
        client.put_object(Bucket="floor-bench", Key=f"k{i}", Body=body)
    wall = time.monotonic() - wall
    return (cpu_seconds(server.pid) - cpu) / ops * 1000, ops / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1500)
    parser.add_argument("--serve", choices=("trio", "asyncio", "h11"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "h11":
        serve_h11_on_trio(args.port)
        return
    if args.serve:
        serve(args.serve, args.port)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        starters = {
            "hypercorn trio, do-nothing ASGI": lambda: start_server("trio", workdir),
            "hypercorn asyncio, do-nothing ASGI": lambda: start_server("asyncio", workdir),
            "trio + h11, no hypercorn": lambda: start_server("h11", workdir),
            "null endpoint (hand-parsed)": lambda: start_null(workdir, free_port()),
            "zeronode (durable PUT)": lambda: start_zeronode(workdir, free_port()),
            "zeronode on trio + h11 (lean_host.py)": lambda: start_zeronode(
                workdir, free_port(), launcher=LEAN_HOST
            ),
            "moto (in memory)": lambda: start_moto(workdir, free_port()),
        }
        print(f"4 KiB PutObject x {args.ops}, one boto3 client")
        for label, starter in starters.items():
            server = starter()
            try:
                wait_ready(server)
                ms, rate = measure(server, args.ops)
            finally:
                server.stop()
            print(f"{label:38} server CPU {ms:5.2f} ms/op   {rate:6.0f} ops/s")


if __name__ == "__main__":
    main()
