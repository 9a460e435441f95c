"""Structured logs: one line per event, in logfmt.

    ts=2026-11-24T10:15:00.123Z level=info event=agent.started node=3f2a endpoint=http://...

Code logs *events* through :func:`get_logger`: ``log.info("agent.started", node=...)``.
The event name is a stable dotted identifier an operator can grep for; the fields are
key=value pairs. Records from other libraries (hypercorn, quart, trio) come out in the same
shape as ``event=log logger=NAME msg="..."``.

Secrets never reach the output: callers do not log them, and as a second line of defence any
field whose name mentions a secret, password, token, signature or authorization is written as
``[redacted]``. A traceback is folded into the one line (``exc="..."`` with ``\\n`` escapes).

:func:`logging_to` formats on the calling thread and writes from a background thread, so a
slow log reader (a full pipe, journald) never blocks the trio loop. The writer collects lines
for up to :data:`WRITE_DELAY` before one ``write``: the access log has a line per request, and
waking a thread and making a syscall per line cost more than the line itself.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

_FIELDS = "zn_fields"
#: How long the writer thread gathers lines before writing them out together.
WRITE_DELAY = 0.02
_SECRET_WORDS = ("secret", "password", "token", "signature", "authorization")
_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


class EventLogger:
    """A stdlib logger that takes an event name and fields instead of a message."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log at error level with the exception being handled."""
        self._log(logging.ERROR, event, fields, exc_info=True)

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={_FIELDS: fields}, exc_info=exc_info, stacklevel=3)


def get_logger(name: str) -> EventLogger:
    return EventLogger(logging.getLogger(name))


class LogfmtFormatter(logging.Formatter):
    """Formats any record as one logfmt line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        pairs: list[tuple[str, Any]] = [
            ("ts", _timestamp(record.created)),
            ("level", _LEVEL_NAMES.get(record.levelno, record.levelname.lower())),
        ]
        fields = getattr(record, _FIELDS, None)
        if fields is not None:
            pairs.append(("event", record.msg))
            pairs.extend(fields.items())
        else:
            pairs += [("event", "log"), ("logger", record.name), ("msg", record.getMessage())]
        if record.exc_info:
            pairs.append(("exc", "".join(traceback.format_exception(*record.exc_info)).rstrip()))
        return " ".join(f"{key}={_value(key, value)}" for key, value in pairs)


def _timestamp(created: float) -> str:
    return f"{_utc_second(int(created))}.{int(created % 1 * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


@functools.lru_cache(maxsize=1024)
def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _value(key: str, value: Any) -> str:
    if _is_secret(key):
        return "[redacted]"
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return f'"{escaped}"'


@contextmanager
def logging_to(stream: IO[str], level: str = "info") -> Iterator[None]:
    """Route every log record (root logger) to ``stream`` in logfmt, until the block exits.

    Formatting happens where the record is made; writing happens on a writer thread, which
    is drained and stopped on exit, so no line logged before the exit is lost.
    """
    writer = _LineWriter(stream)
    producer = _LineHandler(writer.lines)
    producer.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [producer]
    root.setLevel(level.upper())
    writer.start()
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        writer.stop()


class _LineHandler(logging.Handler):
    """Formats each record on the caller's thread and queues the finished line."""

    def __init__(self, lines: queue.SimpleQueue[str | None]) -> None:
        super().__init__()
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.put(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


class _LineWriter:
    """The thread that writes queued lines to the stream, a batch per :data:`WRITE_DELAY`."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="zeronode-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write everything queued so far, then end the thread."""
        self.lines.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self.lines.get()
            if first is not None:
                time.sleep(WRITE_DELAY)
            batch = [first]
            while batch[-1] is not None:
                try:
                    batch.append(self.lines.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is None
            text = "".join(line + "\n" for line in batch if line is not None)
            if text:
                # A broken log stream (a closed pipe) must not end the writer, nor the node.
                with contextlib.suppress(Exception):
                    self._stream.write(text)
                    self._stream.flush()
            if done:
                return
