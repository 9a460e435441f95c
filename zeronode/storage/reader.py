"""Reading a blob: an async iterator over a byte range, 1 MiB per worker-thread hop.

GET bodies are served from this iterator. 8 KiB reads per thread hop cap near 35 MB/s
(research A2); 1 MiB blocks read 5-9 GiB/s from the page cache and 1.6-2.4 GiB/s from disk here
(``bench/blob_throughput.py``), well above what HTTP then delivers. The file is opened on the
first iteration, so creating a reader is free and cannot fail on I/O. A range of one block or
less (a small object) is opened, read and closed in a single worker call: one thread hop per
small GET instead of two.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import trio

from zeronode.aws.errors import AWSError, internal_error
from zeronode.logs import get_logger

if TYPE_CHECKING:
    from zeronode.storage.blobs import BlobRef, BlobStore

_log = get_logger(__name__)
_T = TypeVar("_T")

#: Bytes per thread hop, both ways (reads here, writes in ``blobs.py``). 8 KiB hops cap near
#: 35 MB/s (research A2); 1 MiB keeps the hop overhead small while bounding what one transfer
#: holds in memory.
BLOCK_SIZE = 1 << 20


class BytesUnavailable(AWSError):
    """The bytes a lookup named cannot be read (now). The client is told this error unless
    the caller knows better: a GET that raced an overwrite freeing them looks the key up again.
    """


class BlobMissing(BytesUnavailable):
    """The blob was not on its disk when the reader opened it (a 500 as such)."""

    def __init__(self) -> None:
        super().__init__(
            "InternalError", "The bytes of this object are missing on its disk.", 500,
            sender_fault=False,
        )


class BlobReader:
    """An async iterator over a byte range of a blob, 1 MiB per worker-thread hop.

    A class rather than an async generator so that closing it is deterministic and cheap
    (``aclose``, ``async with``, or exhaustion) and the store can tell its range up front.
    """

    def __init__(self, store: BlobStore, ref: BlobRef, start: int, end: int) -> None:
        self.ref = ref
        self.start = start
        self.end = end
        self._store = store
        self._position = start
        self._fd: int | None = None
        self._done = start == end

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> bytes:
        if self._done:
            self._close()
            raise StopAsyncIteration
        count = min(BLOCK_SIZE, self.end - self._position)
        if self._fd is None and count == self.end - self._position:
            data = await self._open_and(_read_once, count, self._position)
        else:
            if self._fd is None:
                self._fd = await self._open_and(_open_for_reading)
            data = await trio.to_thread.run_sync(
                os.pread, self._fd, count, self._position, limiter=self._store._limiter
            )
        if not data:
            self._close()
            self._done = True
            raise internal_error("The bytes of this object are damaged on its disk.")
        self._position += len(data)
        if self._position >= self.end:
            self._done = True
            self._close()
        return data

    async def _open_and(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(path, size, *args)`` in a worker thread; a missing or resized blob is an error."""
        store = self._store
        disk = store._disk_of(self.ref)
        try:
            return await trio.to_thread.run_sync(
                fn, disk.blob_path(self.ref.blob), self.ref.size, *args, limiter=store._limiter
            )
        except FileNotFoundError:
            _log.warning("storage.blob_missing", disk=disk.id, blob=self.ref.blob)
            self._done = True
            raise BlobMissing() from None
        except _SizeMismatch as error:
            _log.error(
                "storage.blob_size_mismatch",
                disk=disk.id,
                blob=self.ref.blob,
                expected=self.ref.size,
                actual=error.args[0],
            )
            self._done = True
            raise internal_error("The bytes of this object are damaged on its disk.") from None

    async def aclose(self) -> None:
        self._done = True
        self._close()

    def _close(self) -> None:
        # close(2) of a read-only regular file does no I/O, so it may run on the loop's thread
        # (and from __del__, for a reader dropped without aclose).
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self._close()


class _SizeMismatch(Exception):
    pass


def _open_for_reading(path: Path, expected_size: int) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size != expected_size:
            raise _SizeMismatch(size)
        # Doubles the kernel's read-ahead window: objects are read front to back.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_once(path: Path, expected_size: int, count: int, offset: int) -> bytes:
    """Open, read ``count`` bytes at ``offset`` and close: a whole small range in one hop."""
    fd = _open_for_reading(path, expected_size)
    try:
        return os.pread(fd, count, offset)
    finally:
        os.close(fd)
