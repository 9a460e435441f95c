"""ASGI plumbing for the AWS app: scope -> HttpRequest, HttpResponse -> ASGI messages.

Raw ASGI on purpose (DESIGN.md section 2): the request body is pulled from ``receive`` only as
the consumer asks for it, so an upload is never buffered whole, and the path reaches the wire
layer exactly as the client sent it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from zeronode.aws.http import Headers, HttpRequest, HttpResponse

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ClientDisconnected(Exception):
    """The client went away before the request body was complete."""


class BodyStream:
    """The request body as an async iterator of chunks, pulled from ``receive`` on demand.

    ``complete`` tells whether the client's body was read to its end: a response sent before
    that must close the connection, since the unread rest cannot be skipped safely.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.complete = False

    def __aiter__(self) -> "BodyStream":
        return self

    async def __anext__(self) -> bytes:
        while not self.complete:
            message = await self._receive()
            if message["type"] == "http.request":
                self.complete = not message.get("more_body", False)
                chunk = message.get("body", b"")
                if chunk:
                    return chunk
            elif message["type"] == "http.disconnect":
                raise ClientDisconnected()
        raise StopAsyncIteration


def unread_body(req: HttpRequest) -> bool:
    """True when the client sent (or is sending) a body the app did not read to the end."""
    if not isinstance(req.body, BodyStream) or req.body.complete:
        return False
    length = req.headers.get("content-length")
    return "transfer-encoding" in req.headers or (length is not None and length.strip() != "0")


def request_from_scope(scope: dict[str, Any], receive: Receive) -> HttpRequest:
    raw_path_bytes: bytes | None = scope.get("raw_path")
    raw_path = raw_path_bytes.decode("latin-1") if raw_path_bytes else scope["path"]
    # raw_path may carry the query when a proxy sends an absolute form; keep only the path.
    raw_path = raw_path.split("?", 1)[0]
    return HttpRequest(
        method=scope["method"],
        raw_path=raw_path,
        path=unquote(raw_path, encoding="utf-8", errors="surrogateescape"),
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=Headers.from_asgi(scope.get("headers", [])),
        body=BodyStream(receive),
        client=tuple(scope["client"]) if scope.get("client") else None,
        scheme=scope.get("scheme", "http"),
    )


async def send_response(send: Send, response: HttpResponse, *, head: bool = False) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    body = response.body
    if isinstance(body, (bytes, bytearray)) and not any(k == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if head:
        if not isinstance(body, (bytes, bytearray)):
            await _close(body)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if isinstance(body, (bytes, bytearray)):
        await send({"type": "http.response.body", "body": bytes(body), "more_body": False})
        return
    try:
        async for chunk in body:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        await _close(body)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _close(body: Any) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()
