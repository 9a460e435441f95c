"""Length-prefixed msgpack frames: the unit of everything nodes say to each other.

Theory of operation
-------------------
A frame is a 4-byte big-endian unsigned length followed by exactly that many bytes of one
msgpack object. The codec is pure (bytes in, objects out) so the transport, the join exchange
and the tests share it without any I/O.

Why a length prefix rather than msgpack's own streaming ``Unpacker``: a peer that announces a
huge ``bin`` would make the ``Unpacker`` wait and buffer up to its ``max_buffer_size`` before it
could notice (research A6, pitfall 2). With a prefix, the decoder reads four bytes, compares the
announced length with ``max_frame`` and raises ``FrameError`` *before* buffering a single byte
of an oversized body. A body is then decoded in one ``unpackb`` call, which also rejects a frame
holding more (or less) than one object.

What may travel in a frame (the same on both ends, chosen once here):

- ``None``, ``bool``, ``float``, ``str`` (UTF-8, ``raw=False``), ``bytes`` (``use_bin_type=True``
  keeps bytes and str apart), ``list`` (tuples are sent as lists and always come back as
  lists: ``use_list=True``), ``dict`` with ``str`` or ``bytes`` keys (``strict_map_key=True``).
- ``int`` in ``[-2**63, 2**64)``: msgpack cannot carry more. Pack bigger counters as bytes.
- No extension types (``max_ext_len=0``): nothing in the protocol needs one, so a frame that
  carries one is treated as garbage rather than handed to the application as an ``ExtType``.

Every string, bytes, array and map length is capped at the frame's own length, so a small
frame cannot announce a huge container, and deep nesting stops at msgpack's stack limit. Any
decode failure is a ``FrameError``: the peer broke the protocol, and the only safe reaction is
to close that one connection. After a ``FrameError`` a ``FrameDecoder`` stays failed.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack  # type: ignore[import-untyped]

__all__ = ["HEADER_SIZE", "MAX_FRAME", "FrameDecoder", "FrameError", "encode_frame"]

MAX_FRAME = 8 * 1024 * 1024
"""Default bound on a frame body, in bytes. Bulk data travels as many frames, never one."""

_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size


class FrameError(Exception):
    """A frame that cannot be sent or was received malformed, oversized or undecodable."""


def encode_frame(obj: Any, *, max_frame: int = MAX_FRAME) -> bytes:
    """Return ``obj`` as one frame (header + body).

    Raises ``FrameError`` if ``obj`` holds a value a frame cannot carry (see the module
    docstring) or if its body would exceed ``max_frame``: refusing here means a caller's bug
    fails the one call that made it instead of the receiving peer closing the connection.
    """
    try:
        body: bytes = msgpack.packb(obj, use_bin_type=True, datetime=False)
    except (TypeError, ValueError, OverflowError) as error:
        raise FrameError(f"cannot encode frame: {error}") from error
    if len(body) > max_frame:
        raise FrameError(f"frame body of {len(body)} bytes exceeds max_frame={max_frame}")
    return _HEADER.pack(len(body)) + body


def _decode_body(body: memoryview) -> Any:
    limit = len(body)
    try:
        return msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            timestamp=0,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=limit,
            max_map_len=limit,
            max_ext_len=0,
        )
    except Exception as error:  # msgpack raises ValueError, TypeError, StackError, ...
        raise FrameError(f"undecodable frame body: {type(error).__name__}: {error}") from error


class FrameDecoder:
    """Incremental frame decoder: feed it bytes as they arrive, get whole objects back.

    It buffers at most one partial frame (``HEADER_SIZE + max_frame`` bytes) plus whatever the
    last ``feed`` delivered, whatever the peer announces.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        if not 0 < max_frame < 2**32:
            raise ValueError("max_frame must fit in the u32 length prefix")
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._failed: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Append ``data``; return every frame it completed, in order.

        Raises ``FrameError`` as soon as a header announces more than ``max_frame`` bytes (or
        zero), or a complete body does not decode to exactly one object; frames completed
        earlier in the same call are dropped with it, since the connection is going away.
        """
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        buffer = self._buffer
        frames: list[Any] = []
        offset = 0
        try:
            while len(buffer) - offset >= HEADER_SIZE:
                (length,) = _HEADER.unpack_from(buffer, offset)
                if length == 0 or length > self.max_frame:
                    raise FrameError(f"frame length {length} outside 1..max_frame={self.max_frame}")
                end = offset + HEADER_SIZE + length
                if len(buffer) < end:
                    break
                frames.append(_decode_body(memoryview(buffer)[offset + HEADER_SIZE : end]))
                offset = end
        except FrameError as error:
            self._failed = error
            self._buffer = bytearray()
            raise
        del buffer[:offset]
        return frames
