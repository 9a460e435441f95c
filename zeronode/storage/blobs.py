"""The blob store: object bytes on the node's disks, written durably, read in big blocks.

Theory of operation
-------------------
A blob is an immutable file named by a random 128-bit id, never by anything a client chose (S3
keys are not paths). The journal stores a :class:`BlobRef` — disk id, blob id, size — in the
object's metadata event; the bytes live here. Ordering makes crashes harmless:

1. :meth:`BlobStore.write` streams into ``<disk>/tmp/<blob>``, hashing as it goes, then fsyncs
   the file, renames it to ``<disk>/blobs/<aa>/<blob>`` and fsyncs that directory.
2. Only then does the caller append the journal event that references it.

A crash during 1 leaves a temp file, removed when the store next opens. A crash between 1 and 2
leaves a blob nobody references, removed by :meth:`BlobStore.sweep`. Nothing partial is ever in
``blobs/``, and no acknowledged object loses its bytes.

A copy of another node's blob (``replicas.py``) keeps the blob's id: :meth:`BlobStore.write`
with ``blob_id`` stores it under that id (on the disk that already holds a file of that name,
if any, so a repeated copy replaces an identical file instead of adding a second one), and
:meth:`BlobStore.locate` finds which local disk holds an id whatever disk the journal's ref
names. :meth:`BlobStore.list_blobs` is what garbage collection of unreferenced copies walks.

Deleting a blob an object version dropped is :meth:`BlobStore.free`, not :meth:`BlobStore.delete`:
it waits for the reads that may want the bytes (``leases.py``) — a GET that looked the key up
just before the overwrite, a multipart GET still in its first parts. A free pending at a crash
or stop leaves an unreferenced blob, which the start-up sweep removes.

The event loop never touches a file: every file system call runs in a worker thread under one
``CapacityLimiter``, moving about 1 MiB per hop (see ``sink.py`` for the write pipeline and the
measurements behind it). A write holds at most a few MiB of the upload in memory whatever its
size, because the reading side waits whenever the disk side is a block or two behind.

A body announced at one block or less (most objects: 4 KiB PUTs, empty keys) skips the
pipeline: it is read whole on the loop, then created, hashed, written, fsync'd, renamed and
its directory fsync'd in ONE worker call. A thread hop costs ~75 µs of CPU and the pipeline
takes four (open, two lanes, finish) plus a nursery and two channels; for a small body that
overhead, not the disk, was most of the server's CPU per PUT. A body that turns out short or
long is refused before any file exists.

Errors are AWS values (:class:`~zeronode.aws.errors.AWSError`) so the S3 layer can render them
as they are: ``IncompleteBody`` and ``EntityTooLarge`` for bad uploads; on a full disk
``InsufficientStorage`` with HTTP 507 — AWS itself never reports a full disk, and 507 is what
S3-compatible stores answer (MinIO: ``XMinioStorageFull``, 507); SDKs do not retry a 507,
which is right for a condition that retrying does not fix. Any other I/O failure, or a ref
naming a disk this node does not have, is ``InternalError`` (500) with a log line saying why.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from zeronode.aws.checksums import FLEXIBLE_ALGORITHMS
from zeronode.aws.errors import AWSError, internal_error
from zeronode.logs import get_logger
from zeronode.storage.leases import ReadHolds
from zeronode.storage.disks import (
    Disk,
    DiskInfo,
    SpaceFunction,
    StorageError,
    open_disk,
    statvfs_space,
)
from zeronode.storage.reader import BLOCK_SIZE, BlobReader
from zeronode.storage.sink import BlobSink, Block

_log = get_logger(__name__)
_T = TypeVar("_T")

#: Incoming chunks smaller than this are copied together before they are queued, so a block
#: never has more pieces than ``writev`` accepts and the hashers see sizeable buffers.
_SMALL_CHUNK = 16 << 10
_SMALL_FLUSH = 64 << 10
#: Blocks queued per lane beyond the one in its thread.
_LANE_QUEUE = 1
#: Blobs whose mtime falls within this of the store's opening are never swept: file timestamps
#: are coarse (a jiffy), and such a blob may belong to a write of this very process.
_SWEEP_MARGIN = 2.0

_BLOB_ID_LENGTH = 32
_HEX = frozenset("0123456789abcdef")
#: Bytes hashed per worker-thread hop by :meth:`BlobStore.sha256`.
_HASH_BLOCK = 8 << 20


def is_blob_id(value: object) -> bool:
    """Whether ``value`` is a well-formed blob id (32 lowercase hex digits).

    Ids arriving from other nodes are checked with this before they name any path.
    """
    return (
        isinstance(value, str) and len(value) == _BLOB_ID_LENGTH and _HEX.issuperset(value)
    )


@dataclass(frozen=True)
class BlobRef:
    """Where an object's bytes are: stored in journal payloads, so it must stay msgpack-plain."""

    disk: str
    blob: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"disk": self.disk, "blob": self.blob, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlobRef:
        return cls(disk=str(d["disk"]), blob=str(d["blob"]), size=int(d["size"]))


@dataclass(frozen=True)
class StoredBlob:
    """A finished blob found on a local disk (:meth:`BlobStore.list_blobs`)."""

    ref: BlobRef
    mtime: float  # Unix seconds: when its bytes were last written


@dataclass(frozen=True)
class WrittenBlob:
    """A durable blob and the digests computed while writing it (no second pass needed).

    ``md5`` is the raw digest (a single-part ETag is its hex); ``checksums`` maps each requested
    flexible algorithm (``"CRC32"``...) to its base64 value as S3 returns it.
    """

    ref: BlobRef
    md5: bytes
    checksums: dict[str, str]


def insufficient_storage() -> AWSError:
    return AWSError(
        "InsufficientStorage",
        "The node does not have enough free disk space to store this object.",
        507,
        sender_fault=False,
    )


def incomplete_body() -> AWSError:
    return AWSError(
        "IncompleteBody",
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        400,
    )


def entity_too_large() -> AWSError:
    return AWSError(
        "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400
    )


class BlobStore:
    """Blobs on a fixed set of opened disks. Create with :func:`open_blob_store`."""

    def __init__(
        self,
        disks: Sequence[Disk],
        *,
        space: SpaceFunction = statvfs_space,
        threads: int = 8,
        drop_cache: bool = True,
    ) -> None:
        self._disks: dict[str, Disk] = {disk.id: disk for disk in disks}
        self._order = list(disks)
        self._space = space
        self._limiter = trio.CapacityLimiter(threads)
        self._drop_cache = drop_cache
        self._opened_at = time.time()
        self._holds: ReadHolds[BlobRef] = ReadHolds()

    @property
    def disks(self) -> list[DiskInfo]:
        """Each disk's id, current path and space (``statvfs``: a cheap, non-blocking call)."""
        infos = []
        for disk in self._order:
            total, free = self._space(disk.path)
            infos.append(DiskInfo(disk.id, disk.path, total, free))
        return infos

    # -- writing --

    async def write(
        self,
        stream: AsyncIterator[bytes],
        *,
        checksums: Sequence[str] = (),
        expected_size: int | None = None,
        max_size: int | None = None,
        expected_sha256: str | None = None,
        blob_id: str | None = None,
    ) -> WrittenBlob:
        """Store everything ``stream`` yields as a new blob; return once it is durable.

        The blob goes to the disk with the most free space. ``blob_id`` stores it under that
        id instead of a new random one (a copy of another node's blob; ValueError if the id is
        malformed): if a disk already holds a blob of that id, the new file replaces it there
        once complete, so copying an identical blob again is harmless. ``checksums`` names flexible
        algorithms to compute besides MD5 (ValueError for others). Chunks may be any
        bytes-like object; non-``bytes`` ones are copied, since the caller may reuse them.

        Raises ``EntityTooLarge`` as soon as more than ``max_size`` bytes arrived (at once if
        ``expected_size`` already says so), ``IncompleteBody`` if the stream's length is not
        ``expected_size``, ``InsufficientStorage`` if the disk fills (or ``expected_size``
        cannot fit), ``XAmzContentSHA256Mismatch`` if ``expected_sha256`` (hex: the SHA-256 a
        client signed) is given and is not the body's — hashed in the disk lane, compared
        before the fsync and rename. If anything fails — those, an exception from ``stream``,
        cancellation — the temp file is removed and the exception propagates: no partial blob
        is ever visible.
        """
        algorithms = _flexible(checksums)
        if (
            expected_size is not None
            and max_size is not None
            and expected_size > max_size
        ):
            raise entity_too_large()
        if blob_id is not None and not is_blob_id(blob_id):
            raise ValueError(f"{blob_id!r} is not a blob id")
        blob = secrets.token_hex(16) if blob_id is None else blob_id
        # A named blob may be written twice at once (two copies racing): unique temp names.
        tmp_name = blob if blob_id is None else f"{blob}.{secrets.token_hex(4)}"
        if expected_size is not None and expected_size <= BLOCK_SIZE:
            # statvfs on the loop, as ``disks`` does: a full disk refuses before the body is read.
            disk = self._disk_for(blob_id, expected_size)
            data = await _read_exactly(stream, expected_size, max_size)
            md5, digests = await trio.to_thread.run_sync(
                self._write_whole, disk, blob, tmp_name, algorithms, expected_sha256, data,
                limiter=self._limiter,
            )
            return WrittenBlob(BlobRef(disk.id, blob, len(data)), md5, digests)
        disk, sink = await trio.to_thread.run_sync(
            self._open_sink, blob, blob_id, tmp_name, algorithms, expected_size,
            expected_sha256, limiter=self._limiter,
        )
        try:
            size = await self._fill(disk, sink, stream, expected_size, max_size)
            if expected_size is not None and size != expected_size:
                raise incomplete_body()
            md5, digests = await trio.to_thread.run_sync(
                self._on_disk, disk, "write", sink.finish, limiter=self._limiter
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(sink.abort, limiter=self._limiter)
            raise
        return WrittenBlob(BlobRef(disk.id, blob, size), md5, digests)

    def _open_sink(
        self,
        blob: str,
        blob_id: str | None,
        tmp_name: str,
        algorithms: Sequence[str],
        expected_size: int | None,
        expected_sha256: str | None,
    ) -> tuple[Disk, BlobSink]:
        """Worker thread: pick the disk and create the temp file there."""
        disk = self._disk_for(blob_id, expected_size)
        return disk, self._create_sink(disk, blob, tmp_name, algorithms, expected_sha256)

    def _disk_for(self, blob_id: str | None, expected_size: int | None) -> Disk:
        """The disk already holding a blob named ``blob_id``, else the roomiest one."""
        if blob_id is not None:
            for disk in self._order:
                if os.path.exists(disk.blob_path(blob_id)):
                    return disk
        return self._roomiest_disk(expected_size)

    def _roomiest_disk(self, expected_size: int | None) -> Disk:
        """The disk with the most free space (``statvfs``), refusing what cannot fit."""
        free_by_disk = [(self._space(disk.path)[1], disk) for disk in self._order]
        free, disk = max(free_by_disk, key=lambda pair: pair[0])
        if expected_size is not None and expected_size > free:
            _log.warning(
                "storage.disk_full",
                disk=disk.id,
                free_bytes=free,
                upload_bytes=expected_size,
            )
            raise insufficient_storage()
        return disk

    def _create_sink(
        self,
        disk: Disk,
        blob: str,
        tmp_name: str,
        algorithms: Sequence[str],
        expected_sha256: str | None,
    ) -> BlobSink:
        try:
            return BlobSink(
                disk.tmp / tmp_name,
                disk.blob_path(blob),
                algorithms,
                expected_sha256=expected_sha256,
                drop_cache=self._drop_cache,
            )
        except OSError as error:
            raise self._io_error(error, "create", disk) from error

    def _write_whole(
        self,
        disk: Disk,
        blob: str,
        tmp_name: str,
        algorithms: Sequence[str],
        expected_sha256: str | None,
        data: bytes,
    ) -> tuple[bytes, dict[str, str]]:
        """Worker thread: a complete small body made a durable blob (see the module doc)."""
        sink = self._create_sink(disk, blob, tmp_name, algorithms, expected_sha256)
        try:
            return self._on_disk(disk, "write", _write_and_finish, sink, [data])
        except BaseException:
            sink.abort()
            raise

    async def _fill(
        self,
        disk: Disk,
        sink: BlobSink,
        stream: AsyncIterator[bytes],
        expected_size: int | None,
        max_size: int | None,
    ) -> int:
        """Pump ``stream`` into the sink's two lanes; return the number of bytes."""
        size = 0
        try:
            async with trio.open_nursery() as nursery:
                senders: list[trio.MemorySendChannel[Block]] = []
                for lane in (sink.write_block, sink.md5_block):
                    send, receive = trio.open_memory_channel[Block](_LANE_QUEUE)
                    senders.append(send)
                    nursery.start_soon(self._run_lane, disk, lane, receive)
                async with senders[0], senders[1]:
                    pending: list[bytes] = []
                    pending_size = 0
                    small = bytearray()
                    async for chunk in stream:
                        if type(chunk) is not bytes:
                            chunk = bytes(chunk)
                        size += len(chunk)
                        if max_size is not None and size > max_size:
                            raise entity_too_large()
                        if expected_size is not None and size > expected_size:
                            raise incomplete_body()
                        if len(chunk) < _SMALL_CHUNK:
                            small += chunk
                            if len(small) >= _SMALL_FLUSH:
                                pending.append(bytes(small))
                                small.clear()
                        else:
                            if small:
                                pending.append(bytes(small))
                                small.clear()
                            pending.append(chunk)
                        pending_size += len(chunk)
                        if pending_size >= BLOCK_SIZE:
                            if small:
                                pending.append(bytes(small))
                                small.clear()
                            for send in senders:
                                await send.send(pending)
                            pending, pending_size = [], 0
                    if small:
                        pending.append(bytes(small))
                    if pending:
                        for send in senders:
                            await send.send(pending)
        except BaseExceptionGroup as group:
            raise _sole_error(group) from None
        return size

    async def _run_lane(
        self,
        disk: Disk,
        lane: Callable[[Block], None],
        blocks: trio.MemoryReceiveChannel[Block],
    ) -> None:
        async with blocks:
            async for block in blocks:
                await trio.to_thread.run_sync(
                    self._on_disk, disk, "write", lane, block, limiter=self._limiter
                )

    def _on_disk(
        self, disk: Disk, action: str, fn: Callable[..., _T], *args: Any
    ) -> _T:
        """Worker thread: run ``fn``, turning a disk's OSError into the AWS error to answer.

        Done here rather than around :meth:`write` as a whole so that an OSError raised by the
        caller's stream (a dropped connection) is never mistaken for a disk failure.
        """
        try:
            return fn(*args)
        except OSError as error:
            raise self._io_error(error, action, disk) from error

    async def copy(
        self,
        ref: BlobRef,
        start: int = 0,
        end: int | None = None,
        *,
        checksums: Sequence[str] = (),
    ) -> WrittenBlob:
        """Copy bytes ``[start, end)`` of ``ref`` into a new blob (CopyObject, UploadPartCopy).

        Same durability and error rules as :meth:`write`; the new blob is hashed as it is
        written, so its digests need no extra pass.
        """
        self._disk_of(ref)
        reader = self.read(ref, start, end)
        try:
            return await self.write(
                reader, checksums=checksums, expected_size=reader.end - reader.start
            )
        finally:
            await reader.aclose()

    # -- reading and lookups --

    def read(self, ref: BlobRef, start: int = 0, end: int | None = None) -> BlobReader:
        """Bytes ``[start, end)`` of the blob (``end`` defaults to its size) in 1 MiB blocks.

        ``0 <= start <= end <= ref.size`` is the caller's to ensure (ValueError otherwise; S3
        range parsing belongs to the S3 layer). The file is opened on the first iteration and
        closed when the iterator is exhausted, ``aclose``-d or garbage collected.
        """
        end = ref.size if end is None else end
        if not 0 <= start <= end <= ref.size:
            raise ValueError(
                f"range [{start}, {end}) is outside a blob of {ref.size} bytes"
            )
        return BlobReader(self, ref, start, end)

    def has(self, ref: BlobRef) -> bool:
        """Whether this node holds the blob (on a disk it has, with the expected size).

        One ``stat`` on the loop's thread: a metadata lookup, not data I/O.
        """
        disk = self._disks.get(ref.disk)
        if disk is None:
            return False
        try:
            return os.stat(disk.blob_path(ref.blob)).st_size == ref.size
        except OSError:
            return False

    def locate(self, blob_id: str, size: int | None = None) -> BlobRef | None:
        """Which local disk holds blob ``blob_id`` (of ``size`` bytes, if given), or None.

        A copy of another node's blob sits on whichever disk had room here, not the disk its
        segment names, hence a lookup by id. A malformed id is simply not found. One ``stat``
        per disk on the loop's thread, as :meth:`has` does.
        """
        if not is_blob_id(blob_id):
            return None
        for disk in self._order:
            try:
                found = os.stat(disk.blob_path(blob_id)).st_size
            except OSError:
                continue
            if size is None or found == size:
                return BlobRef(disk.id, blob_id, found)
        return None

    async def list_blobs(self) -> list[StoredBlob]:
        """Every finished blob on this node's disks, with its size and mtime (one walk of
        ``blobs/`` in a worker thread; blobs in the middle of being written are not there)."""
        return await trio.to_thread.run_sync(_stored_blobs, self._order, limiter=self._limiter)

    async def sha256(self, ref: BlobRef) -> str:
        """The hex SHA-256 of a local blob, hashed in worker threads a few MiB per hop."""
        disk = self._disk_of(ref)
        path = disk.blob_path(ref.blob)
        digest = hashlib.sha256()
        for offset in range(0, ref.size, _HASH_BLOCK):
            count = min(_HASH_BLOCK, ref.size - offset)
            await trio.to_thread.run_sync(
                self._on_disk, disk, "read", _hash_range, path, offset, count, digest,
                limiter=self._limiter,
            )
        return digest.hexdigest()

    async def delete(self, ref: BlobRef) -> None:
        """Remove the blob; a blob already gone is fine (the call is idempotent).

        A ref on a disk this node does not have is logged and ignored rather than refused: the
        caller is deleting the object anyway, and if that disk comes back its unreferenced
        blobs are reclaimed by :meth:`sweep`.
        """
        disk = self._disks.get(ref.disk)
        if disk is None:
            _log.warning("storage.delete_unknown_disk", disk=ref.disk, blob=ref.blob)
            return
        await trio.to_thread.run_sync(
            self._on_disk,
            disk,
            "delete",
            _unlink_quietly,
            disk.blob_path(ref.blob),
            limiter=self._limiter,
        )

    # -- reads and frees (``leases.py``) --

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Pin: enter before looking up what to read, leave once the blobs are leased (or
        read). A :meth:`free` asked meanwhile waits for it."""
        token = self._holds.pin()
        try:
            yield
        finally:
            await self._delete_freed(self._holds.unpin(token))

    @asynccontextmanager
    async def leasing(self, blobs: Iterable[str]) -> AsyncIterator[None]:
        """Lease ``blobs`` while streaming them (take it inside :meth:`reading`)."""
        token = self._holds.lease(blobs)
        try:
            yield
        finally:
            await self._delete_freed(self._holds.unlease(token))

    async def free(self, refs: Iterable[BlobRef]) -> None:
        """Delete ``refs`` once no reader can want them: now if none can, otherwise when the
        last one that might is done (call only after the commit that dropped them). A
        cancelled caller does not stop it: the deletes run shielded."""
        await self._delete_freed(self._holds.free(refs))

    async def _delete_freed(self, refs: list[BlobRef]) -> None:
        if refs:
            with trio.CancelScope(shield=True):  # the free was asked; do not lose it here
                for ref in refs:
                    await self.delete(ref)

    async def sweep(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        """Delete blobs no object references; return how many. Call it at start-up.

        Such blobs are left by a crash after a blob became durable but before the journal
        recorded it. The order makes concurrent writes safe: the files are listed first, then
        ``referenced()`` is asked, so a blob renamed in after the listing is not a candidate.
        A blob written after the store opened is never deleted either (mtime check): it may
        belong to a write of this process whose journal commit is still on its way; a failed
        write of this process deletes its own blob.
        """
        cutoff = self._opened_at - _SWEEP_MARGIN
        candidates = await trio.to_thread.run_sync(
            _list_blobs, self._order, cutoff, limiter=self._limiter
        )
        if not candidates:
            return 0
        keep = await referenced()
        doomed = [path for blob, path in candidates if blob not in keep]
        deleted = await trio.to_thread.run_sync(
            _unlink_all, doomed, limiter=self._limiter
        )
        _log.info("storage.swept", candidates=len(candidates), deleted=deleted)
        return deleted

    # -- helpers shared with BlobReader --

    def _disk_of(self, ref: BlobRef) -> Disk:
        disk = self._disks.get(ref.disk)
        if disk is None:
            _log.error(
                "storage.disk_missing",
                disk=ref.disk,
                blob=ref.blob,
                present=",".join(self._disks),
            )
            raise internal_error(
                f"The disk holding this object ({ref.disk}) is not available."
            )
        return disk

    @staticmethod
    def _io_error(error: OSError, action: str, disk: Disk) -> AWSError:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            _log.error("storage.disk_full", disk=disk.id, path=disk.path, action=action)
            return insufficient_storage()
        _log.error(
            "storage.io_error",
            disk=disk.id,
            path=disk.path,
            action=action,
            error=str(error),
        )
        return internal_error()


async def _read_exactly(
    stream: AsyncIterator[bytes], expected_size: int, max_size: int | None
) -> bytes:
    """The whole of a stream announced as ``expected_size`` bytes, refused as ``_fill`` does."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if max_size is not None and size > max_size:
            raise entity_too_large()
        if size > expected_size:
            raise incomplete_body()
        chunks.append(chunk)
    if size != expected_size:
        raise incomplete_body()
    return b"".join(chunks)


def _write_and_finish(sink: BlobSink, block: Block) -> tuple[bytes, dict[str, str]]:
    sink.write_block(block)
    sink.md5_block(block)
    return sink.finish()


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _unlink_all(paths: Sequence[Path]) -> int:
    deleted = 0
    for path in paths:
        try:
            os.unlink(path)
            deleted += 1
        except FileNotFoundError:
            pass
    return deleted


def _scan_blobs(disks: Sequence[Disk]) -> Iterator[tuple[Disk, os.DirEntry[str], os.stat_result]]:
    """Every finished blob on ``disks``, with its directory entry and ``stat``.

    Names that are not blob ids are left alone: whatever put them there was not this store.
    """
    for disk in disks:
        with os.scandir(disk.blobs) as fans:
            for fan in fans:
                if not fan.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(fan.path) as entries:
                    for entry in entries:
                        if not is_blob_id(entry.name):
                            continue
                        try:
                            stat = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        yield disk, entry, stat


def _list_blobs(disks: Sequence[Disk], cutoff: float) -> list[tuple[str, Path]]:
    """Every finished blob last modified before ``cutoff``, as ``(blob id, path)``."""
    return [
        (entry.name, Path(entry.path))
        for _, entry, stat in _scan_blobs(disks)
        if stat.st_mtime < cutoff
    ]


def _stored_blobs(disks: Sequence[Disk]) -> list[StoredBlob]:
    return [
        StoredBlob(BlobRef(disk.id, entry.name, stat.st_size), stat.st_mtime)
        for disk, entry, stat in _scan_blobs(disks)
    ]


def _hash_range(path: Path, offset: int, count: int, digest: Any) -> None:
    """Worker thread: feed ``count`` bytes of ``path`` from ``offset`` to ``digest``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        while count > 0:
            data = os.pread(fd, min(count, BLOCK_SIZE), offset)
            if not data:
                raise internal_error("The bytes of this object are damaged on its disk.")
            digest.update(data)
            offset += len(data)
            count -= len(data)
    finally:
        os.close(fd)


def _flexible(checksums: Sequence[str]) -> list[str]:
    names = []
    for name in checksums:
        upper = name.upper()
        if upper not in FLEXIBLE_ALGORITHMS:
            raise ValueError(f"{name!r} is not a flexible checksum algorithm")
        if upper not in names:
            names.append(upper)
    return names


def _sole_error(group: BaseExceptionGroup) -> BaseException:
    """The exception that ended a write's nursery, unwrapped for callers.

    The nursery is an implementation detail; callers expect ``IncompleteBody`` or their own
    stream's exception, not a group. When several lanes failed at once the first real error
    wins (they are the same disk failing); a group of only cancellations stays a group, which
    trio's cancel scopes know how to catch.
    """
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                collect(inner)
        else:
            leaves.append(exc)

    collect(group)
    for leaf in leaves:
        if not isinstance(leaf, trio.Cancelled):
            return leaf
    return group


def _open_disks(paths: Sequence[Path], node_id: str) -> list[Disk]:
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise StorageError(f"a disk is listed twice: {[str(p) for p in paths]}")
    disks: list[Disk] = []
    try:
        for path in resolved:
            disk = open_disk(path, node_id)
            disks.append(disk)
            twins = [d for d in disks[:-1] if d.id == disk.id]
            if twins:
                raise StorageError(
                    f"{path} and {twins[0].path} carry the same disk id {disk.id} "
                    "(a copied disk?): refusing to guess which one a blob is on"
                )
    except BaseException:
        for disk in disks:
            disk.close()
        raise
    return disks


@asynccontextmanager
async def open_blob_store(
    disk_paths: Sequence[Path],
    *,
    node_id: str,
    space: SpaceFunction = statvfs_space,
    threads: int = 8,
    drop_cache: bool = True,
) -> AsyncIterator[BlobStore]:
    """Open (preparing on first use) the node's disks and yield a store over them.

    Each disk gets its id marker, ``blobs/`` and ``tmp/``; orphaned temp files are removed
    and counted in the log. The disks stay locked against other processes until exit.
    ``space`` replaces ``statvfs`` for disk selection (tests), ``threads`` bounds the worker
    threads all blob I/O shares, ``drop_cache`` is the write-side page-cache hint (``sink.py``).
    Raises :class:`StorageError` for a disk that cannot be used.
    """
    if not disk_paths:
        raise ValueError("a blob store needs at least one disk")
    disks = await trio.to_thread.run_sync(_open_disks, list(disk_paths), node_id)
    try:
        yield BlobStore(disks, space=space, threads=threads, drop_cache=drop_cache)
    finally:
        for disk in disks:
            disk.close()
