"""Serve one ASGI app with hypercorn's trio worker, with deliberate limits and a clean stop.

- ``read_timeout`` (60 s): a client that stops sending mid-request (slow-loris) is dropped;
  hypercorn's default is to wait forever.
- ``keep_alive_timeout`` (20 s, like S3's idle timeout): idle connections are closed; SDK
  connection pools reconnect transparently.
- Graceful shutdown: when ``shutdown_trigger`` returns, the listening socket closes, idle
  keep-alive connections are dropped, and requests in flight get ``settings.shutdown_grace``
  seconds to finish before they are cancelled; then the apps' lifespan shutdown runs.
- Access and error logs go through :mod:`zeronode.logs` (one ``http.request`` event per
  request; the query string is logged with presigned-URL signatures and tokens redacted).
- No ``Server: hypercorn`` header: the AWS layer answers with AWS's own headers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import hypercorn.trio.tcp_server
import trio
from hypercorn.config import Config
from hypercorn.logging import Logger as HypercornLogger
from hypercorn.trio import serve as hypercorn_serve

from zeronode.config import Settings
from zeronode.logs import get_logger
from zeronode.node import ASGIApp

READ_TIMEOUT = 60
KEEP_ALIVE_TIMEOUT = 20
#: Bytes asked of the socket per read. hypercorn's own 64 KiB (``MAX_RECV``, not a Config
#: option) makes an upload cost one trip through h11, hypercorn's stream, the ASGI queue and the
#: app per 64 KiB, ~100 µs of Python each: a quarter of the agent's CPU per uploaded MiB.
#: 256 KiB reads took a 512 MiB raw-client upload from 294 to 350-390 MiB/s (4.4 -> 3.5-3.9 ms
#: of server CPU per MiB) on 2 cores. hypercorn queues up to ``max_app_queue_size`` (10) such
#: messages per request, so an upload buffers at most 2.5 MiB there: peak RSS with ten 8 MiB
#: parts in flight stayed at 110-129 MiB (with :mod:`zeronode.memory`'s arena cap).
RECV_SIZE = 256 << 10

# Query parameters that make a presigned URL a bearer credential.
_REDACTED_PARAMS = {"x-amz-signature", "x-amz-security-token", "signature"}

_access = get_logger("zeronode.http.access")


class ListenError(Exception):
    """The server could not listen on the configured address (in use, not permitted, ...)."""


class AccessLogger(HypercornLogger):
    """hypercorn's logger, with the access log as logfmt events.

    A request answered in full is one ``http.request`` event at info level. hypercorn also
    reports a connection that closed before it saw the response end; that is
    ``http.request_closed`` at debug level, because hypercorn reports it as well when a client
    closes the connection right after reading a complete response (a race in its HTTP/1.1
    stream), which is followed by the ordinary ``http.request`` line.
    """

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        client = request.get("client")
        fields = {
            "method": request.get("method", "GET"),
            "path": request.get("path", ""),
            "query": redact_query(request.get("query_string", b"").decode("latin-1")),
            "status": response["status"] if response is not None else "-",
            "duration_ms": round(request_time * 1000, 2),
            "client": f"{client[0]}:{client[1]}" if client and len(client) == 2 else "-",
        }
        if response is None:
            _access.debug("http.request_closed", **fields)
        else:
            _access.info("http.request", **fields)


def redact_query(query: str) -> str:
    """``query`` with the values of signature/token parameters replaced by ``REDACTED``."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in _REDACTED_PARAMS for name, _ in pairs):
        return query
    return urlencode([(n, "REDACTED" if n.lower() in _REDACTED_PARAMS else v) for n, v in pairs])


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.read_timeout = READ_TIMEOUT
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    config.graceful_timeout = settings.shutdown_grace
    config.include_server_header = False
    config.logger_class = AccessLogger
    config.accesslog = logging.getLogger("zeronode.http.access")
    config.errorlog = logging.getLogger("hypercorn.error")  # propagates to the logfmt root
    config.loglevel = settings.log_level.upper()
    return config


class _StartedReport:
    """Passes hypercorn's "listening on ..." report on, and remembers that it came."""

    def __init__(self, task_status: trio.TaskStatus[list[str]]) -> None:
        self.task_status = task_status
        self.reported = False

    def started(self, binds: list[str]) -> None:
        self.reported = True
        self.task_status.started(binds)


async def serve(
    app: ASGIApp,
    settings: Settings,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns, then shut down gracefully.

    Use with ``nursery.start``: it reports the bound URLs once listening. Raises
    :class:`ListenError` if the address cannot be bound.
    """
    report = _StartedReport(task_status)
    config = hypercorn_config(settings)
    hypercorn.trio.tcp_server.MAX_RECV = RECV_SIZE  # read at module level on every receive
    try:
        await hypercorn_serve(
            app,
            config,
            shutdown_trigger=shutdown_trigger,
            task_status=report,  # type: ignore[arg-type]  # duck-typed: only .started() is used
        )
    except (OSError, BaseExceptionGroup) as error:
        # hypercorn binds inside its own nurseries: an OSError before "listening" is the bind.
        bind_error = _first_os_error(error)
        if report.reported or bind_error is None:
            raise
        reason = bind_error.strerror or str(bind_error)
        raise ListenError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from None


def _first_os_error(error: BaseException) -> OSError | None:
    if isinstance(error, OSError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _first_os_error(inner)
            if found is not None:
                return found
    return None
