"""An object's bytes as a list of blob segments, and the I/O S3 handlers do on them.

A single PUT stores one segment; a completed multipart upload keeps its parts' blobs as the
object's segments, in part order, so completing a 5 GiB upload copies nothing. Each segment
names the node and disk holding its blob (``zeronode.storage``); the bytes of a version are
freed only after the journal has durably forgotten the version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from zeronode.aws.service import RequestContext
from zeronode import storage
from zeronode.services.s3.projections import unpack

Segment = dict[str, Any]


def segment_of(written: storage.WrittenBlob, node_id: str) -> Segment:
    ref = written.ref
    return {"node": node_id, "disk": ref.disk, "blob": ref.blob, "size": ref.size}


def _ref(segment: Segment) -> storage.BlobRef:
    return storage.BlobRef(disk=segment["disk"], blob=segment["blob"], size=segment["size"])


async def free_segments(ctx: RequestContext, segments: Iterable[Segment]) -> None:
    """Delete the local blobs of ``segments`` (call only after the commit that dropped them)."""
    for segment in segments:
        if segment["node"] == ctx.node.node_id:
            await ctx.node.blobs.delete(_ref(segment))


async def read_segments(
    ctx: RequestContext, segments: Sequence[Segment], start: int = 0, end: int | None = None
) -> AsyncIterator[bytes]:
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
        reader = ctx.node.blobs.read(_ref(segment), lo, hi)
        try:
            async for block in reader:
                yield block
        finally:
            await reader.aclose()


def referenced_blob_ids(db: sqlite3.Connection) -> set[str]:
    """Blob ids held by any object version or uploaded part (a journal read function)."""
    ids: set[str] = set()
    for table in ("s3_versions", "s3_parts"):
        for (blob,) in db.execute(f"SELECT state FROM {table}"):  # noqa: S608 - fixed names
            state = unpack(blob)
            segments = state.get("segments") or ([state["segment"]] if "segment" in state else [])
            ids.update(segment["blob"] for segment in segments)
    return ids
