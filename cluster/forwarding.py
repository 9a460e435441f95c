"""Forwarding: send a request to the node that owns a resource and stream its answer back.

Theory of operation
-------------------
Some requests can only be answered by one node: the node holding an object's bytes, the
owner of a queue, the node running a function. The node that received the request forwards
it there and relays the answer. Every such use goes through this one mechanism.

A forwarded request is one bulk transfer (``Peers.open_bulk``: a connection of its own, so
a long answer delays no ping or journal request). Its shape, both ways::

    caller                                        callee (serve_forwarded)
    hello: method, request header  ───────────▶  handler(peer, header, body)
    request body chunks, EOF       ───────────▶  (the handler reads them; unread ones are
                                                  discarded before the reply starts)
                                   ◀───────────  chunk 1: msgpack reply header
                                   ◀───────────  reply body chunks, EOF

Headers are msgpack-plain values (``None``, numbers, strings, bytes, lists, maps) of at most
``MAX_HEADER_BYTES``. Bodies are streams: nothing here holds more than a chunk, so memory
stays flat whatever the size. The caller sends its whole body before it reads the reply,
which is why the callee drains an unread body first: otherwise both sides could wait on
each other's full socket buffers. (Full-duplex exchanges are not what this is for.)

Failure is always a :class:`~cluster.transport.TransportError`, as everywhere above the
transport: ``PeerUnreachable`` if the connection cannot be made or breaks,
``RemoteError("UnknownMethod")`` if the callee serves no such method, and
:class:`ForwardedError` if the callee's handler raised — before the reply header or part-way
through the body. A handler error's ``code`` (an AWS error code, say) and ``status`` travel
with it, so the caller can raise the same error to its own client. The transport puts no
deadline on a body: callers that want one wrap ``forward`` in a trio timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgpack

from cluster.peers import Peers
from cluster.transport import BulkStream, RemoteError, TransportError

__all__ = [
    "MAX_HEADER_BYTES",
    "ForwardHandler",
    "ForwardedError",
    "Reply",
    "forward",
    "serve_forwarded",
]

log = logging.getLogger("cluster.forwarding")

#: A reply header must fit one bulk chunk, so the caller reads it with one ``receive``.
MAX_HEADER_BYTES = 64 * 1024

ForwardHandler = Callable[
    [str, Any, AsyncIterator[bytes]],
    Awaitable[tuple[Any, AsyncIterable[bytes] | None]],
]
"""``async handler(peer_id, header, body) -> (reply_header, reply_body or None)``.

``body`` yields the caller's request body. ``reply_body`` is iterated (and ``aclose``-d if it
can be) after the header is sent; an exception from the handler or from ``reply_body`` reaches
the caller as :class:`ForwardedError`, with the exception's ``code``, ``message`` and
``status`` attributes when it has them (an ``AWSError`` does).
"""


class ForwardedError(RemoteError):
    """The callee's handler failed; ``code``/``message``/``status`` are the handler's error's
    (``status`` is None when it had none; ``code`` is ``HandlerFailed`` when it had none)."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(code, message)
        self.status = status


class Reply:
    """The callee's answer: ``header``, then the body by iterating (chunks until the end)."""

    def __init__(self, peer_id: str, header: Any, bulk: BulkStream) -> None:
        self.peer_id = peer_id
        self.header = header
        self._bulk = bulk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await _receive(self._bulk):
            yield chunk


@asynccontextmanager
async def forward(
    peers: Peers,
    peer_id: str,
    method: str,
    header: Any,
    body: bytes | AsyncIterable[bytes] = b"",
) -> AsyncIterator[Reply]:
    """Send ``method`` with ``header`` and ``body`` to ``peer_id``; yield its :class:`Reply`.

    ``body`` is sent whole before the reply is awaited. Leaving the block closes the
    transfer, whether or not the reply body was read to its end. Raises as the module
    docstring says.
    """
    async with peers.open_bulk(peer_id, method, header) as bulk:
        if isinstance(body, (bytes, bytearray, memoryview)):
            if body:
                await bulk.send(body)
        else:
            async for chunk in body:
                if chunk:
                    await bulk.send(chunk)
        await bulk.send_eof()
        first = await _receive(bulk)
        try:
            if not first or len(first) > MAX_HEADER_BYTES:
                raise ValueError("no reply header" if not first else "oversized reply header")
            reply_header = msgpack.unpackb(first)
        except (ValueError, TypeError) as error:  # msgpack's errors are ValueErrors
            raise RemoteError("MalformedReply", f"{method} on {peer_id}: {error}") from None
        yield Reply(peer_id, reply_header, bulk)


def serve_forwarded(peers: Peers, method: str, handler: ForwardHandler) -> None:
    """Serve forwarded requests for ``method`` with ``handler`` (see :data:`ForwardHandler`)."""

    async def serve(peer_id: str, header: Any, bulk: BulkStream) -> None:
        body = _RequestBody(bulk)
        try:
            reply_header, reply_body = await handler(peer_id, header, body)
            await body.drain()
            packed = msgpack.packb(reply_header)
            if len(packed) > MAX_HEADER_BYTES:
                raise ValueError(f"reply header of {len(packed)} bytes")
            await bulk.send(packed)
            if reply_body is not None:
                try:
                    async for chunk in reply_body:
                        if chunk:
                            await bulk.send(chunk)
                finally:
                    close = getattr(reply_body, "aclose", None)
                    if close is not None:
                        await close()
        except Exception as error:  # noqa: BLE001 - every failure goes to the caller
            code, message, status = _describe(error)
            log.info(
                "forwarding.failed peer=%s method=%s code=%s error=%r",
                peer_id, method, code, error,
            )
            try:
                await bulk.send_error(code, json.dumps({"message": message, "status": status}))
            except TransportError:
                pass  # the caller is gone too

    peers.on_bulk(method, serve)


class _RequestBody:
    """The caller's body as the handler reads it; ``drain`` discards what it left unread."""

    def __init__(self, bulk: BulkStream) -> None:
        self._bulk = bulk
        self._ended = False

    def __aiter__(self) -> _RequestBody:
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        chunk = await self._bulk.receive()
        if not chunk:
            self._ended = True
            raise StopAsyncIteration
        return chunk

    async def drain(self) -> None:
        async for _ in self:
            pass


async def _receive(bulk: BulkStream) -> bytes:
    """The next reply chunk; an error the callee sent becomes :class:`ForwardedError`."""
    try:
        return await bulk.receive()
    except RemoteError as error:
        raise _forwarded(error) from None


def _forwarded(error: RemoteError) -> ForwardedError:
    try:
        detail = json.loads(error.message)
        message, status = str(detail["message"]), detail.get("status")
    except (ValueError, TypeError, KeyError):
        message, status = error.message, None  # sent by the transport itself
    return ForwardedError(error.code, message, status if isinstance(status, int) else None)


def _describe(error: Exception) -> tuple[str, str, int | None]:
    """A handler error as ``(code, message, status)`` for the wire."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    status = getattr(error, "status", None)
    if not isinstance(code, str) or not code:
        return "HandlerFailed", repr(error), None
    return (
        code,
        message if isinstance(message, str) else str(error),
        status if isinstance(status, int) and not isinstance(status, bool) else None,
    )
