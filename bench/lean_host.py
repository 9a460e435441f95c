"""The agent with its AWS app on a minimal trio + h11 host instead of hypercorn: an experiment
that prices issue 3's option "replace hypercorn on the AWS port", not a server to ship.

    python bench/lean_host.py up --data-dir DIR --port PORT   (what ``http_floor.py`` starts)

It is the real agent (``zeronode.cli``), with ``zeronode.agent.serve`` swapped for
:func:`serve` below: one task per connection drives h11 and calls the ASGI app in that task —
no per-request task, queue or timer, which is where hypercorn's trio worker spends its time.
Deliberately missing, and what a shippable version would need first: read and keep-alive
timeouts, a graceful drain on stop, request size limits, pipelining, HTTP/2, access logs.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import h11
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RECV_SIZE = 256 * 1024


async def serve(
    app: Any,
    settings: Any,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Drop-in for ``zeronode.http.server.serve``: lifespan start, listen, stop on trigger."""
    async with trio.open_nursery() as nursery:
        await _lifespan_startup(app, nursery)
        listeners = await nursery.start(
            trio.serve_tcp, lambda stream: _connection(app, stream), settings.port
        )
        task_status.started([f"http://{settings.host}:{settings.port}" for _ in listeners[:1]])
        await shutdown_trigger()
        nursery.cancel_scope.cancel()


async def _lifespan_startup(app: Any, nursery: trio.Nursery) -> None:
    to_app, app_inbox = trio.open_memory_channel[dict[str, Any]](1)
    started = trio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    nursery.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, app_inbox.receive, send)
    await to_app.send({"type": "lifespan.startup"})
    await started.wait()


async def _connection(app: Any, stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = await _next_event(conn, stream)
            if isinstance(event, h11.Request):
                await _request(app, conn, stream, event)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
            else:
                return
    except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(RECV_SIZE))


async def _request(
    app: Any, conn: h11.Connection, stream: trio.SocketStream, request: h11.Request
) -> None:
    target = request.target
    path, _, query = target.partition(b"?")
    expects = any(n == b"expect" and v.lower() == b"100-continue" for n, v in request.headers)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": request.method.decode(), "scheme": "http",
        "path": unquote(path.decode("latin-1")), "raw_path": path, "query_string": query, "root_path": "",
        "headers": list(request.headers), "client": None, "server": None,
    }  # fmt: skip
    state = {"continued": not expects, "body_done": False}

    async def receive() -> dict[str, Any]:
        if state["body_done"]:
            await trio.sleep_forever()
        if not state["continued"]:
            state["continued"] = True
            await stream.send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            return {"type": "http.request", "body": bytes(event.data), "more_body": True}
        state["body_done"] = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response = h11.Response(status_code=message["status"], headers=message["headers"])
            await stream.send_all(conn.send(response))
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            data = conn.send(h11.Data(data=body)) if body else b""
            if not message.get("more_body", False):
                data += conn.send(h11.EndOfMessage())
            if data:
                await stream.send_all(data)

    await app(scope, receive, send)
    if conn.their_state is h11.SEND_BODY and not state["continued"]:
        raise trio.ClosedResourceError  # answered before asking for the body: close
    while conn.their_state is h11.SEND_BODY:  # the app did not read the whole body
        if isinstance(await _next_event(conn, stream), h11.EndOfMessage):
            break


def main() -> None:
    import zeronode.agent
    from zeronode.cli import main as cli_main

    zeronode.agent.serve = serve  # type: ignore[assignment]
    sys.exit(cli_main())


if __name__ == "__main__":
    main()
