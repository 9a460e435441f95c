"""S3 object operations: PutObject, GetObject, HeadObject, CopyObject, DeleteObject(s).

Bytes first, metadata second: a write streams the body into a new blob (temp file, fsync,
rename: ``zeronode.storage``), checks Content-MD5 and the flexible checksum against what was
written, and only then commits the object state in one journal mutation. That mutation
re-checks what must hold at commit time — the bucket still exists, ``If-None-Match: *``
finds no object — so of two concurrent conditional writers exactly one wins. If the
mutation refuses, the new blob is deleted; once it commits, the blobs of the version it
replaced are freed. A crash between the two steps leaves an unreferenced blob, which the
store's start-up sweep removes; it never leaves a visible object without its bytes.

Keys are only ever journal data and SQL parameters, never paths, so any key S3 accepts
(``../../x``, ``a//b``, control characters) round-trips; only the 1024-byte limit applies.

Reads look the version up in one journal snapshot and stream its segments
(``segments.read_segments``), so a GET holds a block or two in memory whatever the size.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote

import trio

from zeronode.aws.errors import AWSError
from zeronode.aws.parse.rest_xml import malformed_xml
from zeronode.aws.service import Params, RequestContext
from zeronode.aws.sigv4 import STREAMING_MODES, take_payload_check
from zeronode.journal import Change
from zeronode.services.s3 import checksum_fields as cf
from zeronode.services.s3.buckets import require_bucket, require_bucket_in
from zeronode.services.s3.conditions import (
    Conditions,
    check_copy_source,
    check_read,
    check_write,
    check_write_headers,
    no_such_key,
)
from zeronode.services.s3.multipart_rules import part_checksum
from zeronode.services.s3.object_fields import (
    ARCHIVED_CLASSES,
    content_fields,
    last_modified,
    object_fields,
    object_output,
    quoted_etag,
    response_overrides,
    storage_class,
    user_metadata,
)
from zeronode.services.s3.ranges import ByteRange, parse_range
from zeronode.services.s3.segments import (
    free_segments,
    open_segments,
    read_segments,
    schedule_replicas,
    segment_of,
    with_fresh_lookup,
)
from zeronode.services.s3.tag_rules import parse_tagging_header
from zeronode.services.s3.versioning import (
    VersionWrite,
    check_version_id,
    current_state,
    delete_version,
    newest_state,
    put_version,
    segments_of,
    version_state,
    versioning_status,
)
from zeronode.storage import BlobRef, WrittenBlob

MAX_KEY_BYTES = 1024
#: S3's limit for one PutObject, and for the source of one CopyObject.
MAX_SINGLE_OBJECT = 5 * 1024**3
MAX_DELETE_KEYS = 1000
_DIRECTIVES = ("COPY", "REPLACE")


def check_key(key: str) -> None:
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise AWSError("KeyTooLongError", "Your key is too long", 400,
                       extra={"Size": str(size), "MaxSizeAllowed": str(MAX_KEY_BYTES)})


def no_such_version(key: str, version_id: str) -> AWSError:
    return AWSError("NoSuchVersion", "The specified version does not exist.", 404,
                    extra={"Key": key, "VersionId": version_id})


def _http_date(ms: int) -> str:
    return formatdate(ms / 1000, usegmt=True)


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- looking versions up


def find_version(
    db: sqlite3.Connection, bucket: str, key: str, version_id: str | None, method: str
) -> tuple[dict[str, Any], bool]:
    """The data version a read addresses, and whether the bucket is versioned.

    S3's answers when there is none: ``NoSuchKey`` (404, with ``x-amz-delete-marker`` when
    the key's newest version is a delete marker), ``NoSuchVersion`` for an unknown version
    id, ``MethodNotAllowed`` (405) for a version id that names a delete marker.
    """
    require_bucket_in(db, bucket)
    versioned = versioning_status(db, bucket) is not None
    if version_id is not None:
        state = version_state(db, bucket, key, version_id)
        if state is None:
            raise no_such_version(key, version_id)
        if state["delete_marker"]:
            raise AWSError(
                "MethodNotAllowed", "The specified method is not allowed against this resource.",
                405, extra={"Method": method, "ResourceType": "DeleteMarker"},
                headers=_marker_headers(state),
            )
        return state, versioned
    state = newest_state(db, bucket, key)
    if state is None:
        raise no_such_key(key)
    if state["delete_marker"]:
        error = no_such_key(key)
        error.headers.update(_marker_headers(state))
        raise error
    return state, versioned


def _marker_headers(marker: dict[str, Any]) -> dict[str, str]:
    return {"x-amz-delete-marker": "true", "x-amz-version-id": marker["version_id"],
            "Last-Modified": _http_date(marker["last_modified_ms"])}


# ---------------------------------------------------------------- committing a new version


async def _commit_version(
    ctx: RequestContext,
    bucket: str,
    key: str,
    fields: dict[str, Any],
    new_segments: Sequence[dict[str, Any]],
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Commit ``fields`` as the newest version of ``key``; return its state and versioning.

    ``new_segments`` are the blobs just written for it: deleted if the commit is refused,
    kept (and the replaced version's freed) once it is durable. A cancellation while the
    commit is in flight leaves them alone: the commit may have happened, and an
    unreferenced blob is the start-up sweep's to remove.
    """
    outcome: list[tuple[VersionWrite, bool]] = []

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        require_bucket_in(db, bucket)
        if if_match is not None or if_none_match is not None:
            check_write(if_match, if_none_match, current_state(db, bucket, key), key)
        write = put_version(db, bucket, key, fields)
        outcome.append((write, versioning_status(db, bucket) is not None))
        return write.changes

    try:
        await ctx.node.journal.submit(mutation)
    except Exception:
        await free_segments(ctx, new_segments)
        raise
    write, versioned = outcome[-1]
    schedule_replicas(ctx, new_segments)
    await free_segments(ctx, segments_of(write.replaced))
    assert write.state is not None
    return write.state, versioned


async def _discard_on_error(
    ctx: RequestContext, written: WrittenBlob, check: Callable[[], None]
) -> None:
    """Run ``check()``; if it raises, delete the blob just written before re-raising."""
    try:
        check()
    except Exception:
        with trio.CancelScope(shield=True):
            await ctx.node.blobs.delete(written.ref)
        raise


def _new_state_fields(
    ctx: RequestContext, fields: dict[str, Any], written: WrittenBlob, algorithm: str
) -> dict[str, Any]:
    return {
        **fields,
        "last_modified_ms": _now_ms(),
        "owner": ctx.canonical_user_id,
        "size": written.ref.size,
        "etag": written.md5.hex(),
        "checksum": cf.stored_checksum(algorithm, written),
        "parts": None,
        "segments": [segment_of(written, ctx.node.node_id)],
    }


def _version_output(state: dict[str, Any], versioned: bool) -> dict[str, Any]:
    return {"VersionId": state["version_id"]} if versioned else {}


# ---------------------------------------------------------------- PutObject


def expected_size(ctx: RequestContext, params: Params) -> int | None:
    """The body's decoded length: S3 refuses an upload that does not state it."""
    headers = ctx.http.headers
    if (headers.get("x-amz-content-sha256") or "").strip() in STREAMING_MODES:
        decoded = headers.get("x-amz-decoded-content-length")
        return int(decoded) if decoded is not None and decoded.strip().isdigit() else None
    length = params.get("ContentLength")
    if length is None:
        raise AWSError("MissingContentLength", "You must provide the Content-Length HTTP header.",
                       411)
    return int(length)


async def put_object(ctx: RequestContext, params: Params) -> Params:
    bucket, key = params["Bucket"], params["Key"]
    check_key(key)
    fields = object_fields(params, ctx.http.headers)
    checksum = cf.checksum_request(params, ctx.http.headers)
    md5 = cf.content_md5(params)
    if_match, if_none_match = params.get("IfMatch"), params.get("IfNoneMatch")
    check_write_headers(if_match, if_none_match)
    expected = expected_size(ctx, params)
    if expected is not None and expected > MAX_SINGLE_OBJECT:
        raise AWSError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                       400, extra={"ProposedSize": str(expected),
                                   "MaxSizeAllowed": str(MAX_SINGLE_OBJECT)})
    await require_bucket(ctx, bucket)
    body, signed_sha256 = take_payload_check(params["Body"])
    written = await ctx.node.blobs.write(
        body, checksums=checksum.compute(), expected_size=expected,
        max_size=MAX_SINGLE_OBJECT, expected_sha256=signed_sha256,
    )
    await _discard_on_error(ctx, written, lambda: cf.verify_upload(checksum, md5, written))
    state_fields = _new_state_fields(ctx, fields, written, checksum.stored_algorithm)
    state, versioned = await _commit_version(
        ctx, bucket, key, state_fields, state_fields["segments"],
        if_match=if_match, if_none_match=if_none_match,
    )
    return {"ETag": quoted_etag(state), **cf.checksum_output(state["checksum"]),
            **_version_output(state, versioned)}


# ---------------------------------------------------------------- GetObject / HeadObject


def _part_range(state: dict[str, Any], part_number: int, has_range: bool) -> ByteRange:
    """The bytes of part ``part_number`` (1-based); a single-PUT object is one part."""
    if has_range:
        raise AWSError("InvalidRequest",
                       "Cannot specify both Range header and partNumber query parameter", 400)
    sizes = [part["size"] for part in state["parts"]] if state.get("parts") else [state["size"]]
    if not 1 <= part_number <= len(sizes):
        raise AWSError("InvalidPartNumber", "The requested partnumber is not satisfiable", 416,
                       extra={"PartNumberRequested": str(part_number),
                              "ActualPartCount": str(len(sizes))})
    start = sum(sizes[: part_number - 1])
    return ByteRange(start, start + sizes[part_number - 1], state["size"])


async def _read(
    ctx: RequestContext, params: Params, method: str
) -> tuple[dict[str, Any], Params, ByteRange | None]:
    """What GetObject and HeadObject share: lookup, conditions, part or range, headers."""
    bucket, key, version_id = params["Bucket"], params["Key"], params.get("VersionId")
    check_key(key)
    if version_id is not None:
        check_version_id(version_id)
    state, versioned = await ctx.node.journal.read(
        lambda db: find_version(db, bucket, key, version_id, method))
    check_read(Conditions.of_request(params), state["etag"], state["last_modified_ms"],
               {"ETag": quoted_etag(state), "Last-Modified": _http_date(state["last_modified_ms"])})
    out = object_output(state, versioned=versioned)
    checksum = state.get("checksum")
    part_number = params.get("PartNumber")
    if part_number is not None:
        span: ByteRange | None = _part_range(state, part_number, params.get("Range") is not None)
        if state.get("parts"):
            out["PartsCount"] = len(state["parts"])
            checksum = part_checksum(state, part_number)  # (multipart) the part's own checksum
    else:
        span = parse_range(params.get("Range"), state["size"])
        if span is not None:
            checksum = None  # S3 sends no checksum with a byte range: it covers other bytes
    out.update(cf.checksum_output(checksum, params.get("ChecksumMode")))
    if span is not None:
        out["ContentRange"] = span.content_range
        out["ContentLength"] = span.length
    else:
        out["ContentLength"] = state["size"]
    out.update(response_overrides(params))
    return state, out, span


async def get_object(ctx: RequestContext, params: Params) -> Params:
    """The first block is read before the answer starts, so a lookup whose bytes are gone is
    made again (:func:`with_fresh_lookup`); the body's blobs are leased until it is closed, so
    an overwrite meanwhile does not break it off (in a multipart object's later parts either)."""

    async def read() -> Params:
        state, out, span = await _read(ctx, params, "GET")
        if state.get("storage_class") in ARCHIVED_CLASSES:
            raise AWSError("InvalidObjectState",
                           "The operation is not valid for the object's storage class", 403,
                           extra={"StorageClass": state["storage_class"]})
        start, end = (span.start, span.end) if span is not None else (0, state["size"])
        out["Body"] = await open_segments(ctx, state["segments"], start, end)
        return out

    return await with_fresh_lookup(ctx, read)


async def head_object(ctx: RequestContext, params: Params) -> Params:
    _, out, _ = await _read(ctx, params, "HEAD")
    return out


# ---------------------------------------------------------------- DeleteObject(s)


def _deleted_entry(key: str, version_id: str | None, write: VersionWrite) -> dict[str, Any]:
    """What one delete did, as DeleteObjects' ``Deleted`` entry (and DeleteObject's headers)."""
    entry: dict[str, Any] = {"Key": key}
    state = write.state
    if version_id is not None:
        entry["VersionId"] = version_id
        if state is not None and state["delete_marker"]:
            entry["DeleteMarker"] = True
            entry["DeleteMarkerVersionId"] = version_id
    elif state is not None and state["delete_marker"]:
        entry["DeleteMarker"] = True
        entry["DeleteMarkerVersionId"] = state["version_id"]
    return entry


async def delete_object(ctx: RequestContext, params: Params) -> Params:
    bucket, key, version_id = params["Bucket"], params["Key"], params.get("VersionId")
    check_key(key)
    if version_id is not None:
        check_version_id(version_id)
    outcome: list[VersionWrite] = []
    now = _now_ms()

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        require_bucket_in(db, bucket)
        write = delete_version(db, bucket, key, version_id, owner=ctx.canonical_user_id, now_ms=now)
        outcome.append(write)
        return write.changes

    await ctx.node.journal.submit(mutation)
    write = outcome[-1]
    await free_segments(ctx, segments_of(write.replaced))
    entry = _deleted_entry(key, version_id, write)
    out: Params = {}
    if entry.get("DeleteMarker"):
        out["DeleteMarker"] = True
    if version_id is not None:
        out["VersionId"] = version_id
    elif "DeleteMarkerVersionId" in entry:
        out["VersionId"] = entry["DeleteMarkerVersionId"]
    return out


def _has_integrity_header(ctx: RequestContext) -> bool:
    headers = ctx.http.headers
    return "content-md5" in headers or any(
        name.startswith("x-amz-checksum-") for name, _ in headers.items())


def _delete_one(
    db: sqlite3.Connection, bucket: str, item: dict[str, Any], owner: str, now: int
) -> tuple[VersionWrite | None, dict[str, Any]]:
    """One entry of DeleteObjects: its write, or None and the per-key ``Error`` entry."""
    key, version_id = item.get("Key", ""), item.get("VersionId")
    try:
        check_key(key)
        write = delete_version(db, bucket, key, version_id, owner=owner, now_ms=now)
    except AWSError as error:
        failure = {"Key": key, "Code": error.code, "Message": error.message}
        if version_id is not None:
            failure["VersionId"] = version_id
        return None, failure
    return write, _deleted_entry(key, version_id, write)


async def delete_objects(ctx: RequestContext, params: Params) -> Params:
    """Delete up to 1000 keys in one journal commit; a key's failure is its ``Error`` entry."""
    bucket = params["Bucket"]
    items = (params.get("Delete") or {}).get("Objects") or []
    if not items or len(items) > MAX_DELETE_KEYS:
        raise malformed_xml()
    if not _has_integrity_header(ctx):
        raise AWSError("InvalidRequest", "Missing required header for this request: Content-MD5",
                       400)
    quiet = bool(params["Delete"].get("Quiet"))
    now = _now_ms()
    deleted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    freed: list[dict[str, Any]] = []

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        deleted.clear(), errors.clear(), freed.clear()
        require_bucket_in(db, bucket)
        changes: list[Change] = []
        for item in items:
            write, entry = _delete_one(db, bucket, item, ctx.canonical_user_id, now)
            if write is None:
                errors.append(entry)
                continue
            deleted.append(entry)
            changes.extend(write.changes)
            freed.extend(write.replaced)
        return changes

    await ctx.node.journal.submit(mutation)
    await free_segments(ctx, segments_of(freed))
    out: Params = {"Errors": errors} if errors else {}
    if not quiet and deleted:
        out["Deleted"] = deleted
    return out


# ---------------------------------------------------------------- CopyObject


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """``x-amz-copy-source`` (``[/]bucket/key[?versionId=id]``, URL-encoded) as its parts."""
    path, _, query = value.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    version_id = dict(parse_qsl(query, keep_blank_values=True)).get("versionId")
    if not bucket or not key:
        raise AWSError("InvalidArgument",
                       "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                       400, extra={"ArgumentName": "x-amz-copy-source", "ArgumentValue": value})
    return bucket, key, version_id


def _directive(params: Params, name: str, header: str, what: str) -> str:
    value = params.get(name) or "COPY"
    if value not in _DIRECTIVES:
        raise AWSError("InvalidArgument", f"Unknown {what} directive.", 400,
                       extra={"ArgumentName": header, "ArgumentValue": value})
    return value


def find_copy_source(db: sqlite3.Connection, bucket: str, key: str,
                      version_id: str | None) -> tuple[dict[str, Any], bool]:
    try:
        return find_version(db, bucket, key, version_id, "GET")
    except AWSError as error:
        if error.code != "MethodNotAllowed":
            raise
    raise AWSError("InvalidRequest", "The source of a copy request may not specifically refer "
                   "to a delete marker by version id.", 400)


async def _copy_bytes(ctx: RequestContext, source: dict[str, Any], algorithm: str) -> WrittenBlob:
    """A new blob holding the source's bytes, its checksum computed on the way."""
    segments = source["segments"]
    if len(segments) == 1 and segments[0]["node"] == ctx.node.node_id:
        seg = segments[0]
        return await ctx.node.blobs.copy(BlobRef(seg["disk"], seg["blob"], seg["size"]),
                                         checksums=(algorithm,))
    stream: AsyncIterator[bytes] = read_segments(ctx, segments)
    return await ctx.node.blobs.write(stream, checksums=(algorithm,), expected_size=source["size"])


async def copy_object(ctx: RequestContext, params: Params) -> Params:
    bucket, key = params["Bucket"], params["Key"]
    check_key(key)
    src_bucket, src_key, src_version = parse_copy_source(params["CopySource"])
    check_key(src_key)
    if src_version is not None:
        check_version_id(src_version)
    metadata_directive = _directive(params, "MetadataDirective", "x-amz-metadata-directive",
                                    "metadata")
    tagging_directive = _directive(params, "TaggingDirective", "x-amz-tagging-directive", "tagging")
    algorithm = cf.algorithm_param(params.get("ChecksumAlgorithm"))
    if_match, if_none_match = params.get("IfMatch"), params.get("IfNoneMatch")
    check_write_headers(if_match, if_none_match)
    new_class = storage_class(params)
    replace = {
        "content": content_fields(params, ctx.http.headers),
        "metadata": user_metadata(params),
    } if metadata_directive == "REPLACE" else None
    new_tags = parse_tagging_header(params.get("Tagging")) if tagging_directive == "REPLACE" else None

    changes_something = (replace is not None or params.get("StorageClass") is not None
                         or params.get("WebsiteRedirectLocation") is not None
                         or params.get("ServerSideEncryption") is not None or algorithm is not None)

    async def copy() -> tuple[dict[str, Any], bool, str, WrittenBlob]:
        source, src_versioned = await ctx.node.journal.read(
            lambda db: find_copy_source(db, src_bucket, src_key, src_version))
        check_copy_source(Conditions.of_copy_source(params), source["etag"],
                          source["last_modified_ms"])
        same_version = src_version is None or src_version == source["version_id"]
        if (src_bucket, src_key) == (bucket, key) and same_version and not changes_something:
            raise AWSError(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.", 400)
        if source["size"] > MAX_SINGLE_OBJECT:
            raise AWSError("InvalidRequest", "The specified copy source is larger than the "
                           f"maximum allowable size for a copy source: {MAX_SINGLE_OBJECT}", 400)
        await require_bucket(ctx, bucket)
        source_checksum = source.get("checksum") or {}
        chosen = algorithm or source_checksum.get("algorithm") or cf.DEFAULT_ALGORITHM
        return source, src_versioned, chosen, await _copy_bytes(ctx, source, chosen)

    source, src_versioned, algorithm, written = await with_fresh_lookup(ctx, copy)
    fields = {
        **(replace or {"content": dict(source.get("content", {})),
                       "metadata": dict(source.get("metadata", {}))}),
        "storage_class": new_class,
        "tags": new_tags if new_tags is not None else dict(source.get("tags", {})),
    }
    state_fields = _new_state_fields(ctx, fields, written, algorithm)
    state, versioned = await _commit_version(
        ctx, bucket, key, state_fields, state_fields["segments"],
        if_match=if_match, if_none_match=if_none_match,
    )
    out: Params = {
        "CopyObjectResult": {"ETag": quoted_etag(state), "LastModified": last_modified(state),
                             **cf.checksum_output(state["checksum"])},
        **_version_output(state, versioned),
    }
    if src_versioned:
        out["CopySourceVersionId"] = source["version_id"]
    return out


HANDLERS = {
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": head_object,
    "DeleteObject": delete_object,
    "DeleteObjects": delete_objects,
    "CopyObject": copy_object,
}
