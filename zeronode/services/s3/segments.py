"""An object's bytes as a list of blob segments, and the I/O S3 handlers do on them.

A single PUT stores one segment; a completed multipart upload keeps its parts' blobs as the
object's segments, in part order, so completing a 5 GiB upload copies nothing. Each segment
names the node and disk holding its blob (``zeronode.storage``); the bytes of a version are
freed only after the journal has durably forgotten the version, and once no read on this
node may still want them (:func:`with_fresh_lookup`, :func:`read_segments`).

In a cluster (``ctx.node.replicas`` set) other nodes keep copies of each blob under the same
id (``zeronode.storage.replicas``): a segment whose blob is not on this node is read from a
holder, and the handlers call :func:`schedule_replicas` once a write that made new blobs is
committed. Copies are never freed here: a node's copies that nothing references any more are
its replica scrub's to collect.
"""

from __future__ import annotations

import sqlite3
from contextlib import aclosing
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, TypeVar

from zeronode.aws.service import RequestContext
from zeronode import storage
from zeronode.services.s3.projections import unpack

Segment = dict[str, Any]
_T = TypeVar("_T")

#: How often a read whose bytes were gone looks up again. On its own node a read no longer
#: finds them gone (frees wait for it: ``BlobStore.reading``); in a cluster another holder it
#: reads from may have dropped its copy meanwhile (an overwrite made there), and a later lookup
#: sees the new version once that overwrite has replicated here.
LOOKUPS = 3


async def with_fresh_lookup(ctx: RequestContext, read: Callable[[], Awaitable[_T]]) -> _T:
    """``await read()`` pinned (``BlobStore.reading``), again if its bytes could not be read.

    ``read`` makes the lookup itself and opens (or reads) the bytes before it returns: the pin
    keeps an overwrite's free from deleting the version it looked up meanwhile, and
    :func:`read_segments` leases the blobs it streams after that. A read that still finds its
    bytes gone (``BytesUnavailable``: a 500 from the disk, a 503 when no holder has them) looks
    up again and sees the new version or NoSuchKey, as if it had come a moment later.
    """
    lookups = LOOKUPS
    while True:
        try:
            async with ctx.node.blobs.reading():
                return await read()
        except storage.BytesUnavailable:
            lookups -= 1
            if not lookups:
                raise


def segment_of(written: storage.WrittenBlob, node_id: str) -> Segment:
    ref = written.ref
    return {"node": node_id, "disk": ref.disk, "blob": ref.blob, "size": ref.size}


def _ref(segment: Segment) -> storage.BlobRef:
    return storage.BlobRef(disk=segment["disk"], blob=segment["blob"], size=segment["size"])


async def free_segments(ctx: RequestContext, segments: Iterable[Segment]) -> None:
    """Delete the blobs this node wrote for ``segments`` once no read on this node may want
    them (call only after the commit that dropped them). Copies of other nodes' blobs are
    left to the replica scrub."""
    me = ctx.node.node_id
    await ctx.node.blobs.free([_ref(s) for s in segments if s["node"] == me])


def schedule_replicas(ctx: RequestContext, segments: Iterable[Segment]) -> None:
    """Queue background copies of newly committed ``segments`` (a no-op without a cluster);
    returns at once."""
    replicas = getattr(ctx.node, "replicas", None)
    if replicas is not None:
        replicas.schedule(segments)


def _in_range(segments: Sequence[Segment], start: int, end: int | None) -> list[Segment]:
    """The non-empty ``segments`` holding some of the bytes ``[start, end)``."""
    chosen, offset = [], 0
    for segment in segments:
        seg_start, offset = offset, offset + segment["size"]
        if (end is None or seg_start < end) and offset > start and segment["size"]:
            chosen.append(segment)
    return chosen


async def read_segments(
    ctx: RequestContext, segments: Sequence[Segment], start: int = 0, end: int | None = None
) -> AsyncGenerator[bytes, None]:
    """Bytes ``[start, end)`` of the concatenation of ``segments``, streamed block by block.

    The blobs are leased from the first block on, so a read begun inside
    :func:`with_fresh_lookup` keeps them from being freed until it is closed."""
    blobs = [segment["blob"] for segment in _in_range(segments, start, end)]
    async with (
        ctx.node.blobs.leasing(blobs),
        aclosing(_read_leased(ctx, segments, start, end)) as stream,
    ):
        async for block in stream:
            yield block


async def _read_leased(
    ctx: RequestContext, segments: Sequence[Segment], start: int, end: int | None
) -> AsyncGenerator[bytes, None]:
    offset = 0
    for segment in segments:
        size = segment["size"]
        seg_start, seg_end = offset, offset + size
        offset = seg_end
        if end is not None and seg_start >= end:
            break
        if seg_end <= start or size == 0:
            continue
        lo = max(start, seg_start) - seg_start
        hi = (min(end, seg_end) if end is not None else seg_end) - seg_start
        ref = _ref(segment)
        replicas = getattr(ctx.node, "replicas", None)
        reader: Any
        if replicas is not None and not ctx.node.blobs.has(ref):
            reader = replicas.open_read(segment, lo, hi)
        else:
            reader = ctx.node.blobs.read(ref, lo, hi)
        try:
            async for block in reader:
                yield block
        finally:
            await reader.aclose()


async def open_segments(
    ctx: RequestContext, segments: Sequence[Segment], start: int = 0, end: int | None = None
) -> AsyncIterator[bytes]:
    """:func:`read_segments` with its first block already read, for a response body.

    A GET whose bytes no reachable node holds then fails with its error (503) before the
    response starts, instead of as a 200 whose body breaks off: every segment in the range
    must be here or on a reachable holder, and the first block must arrive. (A holder that
    dies later still breaks the body off; the next holder carries on where it can.)
    """
    replicas = getattr(ctx.node, "replicas", None)
    if replicas is not None:
        await replicas.ensure_readable(_in_range(segments, start, end))
    stream = read_segments(ctx, segments, start, end)
    try:
        first = await anext(stream, None)
    except BaseException:
        await stream.aclose()
        raise
    return _after(first, stream)


async def _after(first: bytes | None, stream: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield first
            async for block in stream:
                yield block
    finally:
        await stream.aclose()


def referenced_blob_ids(db: sqlite3.Connection) -> set[str]:
    """Blob ids held by any object version or uploaded part (a journal read function)."""
    return {segment["blob"] for segment in _referenced_segments(db)}


def referenced_segments(db: sqlite3.Connection) -> dict[str, Segment]:
    """``{blob id: segment}`` for every blob an object version or uploaded part holds (a
    journal read function)."""
    return {segment["blob"]: segment for segment in _referenced_segments(db)}


async def blob_catalog(journal: Any) -> dict[str, Segment]:
    """The replica layer's catalog (``zeronode.storage.replicas.Catalog``) for S3's blobs."""
    return await journal.read(referenced_segments)  # type: ignore[no-any-return]


def _referenced_segments(db: sqlite3.Connection) -> Iterator[Segment]:
    for table in ("s3_versions", "s3_parts"):
        for (blob,) in db.execute(f"SELECT state FROM {table}"):  # noqa: S608 - fixed names
            state = unpack(blob)
            segments = state.get("segments") or ([state["segment"]] if "segment" in state else [])
            yield from segments
