"""Mutual-TLS connections between nodes carrying framed messages: RPC, notifications, bulk.

Theory of operation
-------------------
Every node listens on its cluster port and dials its peers. A connection is TLS 1.3 with a
certificate on both sides; after the handshake the dialer *pins* the peer: ``peer_id_of(stream)``
must name exactly the node it meant to reach, or the connection is closed and the call fails
with ``IdentityMismatch``. The listener learns who called from the caller's certificate. A caller
with no certificate (a node that has not joined yet: ``pki.server_context`` lets it in) gets none
of this protocol: its handshaken stream goes to the handler set with ``on_unauthenticated``
(``join.serve_join``), at most a few at a time and for a bounded time, and is then closed.

The first frame on a connection says what it is for (``hello``), and the listener answers
``welcome`` (or an error) before anything else flows. With TLS 1.3 a client's handshake
succeeds even when the server then rejects its certificate (research A5), so waiting for
``welcome`` is what proves the peer accepted us; it costs one round trip per connection.

Two kinds of connection, so pings never queue behind bytes (research A6, pitfall 8):

- *control*: one persistent connection per peer that this node dials (the peer dials its
  own for the other direction). Requests carry ids and are multiplexed; any number may be in
  flight. Notifications are one-way. Small messages only.
- *bulk*: a fresh connection per transfer (``open_bulk``), carrying a stream of byte chunks each
  way and closed at the end. A slow transfer owns its connection and delays nobody else; the
  extra handshake is small next to a transfer big enough to need this path.

Each control connection has one writer task fed by a bounded memory channel (trio streams
allow one sender at a time: pitfall 7) and one reader task that resolves waiting requests and
starts handlers for inbound ones. The reader never waits for a handler: past ``max_handlers``
running on one connection, a request is answered ``Overloaded`` at once, so a busy node can
neither deadlock a peer that calls it back nor hold up the responses it is itself waiting for.

A frame that is oversized, undecodable or not a valid message closes *that* connection (the
error is logged); its pending requests fail with ``PeerUnreachable`` and the next request
dials again. Nothing else is affected: every accepted connection runs in its own task and its
errors never reach the listener.

Wire messages (msgpack maps, see ``cluster.frames``)::

    {"t": "hello", "c": "control"}                       dialer -> listener, first frame
    {"t": "hello", "c": "bulk", "m": method, "p": header}
    {"t": "welcome"}                                     listener -> dialer
    {"t": "req", "id": int, "m": method, "p": payload}   either way on a control connection
    {"t": "res", "id": int, "p": payload}
    {"t": "err", "id": int, "e": code, "msg": text}      "id" absent when refusing a hello
    {"t": "note", "m": method, "p": payload}             one-way
    {"t": "data", "d": bytes} / {"t": "eof"}             bulk body chunks, each way

Error codes (``RemoteError.code``): ``UnknownMethod``, ``Overloaded`` (retry later),
``HandlerFailed`` (the handler raised; ``msg`` is its repr).

Fault injection (``transport.faults``, see ``cluster.faults``) sits where messages are sent and
received, and where connections are made, in both directions.
"""

from __future__ import annotations

import itertools
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from cluster.faults import Faults
from cluster.frames import MAX_FRAME, FrameDecoder, FrameError, encode_frame

__all__ = [
    "AnonymousHandler",
    "BulkHandler",
    "BulkStream",
    "Handler",
    "IdentityMismatch",
    "PeerUnreachable",
    "RemoteError",
    "RequestTimeout",
    "Transport",
    "TransportError",
]

log = logging.getLogger("cluster.transport")

Handler = Callable[[str, Any], Awaitable[Any]]
"""``async handler(peer_id, payload) -> payload | None`` (the result of a notification is
dropped)."""

AnonymousHandler = Callable[[trio.SSLStream[trio.abc.Stream], str], Awaitable[None]]
"""``async handler(stream, peer_address)`` for a caller without a certificate: the stream is
handshaken and nothing has been read from it; it is closed when the handler returns."""

BulkHandler = Callable[[str, Any, "BulkStream"], Awaitable[None]]
"""``async handler(peer_id, header, bulk)``: read the request body from ``bulk``, write the
response body to it; returning ends the response body."""

_READ_SIZE = 256 * 1024
_WRITE_BATCH = 256 * 1024  # coalesce queued frames into one TLS write up to this size
_OUTBOX_FRAMES = 1024  # frames queued per connection before senders wait
_BULK_CHUNK = 256 * 1024
_DATA_OVERHEAD = 32  # bytes a {"t": "data", "d": <bin>} frame adds around its chunk
_CLOSE_GRACE = 1.0  # seconds a graceful TLS close may take before it is forced
# A join is a couple of round trips; anonymous sockets must not linger or pile up.
_UNAUTHENTICATED_LIFETIME = 30.0
_MAX_UNAUTHENTICATED = 16


class TransportError(Exception):
    """Base of every failure a transport call reports."""


class PeerUnreachable(TransportError):
    """No connection to the peer, or it broke before the answer came (the request may or may
    not have been handled)."""


class RequestTimeout(TransportError):
    """No answer within the timeout (the request may or may not have been handled)."""


class IdentityMismatch(PeerUnreachable):
    """The node at the address is not the node the caller asked for."""


class RemoteError(TransportError):
    """The peer received the request and answered with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _ProtocolError(FrameError):
    """A well-formed frame that is not a valid message here: treated like garbage."""


def _remote_address(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "unknown"
    return f"{host}:{port}"


def _message_type(message: Any) -> str:
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise _ProtocolError(f"not a transport message: {type(message).__name__}")
    return str(message["t"])


async def _receive_message(
    stream: trio.abc.ReceiveStream, decoder: FrameDecoder, ready: deque[Any]
) -> Any:
    """The next message from ``stream``; ``ready`` keeps frames decoded ahead of time."""
    while not ready:
        data = await stream.receive_some(_READ_SIZE)
        if not data:
            raise trio.BrokenResourceError("connection closed by peer")
        ready.extend(decoder.feed(data))
    return ready.popleft()


async def _close(stream: trio.abc.AsyncResource) -> None:
    """Close with a TLS close_notify if it goes quickly, forcefully otherwise."""
    with trio.move_on_after(_CLOSE_GRACE):
        try:
            await stream.aclose()
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await trio.aclose_forcefully(stream)


class _Waiter:
    """One request awaiting its answer."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: Any = None
        self.error: TransportError | None = None


class _Connection:
    """A control connection: one writer task, one reader task, handlers in a nursery."""

    def __init__(
        self,
        transport: Transport,
        stream: trio.SSLStream[trio.abc.Stream],
        decoder: FrameDecoder,
        peer_id: str,
    ) -> None:
        self._transport = transport
        self._stream = stream
        self._decoder = decoder
        self.peer_id = peer_id
        self._handlers = transport._handlers
        self._running_handlers = 0
        self._outbox, self._outbox_out = trio.open_memory_channel[tuple[float, bytes]](
            _OUTBOX_FRAMES
        )
        self._pending: dict[int, _Waiter] = {}
        self._ids = itertools.count()
        self._scope = trio.CancelScope()
        self.closed = False

    def close(self) -> None:
        """Stop the connection's tasks; ``run`` then closes the stream."""
        self._scope.cancel()

    async def run(self) -> None:
        """Serve the connection until it breaks, misbehaves or is closed."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._until_failure, self._write_loop)
                    await self._until_failure(self._read_loop, nursery)
        finally:
            self.closed = True
            self._transport._forget(self)
            self._outbox.close()  # senders waiting for room get PeerUnreachable
            for waiter in self._pending.values():
                waiter.error = PeerUnreachable(f"connection to {self.peer_id} closed")
                waiter.done.set()
            self._pending.clear()
            with trio.CancelScope(shield=True):
                await _close(self._stream)

    async def _until_failure(self, loop: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run the reader or the writer; when either stops, for whatever reason, the whole
        connection stops (errors are logged here, so none escapes into a nursery)."""
        try:
            await loop(*args)
        except FrameError as error:
            log.warning("transport.bad_frame peer=%s error=%s", self.peer_id, error)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            log.debug("transport.connection_lost peer=%s error=%s", self.peer_id, error)
        except Exception:
            log.exception("transport.connection_failed peer=%s", self.peer_id)
        self._scope.cancel()

    async def _write_loop(self) -> None:
        held: tuple[float, bytes] | None = None
        while True:
            deliver_at, frame = held if held is not None else await self._outbox_out.receive()
            held = None
            if deliver_at > trio.current_time():
                await trio.sleep_until(deliver_at)
            batch, size = [frame], len(frame)
            while size < _WRITE_BATCH:
                try:
                    item = self._outbox_out.receive_nowait()
                except trio.WouldBlock:
                    break
                if item[0] > trio.current_time():
                    held = item
                    break
                batch.append(item[1])
                size += len(item[1])
            await self._stream.send_all(b"".join(batch) if len(batch) > 1 else frame)

    def _faulted(self) -> bool:
        """Whether fault injection loses the message now passing, either way."""
        faults = self._transport.faults
        if faults.blocks(self._transport.node_id, self.peer_id):
            return True
        return faults.drops()

    async def send(self, frame: bytes) -> None:
        """Queue a frame, waiting while the outbox is full."""
        if self.closed:
            raise PeerUnreachable(f"connection to {self.peer_id} closed")
        if self._faulted():
            return
        try:
            await self._outbox.send((self._deliver_at(), frame))
        except trio.ClosedResourceError as error:
            raise PeerUnreachable(f"connection to {self.peer_id} closed") from error

    def send_nowait(self, frame: bytes) -> None:
        """Queue a frame if there is room; drop it otherwise (notifications are best effort)."""
        if self.closed or self._faulted():
            return
        try:
            self._outbox.send_nowait((self._deliver_at(), frame))
        except (trio.WouldBlock, trio.ClosedResourceError):
            log.debug("transport.notify_dropped peer=%s reason=outbox_full", self.peer_id)

    def _deliver_at(self) -> float:
        delay = self._transport.faults.next_delay()
        return trio.current_time() + delay if delay else 0.0

    async def request(self, method: str, payload: Any) -> Any:
        request_id = next(self._ids)
        frame = encode_frame(
            {"t": "req", "id": request_id, "m": method, "p": payload},
            max_frame=self._transport.max_frame,
        )
        waiter = _Waiter()
        self._pending[request_id] = waiter
        try:
            await self.send(frame)
            await waiter.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        while True:
            data = await self._stream.receive_some(_READ_SIZE)
            if not data:
                log.debug("transport.eof peer=%s", self.peer_id)
                return
            for message in self._decoder.feed(data):
                self._dispatch(message, nursery)

    def _dispatch(self, message: Any, nursery: trio.Nursery) -> None:
        kind = _message_type(message)
        if self._faulted():
            return
        if kind in ("res", "err"):
            waiter = self._pending.pop(message.get("id"), None)
            if waiter is None:
                return  # the caller gave up (timeout) before the answer came
            if kind == "res":
                waiter.result = message.get("p")
            else:
                waiter.error = RemoteError(str(message.get("e")), str(message.get("msg")))
            waiter.done.set()
        elif kind in ("req", "note"):
            method = message.get("m")
            request_id = message.get("id") if kind == "req" else None
            if kind == "req" and not isinstance(request_id, int):
                raise _ProtocolError("request without an integer id")
            handler = self._handlers.get(method) if isinstance(method, str) else None
            if handler is None:
                self._refuse(request_id, "UnknownMethod", f"no handler for {method!r}")
            elif self._running_handlers >= self._transport.max_handlers:
                self._refuse(request_id, "Overloaded", "too many requests in progress")
            else:
                self._running_handlers += 1
                nursery.start_soon(self._handle, handler, method, request_id, message.get("p"))
        else:
            raise _ProtocolError(f"unexpected {kind!r} message on a control connection")

    def _refuse(self, request_id: int | None, code: str, text: str) -> None:
        log.info("transport.refused peer=%s code=%s detail=%s", self.peer_id, code, text)
        if request_id is not None:
            self.send_nowait(encode_frame({"t": "err", "id": request_id, "e": code, "msg": text}))

    async def _handle(
        self, handler: Handler, method: str, request_id: int | None, payload: Any
    ) -> None:
        try:
            try:
                result = await handler(self.peer_id, payload)
                if request_id is None:
                    return
                frame = encode_frame(
                    {"t": "res", "id": request_id, "p": result},
                    max_frame=self._transport.max_frame,
                )
            except Exception as error:
                log.warning(
                    "transport.handler_failed peer=%s method=%s error=%r",
                    self.peer_id,
                    method,
                    error,
                    exc_info=True,
                )
                if request_id is None:
                    return
                frame = encode_frame(
                    {"t": "err", "id": request_id, "e": "HandlerFailed", "msg": repr(error)}
                )
            await self.send(frame)
        except PeerUnreachable:
            pass  # the caller is gone; it will see the connection failure itself
        finally:
            self._running_handlers -= 1


class BulkStream:
    """One bulk transfer: a body of byte chunks each way over a connection of its own.

    Each side sends its body with ``send`` and ends it with ``send_eof``; ``receive`` returns
    the peer's next chunk, ``b""`` once the peer's body has ended (iterating does the same).
    An ``err`` from the peer raises ``RemoteError``; a broken connection or a partition raises
    ``PeerUnreachable``. The transport puts no deadline on the body: wrap calls in a trio
    timeout where one is wanted.
    """

    def __init__(
        self,
        transport: Transport,
        stream: trio.SSLStream[trio.abc.Stream],
        decoder: FrameDecoder,
        ready: deque[Any],
        peer_id: str,
    ) -> None:
        self._transport = transport
        self._stream = stream
        self._decoder = decoder
        self._ready = ready  # frames decoded along with the welcome
        self.peer_id = peer_id
        self._eof_sent = False
        self._eof_received = False

    def _check_partition(self) -> None:
        if self._transport.faults.blocks(self._transport.node_id, self.peer_id):
            raise PeerUnreachable(f"bulk transfer with {self.peer_id}: partitioned")

    async def _send_message(self, message: dict[str, Any]) -> None:
        self._check_partition()
        try:
            await self._stream.send_all(encode_frame(message, max_frame=self._transport.max_frame))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise PeerUnreachable(f"bulk transfer with {self.peer_id}: {error}") from error

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send part of this side's body (split into frames as needed)."""
        if self._eof_sent:
            raise trio.ClosedResourceError("bulk body already ended")
        view = memoryview(data)
        chunk = min(_BULK_CHUNK, self._transport.max_frame - _DATA_OVERHEAD)
        for start in range(0, len(view), chunk):
            await self._send_message({"t": "data", "d": view[start : start + chunk]})

    async def send_eof(self) -> None:
        """End this side's body (idempotent)."""
        if not self._eof_sent:
            self._eof_sent = True
            await self._send_message({"t": "eof"})

    async def send_error(self, code: str, text: str) -> None:
        """Abort this side's body with an error the peer's ``receive`` raises."""
        self._eof_sent = True
        await self._send_message({"t": "err", "e": code, "msg": text})

    async def receive(self) -> bytes:
        """The peer's next chunk, or ``b""`` once its body has ended."""
        if self._eof_received:
            return b""
        self._check_partition()
        try:
            message = await _receive_message(self._stream, self._decoder, self._ready)
            kind = _message_type(message)
            if kind == "data" and isinstance(message.get("d"), bytes) and message["d"]:
                return message["d"]  # type: ignore[no-any-return]
            if kind == "eof":
                self._eof_received = True
                return b""
            if kind == "err":
                self._eof_received = True
                raise RemoteError(str(message.get("e")), str(message.get("msg")))
            raise _ProtocolError(f"unexpected {kind!r} message in a bulk transfer")
        except FrameError as error:
            log.warning("transport.bad_frame peer=%s bulk=true error=%s", self.peer_id, error)
            await trio.aclose_forcefully(self._stream)
            raise PeerUnreachable(f"bulk transfer with {self.peer_id}: {error}") from error
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise PeerUnreachable(f"bulk transfer with {self.peer_id}: {error}") from error

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.receive():
            yield chunk

    async def aclose(self) -> None:
        self._transport._bulk_streams.discard(self)
        await _close(self._stream)


class Transport:
    """One node's end of the cluster network (see the module docstring).

    ``serve`` must be running (started in a nursery) for the transport to dial out as well as
    to accept: every connection's tasks live in its nursery.
    """

    def __init__(
        self,
        node_id: str,
        server_ssl_context: ssl.SSLContext,
        client_ssl_context: ssl.SSLContext,
        peer_id_of: Callable[[trio.SSLStream[trio.abc.Stream]], str | None],
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 10.0,
        max_frame: int = MAX_FRAME,
        max_handlers: int = 1024,
        faults: Faults | None = None,
    ) -> None:
        self.node_id = node_id
        self._server_context = server_ssl_context
        self._client_context = client_ssl_context
        self._peer_id_of = peer_id_of
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_frame = max_frame
        self.max_handlers = max_handlers
        self.faults = faults or Faults()
        self._handlers: dict[str, Handler] = {}
        self._anonymous_handler: AnonymousHandler | None = None
        self._bulk_handlers: dict[str, BulkHandler] = {}
        self._outbound: dict[str, _Connection] = {}
        self._dial_locks: dict[str, trio.Lock] = {}
        self._connections: set[_Connection] = set()
        self._bulk_streams: set[BulkStream] = set()
        self._anonymous_count = 0
        self._nursery: trio.Nursery | None = None
        self._listener_scope = trio.CancelScope()
        self._closing = False
        self._stopped = trio.Event()

    # -- registration ------------------------------------------------------------------------

    def on(self, method: str, handler: Handler) -> None:
        """Serve ``method`` (requests and notifications) to peers with a valid certificate."""
        self._handlers[method] = handler

    def on_unauthenticated(self, handler: AnonymousHandler) -> None:
        """Hand every caller that presented no certificate to ``handler`` (the join exchange:
        ``lambda stream, peer: join.serve_join(stream, identity, peer=peer)``). Without one,
        such callers are closed at once."""
        self._anonymous_handler = handler

    def on_bulk(self, method: str, handler: BulkHandler) -> None:
        """Serve bulk transfers opened with ``open_bulk(..., method, ...)``."""
        self._bulk_handlers[method] = handler

    # -- lifetime ----------------------------------------------------------------------------

    async def serve(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on ``host:port`` (0 picks a free port) and run every connection until
        ``aclose``. Start it with ``port = await nursery.start(transport.serve, host, port)``."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_port: int = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._listen, listeners)
                log.info(
                    "transport.listening node=%s host=%s port=%d", self.node_id, host, bound_port
                )
                task_status.started(bound_port)
        finally:
            self._closing = True
            self._stopped.set()

    async def _listen(self, listeners: list[trio.SocketListener]) -> None:
        assert self._nursery is not None
        try:
            with self._listener_scope:
                await trio.serve_listeners(self._accept, listeners, handler_nursery=self._nursery)
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def aclose(self) -> None:
        """Stop listening, close every connection (gracefully if quick) and wait for ``serve``
        to return. Requests in flight fail with ``PeerUnreachable``."""
        if self._nursery is None:
            self._closing = True
            return
        if not self._closing:
            self._closing = True
            self._listener_scope.cancel()
            for connection in list(self._connections):
                connection.close()
            for bulk in list(self._bulk_streams):
                await trio.aclose_forcefully(bulk._stream)
            with trio.move_on_after(2 * _CLOSE_GRACE):
                await self._stopped.wait()
            self._nursery.cancel_scope.cancel()
        await self._stopped.wait()

    def _forget(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        if self._outbound.get(connection.peer_id) is connection:
            del self._outbound[connection.peer_id]

    def _start(self, connection: _Connection) -> None:
        """Run an outbound connection in the transport's nursery."""
        assert self._nursery is not None
        self._nursery.start_soon(self._run, connection)

    async def _run(self, connection: _Connection) -> None:
        self._connections.add(connection)
        await connection.run()

    # -- inbound -----------------------------------------------------------------------------

    async def _accept(self, tcp_stream: trio.SocketStream) -> None:
        """Handshake, identify and serve one inbound connection to its end (trio closes an
        accepted stream when this returns). Nothing raised here reaches the listener: a bad
        client costs its own connection only."""
        stream: trio.SSLStream[trio.abc.Stream] = trio.SSLStream(
            tcp_stream, self._server_context, server_side=True
        )
        decoder = FrameDecoder(self.max_frame)
        ready: deque[Any] = deque()
        peer_id: str | None = None
        address = _remote_address(tcp_stream)
        try:
            with trio.fail_after(self.connect_timeout):
                await stream.do_handshake()
                peer_id = self._peer_id_of(stream)
            if self._closing:
                raise TransportError("transport closing")
            if peer_id is None:
                await self._serve_anonymous(stream, address)
                return
            if self.faults.blocks(self.node_id, peer_id):
                raise TransportError("partitioned")
            with trio.fail_after(self.connect_timeout):
                hello = await _receive_message(stream, decoder, ready)
                if _message_type(hello) != "hello" or ready:
                    raise _ProtocolError("the first frame must be a lone hello")
                refusal = self._refusal(hello)
                if refusal is not None:
                    await stream.send_all(encode_frame({"t": "err", "e": refusal, "msg": refusal}))
                    raise TransportError(refusal)
                await stream.send_all(encode_frame({"t": "welcome"}))
        except Exception as error:  # noqa: BLE001 - any failure here is this client's problem
            level = logging.WARNING if isinstance(error, FrameError) else logging.INFO
            log.log(
                level,
                "transport.inbound_refused peer=%s address=%s error=%s: %s",
                peer_id or "<anonymous>",
                address,
                type(error).__name__,
                error,
            )
            await trio.aclose_forcefully(stream)
            return
        if hello["c"] == "bulk":
            bulk = BulkStream(self, stream, decoder, ready, peer_id)
            await self._serve_bulk(
                bulk, self._bulk_handlers[hello["m"]], hello["m"], hello.get("p")
            )
        else:
            await self._run(_Connection(self, stream, decoder, peer_id))

    def _refusal(self, hello: dict[str, Any]) -> str | None:
        """Why a hello is refused (an error code for the dialer), or None to welcome it."""
        if hello.get("c") == "control":
            return None
        if hello.get("c") != "bulk":
            raise _ProtocolError(f"unknown connection class {hello.get('c')!r}")
        if not isinstance(hello.get("m"), str) or hello["m"] not in self._bulk_handlers:
            return "UnknownMethod"
        return None

    async def _serve_anonymous(self, stream: trio.SSLStream[trio.abc.Stream], address: str) -> None:
        """Give a caller without a certificate to the join handler, within bounds."""
        if self._anonymous_handler is None:
            raise TransportError("no certificate, and this node serves no joins")
        if self._anonymous_count >= _MAX_UNAUTHENTICATED:
            raise TransportError("too many unauthenticated connections")
        self._anonymous_count += 1
        try:
            with trio.move_on_after(_UNAUTHENTICATED_LIFETIME):
                await self._anonymous_handler(stream, address)
        except Exception:
            log.exception("transport.join_handler_failed address=%s", address)
        finally:
            self._anonymous_count -= 1
            await trio.aclose_forcefully(stream)

    async def _serve_bulk(
        self, bulk: BulkStream, handler: BulkHandler, method: str, header: Any
    ) -> None:
        try:
            try:
                await handler(bulk.peer_id, header, bulk)
                await bulk.send_eof()
            except TransportError:
                raise
            except Exception as error:
                log.warning(
                    "transport.bulk_handler_failed peer=%s method=%s error=%r",
                    bulk.peer_id,
                    method,
                    error,
                    exc_info=True,
                )
                await bulk.send_error("HandlerFailed", repr(error))
        except (TransportError, FrameError) as error:
            log.info(
                "transport.bulk_aborted peer=%s method=%s error=%s", bulk.peer_id, method, error
            )
        finally:
            await bulk.aclose()

    # -- outbound ----------------------------------------------------------------------------

    async def _dial(
        self, expected: str | None, address: tuple[str, int], hello: dict[str, Any]
    ) -> tuple[str, trio.SSLStream[trio.abc.Stream], FrameDecoder, deque[Any]]:
        """Connect, handshake, pin the peer's identity (to ``expected`` if given) and exchange
        hello/welcome. Returns the peer's node id with the connection."""
        if self._closing or self._nursery is None:
            raise PeerUnreachable("transport is not serving")
        if expected is not None and self.faults.blocks(self.node_id, expected):
            raise PeerUnreachable(f"{expected}: partitioned")
        host, port = address
        stream: trio.SSLStream[trio.abc.Stream] | None = None
        decoder = FrameDecoder(self.max_frame)
        ready: deque[Any] = deque()
        try:
            with trio.fail_after(self.connect_timeout):
                tcp_stream = await trio.open_tcp_stream(host, port)
                stream = trio.SSLStream(tcp_stream, self._client_context, server_hostname=host)
                await stream.do_handshake()
                try:
                    peer_id = self._peer_id_of(stream)
                except Exception as error:
                    raise IdentityMismatch(f"{host}:{port}: refused identity: {error}") from error
                if peer_id is None or (expected is not None and peer_id != expected):
                    raise IdentityMismatch(f"{host}:{port} is {peer_id!r}, expected {expected!r}")
                if self.faults.blocks(self.node_id, peer_id):
                    raise PeerUnreachable(f"{peer_id}: partitioned")
                await stream.send_all(encode_frame(hello))
                reply = await _receive_message(stream, decoder, ready)
            kind = _message_type(reply)
            if kind == "err":
                raise RemoteError(str(reply.get("e")), str(reply.get("msg")))
            if kind != "welcome":
                raise _ProtocolError(f"expected welcome, got {kind!r}")
        except BaseException as error:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            if isinstance(error, IdentityMismatch):
                log.warning("transport.identity_mismatch %s", error)
            if isinstance(error, trio.TooSlowError):
                raise PeerUnreachable(f"{host}:{port}: connect timed out") from error
            if isinstance(error, (OSError, trio.BrokenResourceError, FrameError)):
                raise PeerUnreachable(f"{host}:{port}: {error}") from error
            raise
        return peer_id, stream, decoder, ready

    async def _control(self, peer_id: str | None, address: tuple[str, int]) -> _Connection:
        """The live control connection to ``peer_id``, dialing once for concurrent callers
        (``None``: whoever answers at ``address``, as when dialing a seed)."""
        if peer_id is not None:
            connection = self._outbound.get(peer_id)
            if connection is not None and not connection.closed:
                return connection
        lock = self._dial_locks.setdefault(peer_id or f"{address[0]}:{address[1]}", trio.Lock())
        async with lock:
            if peer_id is not None:
                connection = self._outbound.get(peer_id)
                if connection is not None and not connection.closed:
                    return connection
            hello = {"t": "hello", "c": "control"}
            peer_id, stream, decoder, ready = await self._dial(peer_id, address, hello)
            existing = self._outbound.get(peer_id)
            if ready or (existing is not None and not existing.closed):
                await trio.aclose_forcefully(stream)
                if ready:
                    raise PeerUnreachable(f"{peer_id}: protocol error (frames before welcome)")
                return existing  # type: ignore[return-value]
            connection = _Connection(self, stream, decoder, peer_id)
            self._outbound[peer_id] = connection
            self._start(connection)
            return connection

    async def connect(self, address: tuple[str, int], peer_id: str | None = None) -> str:
        """Ensure a control connection to the node at ``address`` and return its node id.

        With ``peer_id`` the node is pinned as in ``request``; without it, the id is learnt
        from the certificate (for static seeds, whose ids are unknown until dialed). Raises
        like ``request``'s dialing does, bounded by ``connect_timeout``.
        """
        connection = await self._control(peer_id, address)
        assert connection.peer_id is not None
        return connection.peer_id

    async def request(
        self,
        peer_id: str,
        address: tuple[str, int],
        method: str,
        payload: Any,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Call ``method`` on ``peer_id`` (at ``address`` if a connection must be made).

        ``timeout`` (default ``request_timeout``) bounds the whole call, dialing included.
        Raises ``RequestTimeout``, ``PeerUnreachable`` (``IdentityMismatch`` if another node
        answered at the address), ``RemoteError``, or ``FrameError`` if ``payload`` cannot be
        framed.
        """
        timeout = self.request_timeout if timeout is None else timeout
        with trio.move_on_after(timeout):
            connection = await self._control(peer_id, address)
            return await connection.request(method, payload)
        raise RequestTimeout(f"{method} to {peer_id}: no answer within {timeout}s")

    async def notify(
        self, peer_id: str, address: tuple[str, int], method: str, payload: Any
    ) -> None:
        """Send a one-way message, best effort: it returns at once and reports no network
        failure (a missing connection is dialed in the background; the message is dropped if
        that fails or the connection's outbox is full). Raises ``FrameError`` only if
        ``payload`` cannot be framed."""
        frame = encode_frame({"t": "note", "m": method, "p": payload}, max_frame=self.max_frame)
        connection = self._outbound.get(peer_id)
        if connection is not None and not connection.closed:
            connection.send_nowait(frame)
        elif not self._closing and self._nursery is not None:
            self._nursery.start_soon(self._notify_after_dial, peer_id, address, frame)

    async def _notify_after_dial(
        self, peer_id: str, address: tuple[str, int], frame: bytes
    ) -> None:
        try:
            connection = await self._control(peer_id, address)
        except TransportError as error:
            log.debug("transport.notify_dropped peer=%s reason=%s", peer_id, error)
            return
        connection.send_nowait(frame)

    @asynccontextmanager
    async def open_bulk(
        self, peer_id: str, address: tuple[str, int], method: str, header: Any
    ) -> AsyncIterator[BulkStream]:
        """Open a bulk transfer to ``method`` on ``peer_id`` on a connection of its own::

            async with transport.open_bulk(peer, address, "blob.put", {"key": k}) as bulk:
                await bulk.send(data)
                await bulk.send_eof()
                async for chunk in bulk:   # the response body
                    ...

        Dialing is bounded by ``connect_timeout``; the body is not (see ``BulkStream``).
        Raises ``PeerUnreachable``/``IdentityMismatch``, or ``RemoteError`` if the peer
        refuses (e.g. ``UnknownMethod``).
        """
        hello = {"t": "hello", "c": "bulk", "m": method, "p": header}
        _, stream, decoder, ready = await self._dial(peer_id, address, hello)
        bulk = BulkStream(self, stream, decoder, ready, peer_id)
        self._bulk_streams.add(bulk)
        try:
            yield bulk
        finally:
            with trio.CancelScope(shield=True):
                await bulk.aclose()
