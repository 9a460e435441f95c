"""An object's bytes as a list of blob segments, and the I/O S3 handlers do on them.

A single PUT stores one segment; a completed multipart upload keeps its parts' blobs as the
object's segments, in part order, so completing a 5 GiB upload copies nothing. Each segment
names the node and disk holding its blob (``zeronode.storage``); the bytes of a version are
freed only after the journal has durably forgotten the version.

In a cluster (``ctx.node.replicas`` set) other nodes keep copies of each blob under the same
id (``zeronode.storage.replicas``): a segment whose blob is not on this node is read from a
holder, and the handlers call :func:`schedule_replicas` once a write that made new blobs is
committed. Copies are never freed here: a node's copies that nothing references any more are
its replica scrub's to collect.
"""

from __future__ import annotations

import sqlite3
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

#: How often a read that raced an overwrite (or delete) freeing its bytes looks up again.
#: A copy's window (lookup, bucket check, then opening the source) is wide enough that two
#: writers overwriting its source ~100 times a second beat it three times running now and
#: then; ten looks keep that out of reach. Freeing replaced blobs a moment later (or a read
#: lease) would close the window itself.
LOOKUPS = 10


async def with_fresh_lookup(read: Callable[[], Awaitable[_T]]) -> _T:
    """``await read()``, again if the bytes it looked up could not be read.

    An overwrite or delete frees the replaced version's bytes right after its commit, so a
    read that looked the key up just before can find them gone (``BytesUnavailable``: a 500
    from the disk, or a 503 when no holder has them). ``read`` must make the lookup itself:
    the next attempt then sees the new version or NoSuchKey, as if it had come a moment later.
    """
    lookups = LOOKUPS
    while True:
        try:
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
    """Delete the blobs this node wrote for ``segments`` (call only after the commit that
    dropped them). Copies of other nodes' blobs are left to the replica scrub."""
    for segment in segments:
        if segment["node"] == ctx.node.node_id:
            await ctx.node.blobs.delete(_ref(segment))


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
    """Bytes ``[start, end)`` of the concatenation of ``segments``, streamed block by block."""
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
