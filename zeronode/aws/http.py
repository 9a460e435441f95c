"""The seam between the HTTP server and the AWS wire layer.

The ASGI shell turns a request into an :class:`HttpRequest`; codecs, the SigV4 verifier and
services work only on these values, so they test without sockets. Bodies are async byte
iterators and are never read whole unless an operation's input is small by nature (JSON,
query forms, S3 XML configuration documents), and then only up to a stated bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


class Headers:
    """Case-insensitive, multi-valued HTTP headers that keep the wire order.

    Names are stored lower-cased; values as received (str, latin-1 decoded as ASGI gives them).
    Immutable once built, so a name -> first value index answers :meth:`get` without a scan:
    a request's parsing asks for dozens of headers (every header-bound member of the operation).
    """

    __slots__ = ("_first", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(k.lower(), v) for k, v in items]
        self._first: dict[str, str] = {}
        for k, v in self._items:
            self._first.setdefault(k, v)

    @classmethod
    def from_asgi(cls, raw: Iterable[tuple[bytes, bytes]]) -> "Headers":
        return cls((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


@dataclass
class HttpRequest:
    """One HTTP request as the wire layer sees it.

    ``raw_path`` and ``query_string`` are exactly the bytes the client sent (percent-encoded):
    SigV4 is computed over them. ``path`` is the percent-decoded path (UTF-8), which is what
    S3 keys are made of; it is never used as a file path.
    """

    method: str
    raw_path: str
    path: str
    query_string: str
    headers: Headers
    body: AsyncIterator[bytes] = field(default_factory=_no_body)
    client: tuple[str, int] | None = None
    scheme: str = "http"

    @property
    def query(self) -> list[tuple[str, str]]:
        """Decoded query parameters in order; ``?uploads`` gives ``("uploads", "")``."""
        return parse_qsl(self.query_string, keep_blank_values=True)

    @property
    def host(self) -> str:
        return self.headers.get("host", "") or ""


async def read_body(body: AsyncIterator[bytes], limit: int) -> bytes:
    """Read a small body whole, refusing more than ``limit`` bytes.

    Raises :class:`BodyTooLarge` as soon as the limit is passed, without reading the rest, so
    an oversized request costs at most ``limit`` bytes of memory.
    """
    parts: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


@dataclass
class HttpResponse:
    """A response: ``body`` is bytes, or an async iterator of bytes for streamed bodies."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncIterator[bytes] = b""
