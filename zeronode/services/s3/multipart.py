"""S3 multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

Theory of operation. An upload is the journal entity ``s3/upload/<bucket>/<upload id>``
holding everything the object will get (key, owner, content headers, metadata, tags, storage
class, checksum mode); each part is ``s3/part/<bucket>/<upload id>/<n>`` holding its size,
ETag, checksum and the blob segment with its bytes.

- A part's bytes are written to a blob first (durable), then the part is committed, so a
  committed part always has its bytes. If the commit fails (the upload was completed or
  aborted meanwhile) the new blob is deleted; a part replaced by a re-upload has its old blob
  freed after the commit that replaced it.
- Complete is one journal mutation: it checks the request against the committed parts,
  writes the object version whose segments are the chosen parts' blobs in order (no byte is
  copied), and tombstones the upload and every part. Parts not named are freed after the
  commit, as are the segments of a null version the object replaces. Of a Complete and an
  Abort racing, whichever commits first wins; the other finds no upload (``NoSuchUpload``).
- Abort tombstones the upload and its parts, then frees their blobs.

Commits run shielded from cancellation: once the writer has taken a mutation it may commit
whatever the caller does, so the caller must stay to learn the outcome before deciding
whether the blob it wrote is garbage.

The rules themselves (checksum modes, the part-list checks, the multipart ETag, composite and
combined checksums) are pure, in ``multipart_rules.py``.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast
from urllib.parse import quote

import trio

from zeronode.aws.errors import AWSError
from zeronode.aws.service import Params, RequestContext
from zeronode.aws.sigv4 import take_payload_check
from zeronode.journal import Change
from zeronode.services.s3 import list_walk
from zeronode.services.s3.buckets import require_bucket_in
from zeronode.services.s3.checksum_fields import (
    MEMBERS,
    algorithm_param,
    checksum_output,
    checksum_request,
    content_md5,
    verify_upload,
)
from zeronode.services.s3.conditions import (
    Conditions,
    check_copy_source,
    check_write,
    check_write_headers,
)
from zeronode.services.s3.listing import key_encoder
from zeronode.services.s3.multipart_rules import (
    MAX_PART_SIZE,
    ChecksumMode,
    check_complete_claims,
    check_part_checksum,
    check_part_number,
    checksum_mode,
    copy_source_range,
    multipart_etag,
    object_checksum,
    part_algorithms,
    select_parts,
)
from zeronode.services.s3.object_fields import object_fields, quoted_etag
from zeronode.services.s3.objects import (
    expected_size,
    find_copy_source,
    check_key,
    parse_copy_source,
)
from zeronode.services.s3.projections import (
    PART_KIND,
    UPLOAD_KIND,
    part_entity,
    unpack,
    upload_entity,
)
from zeronode.services.s3.segments import (
    Segment,
    free_segments,
    read_segments,
    schedule_replicas,
    segment_of,
    with_fresh_lookup,
)
from zeronode.services.s3.versioning import (
    current_state,
    new_order,
    put_version,
    segments_of,
    versioning_status,
)
from zeronode.storage import WrittenBlob

MAX_LISTED = 1000
Mutation = Callable[[sqlite3.Connection], Sequence[Change]]
DISPLAY_NAME = "zeronode"


def no_such_upload(upload_id: str) -> AWSError:
    return AWSError(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed.",
        404, extra={"UploadId": upload_id},
    )


def _new_upload_id() -> str:
    """Random and URL-safe (hex), and sortable by creation time like version orders, so the
    ``upload-id-marker`` order S3 documents (lexicographic) is also the initiation order."""
    return new_order() + secrets.token_hex(16)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _user(owner: str) -> dict[str, str]:
    return {"ID": owner, "DisplayName": DISPLAY_NAME}


def _upload_in(db: sqlite3.Connection, bucket: str, key: str, upload_id: str) -> dict[str, Any]:
    """The live upload ``upload_id`` of ``key``: ``NoSuchBucket``, else ``NoSuchUpload``."""
    require_bucket_in(db, bucket)
    row = db.execute(
        "SELECT state FROM s3_uploads WHERE bucket = ? AND upload_id = ?", (bucket, upload_id)
    ).fetchone()
    if row is None:
        raise no_such_upload(upload_id)
    state = unpack(row[0])
    if state["key"] != key:
        raise no_such_upload(upload_id)
    return state


def _parts_in(db: sqlite3.Connection, bucket: str, upload_id: str) -> dict[int, dict[str, Any]]:
    return {
        number: unpack(state)
        for number, state in db.execute(
            "SELECT part_number, state FROM s3_parts WHERE bucket = ? AND upload_id = ?",
            (bucket, upload_id),
        )
    }


def _forget_upload(bucket: str, upload_id: str, parts: dict[int, dict[str, Any]]) -> list[Change]:
    """Tombstones for the upload and every one of its parts."""
    return [
        Change(upload_entity(bucket, upload_id), UPLOAD_KIND, None),
        *(Change(part_entity(bucket, upload_id, number), PART_KIND, None) for number in parts),
    ]


async def _shielded(ctx: RequestContext, mutation: Mutation) -> None:
    with trio.CancelScope(shield=True):
        await ctx.node.journal.submit(mutation)


# -- CreateMultipartUpload --------------------------------------------------------------------


async def create_multipart_upload(ctx: RequestContext, params: Params) -> Params:
    bucket, key = params["Bucket"], params["Key"]
    check_key(key)
    mode = checksum_mode(algorithm_param(params.get("ChecksumAlgorithm")), params.get("ChecksumType"))
    upload_id = _new_upload_id()
    state = {
        "key": key,
        "initiated_ms": _now_ms(),
        "owner": ctx.canonical_user_id,
        **object_fields(params, ctx.http.headers),
        "checksum": mode.to_state(),
    }

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        require_bucket_in(db, bucket)
        return [Change(upload_entity(bucket, upload_id), UPLOAD_KIND, state)]

    await ctx.node.journal.submit(mutation)
    out: Params = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
    if mode.requested:
        out.update(ChecksumAlgorithm=mode.algorithm, ChecksumType=mode.type)
    return out


# -- UploadPart and UploadPartCopy --------------------------------------------------------------


async def _store_part(
    ctx: RequestContext,
    params: Params,
    stream: AsyncIterator[bytes],
    size: int | None,
    algorithms: tuple[str, ...],
    check: Callable[[WrittenBlob], None],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Write a part's bytes, ``check`` them, commit the part; return it and its checksums.

    The blob is deleted again if the check or the commit fails; the part it replaces is
    freed once the commit is durable.
    """
    bucket, key, upload_id = params["Bucket"], params["Key"], params["UploadId"]
    number = params["PartNumber"]
    stream, signed_sha256 = take_payload_check(stream)
    written = await ctx.node.blobs.write(
        stream, checksums=algorithms, expected_size=size, max_size=MAX_PART_SIZE,
        expected_sha256=signed_sha256,
    )
    replaced: list[dict[str, Any]] = []
    committed: list[dict[str, Any]] = []
    try:
        check(written)

        def mutation(db: sqlite3.Connection) -> Sequence[Change]:
            upload = _upload_in(db, bucket, key, upload_id)
            mode = ChecksumMode.from_state(upload["checksum"])
            part = {
                "size": written.ref.size,
                "etag": written.md5.hex(),
                "last_modified_ms": _now_ms(),
                "checksum": {"algorithm": mode.algorithm, "value": written.checksums[mode.algorithm]},
                "segment": segment_of(written, ctx.node.node_id),
            }
            row = db.execute(
                "SELECT state FROM s3_parts WHERE bucket = ? AND upload_id = ? AND part_number = ?",
                (bucket, upload_id, number),
            ).fetchone()
            replaced[:] = [unpack(row[0])] if row else []
            committed[:] = [part]
            return [Change(part_entity(bucket, upload_id, number), PART_KIND, part)]

        await _shielded(ctx, mutation)
    except BaseException:
        with trio.CancelScope(shield=True):
            await ctx.node.blobs.delete(written.ref)
        raise
    schedule_replicas(ctx, [committed[0]["segment"]])
    await free_segments(ctx, [part["segment"] for part in replaced])
    return committed[0], written.checksums


async def _upload_mode(ctx: RequestContext, params: Params) -> ChecksumMode:
    bucket, key, upload_id = params["Bucket"], params["Key"], params["UploadId"]
    upload = await ctx.node.journal.read(lambda db: _upload_in(db, bucket, key, upload_id))
    return ChecksumMode.from_state(upload["checksum"])


async def upload_part(ctx: RequestContext, params: Params) -> Params:
    check_part_number(params["PartNumber"])
    request = checksum_request(params, ctx.http.headers)
    md5 = content_md5(params)
    mode = await _upload_mode(ctx, params)
    check_part_checksum(mode, request.algorithm)
    part, computed = await _store_part(
        ctx, params, params["Body"], expected_size(ctx, params),
        part_algorithms(mode, request.algorithm),
        lambda written: verify_upload(request, md5, written),
    )
    echoed = request.algorithm or mode.algorithm
    return {"ETag": quoted_etag(part), MEMBERS[echoed]: computed[echoed]}


async def upload_part_copy(ctx: RequestContext, params: Params) -> Params:
    check_part_number(params["PartNumber"])
    source = parse_copy_source(params["CopySource"])
    mode = await _upload_mode(ctx, params)

    async def copy() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        state, versioned = await ctx.node.journal.read(lambda db: find_copy_source(db, *source))
        check_copy_source(Conditions.of_copy_source(params), state["etag"],
                          state["last_modified_ms"])
        start, end = copy_source_range(params.get("CopySourceRange"), state["size"])
        if end - start > MAX_PART_SIZE:
            raise AWSError("InvalidRequest", "The specified copy source is larger than the "
                           f"maximum allowable size for a copy source: {MAX_PART_SIZE}", 400)
        # read_segments is an async generator; closing it closes the blob it is reading.
        source_stream = cast(
            AsyncGenerator[bytes, None], read_segments(ctx, state["segments"], start, end)
        )
        async with aclosing(source_stream) as source_bytes:
            part, _ = await _store_part(
                ctx, params, source_bytes, end - start, part_algorithms(mode, None),
                lambda written: None,
            )
        return state, versioned, part

    state, versioned, part = await with_fresh_lookup(ctx, copy)
    result: Params = {"ETag": quoted_etag(part), "LastModified": _datetime(part["last_modified_ms"])}
    if mode.requested:
        result[MEMBERS[mode.algorithm]] = part["checksum"]["value"]
    out: Params = {"CopyPartResult": result}
    if versioned:
        out["CopySourceVersionId"] = state["version_id"]
    return out


# -- CompleteMultipartUpload and AbortMultipartUpload ---------------------------------------------


async def complete_multipart_upload(ctx: RequestContext, params: Params) -> Params:
    bucket, key, upload_id = params["Bucket"], params["Key"], params["UploadId"]
    requested = (params.get("MultipartUpload") or {}).get("Parts") or []
    if_match, if_none_match = params.get("IfMatch"), params.get("IfNoneMatch")
    check_write_headers(if_match, if_none_match)
    freed: list[Segment] = []
    result: list[dict[str, Any]] = []
    versioned: list[bool] = []

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        upload = _upload_in(db, bucket, key, upload_id)
        mode = ChecksumMode.from_state(upload["checksum"])
        uploaded = _parts_in(db, bucket, upload_id)
        chosen = select_parts(upload_id, requested, uploaded, mode)
        check_write(if_match, if_none_match, current_state(db, bucket, key), key)
        parts = [state for _, state in chosen]
        size = sum(part["size"] for part in parts)
        checksum = object_checksum(mode, [(p["checksum"]["value"], p["size"]) for p in parts])
        check_complete_claims(mode, checksum, size, params)
        fields = {
            # S3: a multipart object's creation date is the day its upload was initiated.
            "last_modified_ms": upload["initiated_ms"],
            "owner": upload["owner"],
            "size": size,
            "etag": multipart_etag([part["etag"] for part in parts]),
            "storage_class": upload["storage_class"],
            "content": upload["content"],
            "metadata": upload["metadata"],
            "tags": upload["tags"],
            "checksum": checksum,
            "parts": [{"size": p["size"], "checksum": p["checksum"]["value"]} for p in parts],
            "segments": [part["segment"] for part in parts],
        }
        write = put_version(db, bucket, key, fields)
        chosen_numbers = {number for number, _ in chosen}
        changes = [*write.changes, *_forget_upload(bucket, upload_id, uploaded)]
        unused = [part["segment"] for n, part in uploaded.items() if n not in chosen_numbers]
        freed[:] = unused + segments_of(write.replaced)
        assert write.state is not None  # put_version always makes a version
        result[:] = [write.state]
        versioned[:] = [versioning_status(db, bucket) is not None]
        return changes

    await _shielded(ctx, mutation)
    state = result[0]
    schedule_replicas(ctx, state["segments"])  # parts whose copies are not made yet
    await free_segments(ctx, freed)
    out: Params = {
        "Location": _location(ctx, bucket, key),
        "Bucket": bucket,
        "Key": key,
        "ETag": quoted_etag(state),
        **checksum_output(state["checksum"]),
    }
    if versioned[0]:
        out["VersionId"] = state["version_id"]
    return out


def _location(ctx: RequestContext, bucket: str, key: str) -> str:
    host = ctx.http.headers.get("host") or "localhost"
    return f"{ctx.http.scheme}://{host}/{bucket}/{quote(key, safe='/')}"


async def abort_multipart_upload(ctx: RequestContext, params: Params) -> Params:
    bucket, key, upload_id = params["Bucket"], params["Key"], params["UploadId"]
    freed: list[Segment] = []

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        _upload_in(db, bucket, key, upload_id)
        parts = _parts_in(db, bucket, upload_id)
        freed[:] = [part["segment"] for part in parts.values()]
        return _forget_upload(bucket, upload_id, parts)

    await _shielded(ctx, mutation)
    await free_segments(ctx, freed)
    return {}


# -- ListParts and ListMultipartUploads ---------------------------------------------------------


def _max_listed(value: int | None, name: str) -> int:
    if value is None:
        return MAX_LISTED
    if value < 0:
        raise AWSError("InvalidArgument", f"Argument {name} must be an integer between 0 and "
                       "2147483647", 400, extra={"ArgumentName": name, "ArgumentValue": str(value)})
    return min(value, MAX_LISTED)


async def list_parts(ctx: RequestContext, params: Params) -> Params:
    bucket, key, upload_id = params["Bucket"], params["Key"], params["UploadId"]
    max_parts = _max_listed(params.get("MaxParts"), "max-parts")
    marker = params.get("PartNumberMarker") or 0

    def read(db: sqlite3.Connection) -> tuple[dict[str, Any], list[tuple[int, bytes]]]:
        upload = _upload_in(db, bucket, key, upload_id)
        rows = db.execute(
            "SELECT part_number, state FROM s3_parts WHERE bucket = ? AND upload_id = ?"
            " AND part_number > ? ORDER BY part_number LIMIT ?",
            (bucket, upload_id, marker, max_parts + 1),
        ).fetchall()
        return upload, rows

    upload, rows = await ctx.node.journal.read(read)
    mode = ChecksumMode.from_state(upload["checksum"])
    page = rows[:max_parts]
    parts = []
    for number, blob in page:
        part = unpack(blob)
        parts.append({
            "PartNumber": number,
            "LastModified": _datetime(part["last_modified_ms"]),
            "ETag": quoted_etag(part),
            "Size": part["size"],
            MEMBERS[mode.algorithm]: part["checksum"]["value"],
        })
    out: Params = {
        "Bucket": bucket,
        "Key": key,
        "UploadId": upload_id,
        "PartNumberMarker": marker,
        "MaxParts": max_parts,
        "IsTruncated": len(rows) > max_parts,
        "Parts": parts,
        "Initiator": _user(upload["owner"]),
        "Owner": _user(upload["owner"]),
        "StorageClass": upload["storage_class"],
    }
    if parts:
        out["NextPartNumberMarker"] = parts[-1]["PartNumber"]
    if mode.requested:
        out.update(ChecksumAlgorithm=mode.algorithm, ChecksumType=mode.type)
    return out


class _Upload(NamedTuple):
    key: str
    upload_id: str
    state: bytes


class _UploadSource:
    """``s3_uploads`` of one bucket in listing order (key, then upload id) for ``list_walk``."""

    _COLUMNS = "SELECT key, upload_id, state FROM s3_uploads WHERE bucket = ?"

    def __init__(self, db: sqlite3.Connection, bucket: str) -> None:
        self._db = db
        self._bucket = bucket

    def seek(self, key: str, inclusive: bool, upper: str | None, limit: int) -> list[_Upload]:
        where = " AND key >= ?" if inclusive else " AND key > ?"
        return self._query(where, [key], upper, limit)

    def resume(self, entry: _Upload, upper: str | None, limit: int) -> list[_Upload]:
        where = " AND (key > ? OR (key = ? AND upload_id > ?))"
        return self._query(where, [entry.key, entry.key, entry.upload_id], upper, limit)

    def _query(self, where: str, args: list[Any], upper: str | None, limit: int) -> list[_Upload]:
        sql = self._COLUMNS + where
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        sql += " ORDER BY key, upload_id LIMIT ?"
        rows = self._db.execute(sql, [self._bucket, *args, limit]).fetchall()
        return [_Upload(*row) for row in rows]


async def list_multipart_uploads(ctx: RequestContext, params: Params) -> Params:
    bucket = params["Bucket"]
    prefix = params.get("Prefix") or ""
    delimiter = params.get("Delimiter") or ""
    key_marker = params.get("KeyMarker") or ""
    upload_id_marker = params.get("UploadIdMarker") or ""
    max_uploads = _max_listed(params.get("MaxUploads"), "max-uploads")
    encode = key_encoder(params)
    # S3 ignores the upload-id-marker without a key-marker.
    after_entry = _Upload(key_marker, upload_id_marker, b"") if key_marker and upload_id_marker else None

    def read(db: sqlite3.Connection) -> list_walk.Page[_Upload]:
        require_bucket_in(db, bucket)
        return list_walk.walk(
            _UploadSource(db, bucket), prefix=prefix, delimiter=delimiter, after=key_marker,
            after_entry=after_entry, max_keys=max_uploads,
        )

    page = await ctx.node.journal.read(read)
    uploads = []
    for entry in page.entries:
        state = unpack(entry.state)
        mode = ChecksumMode.from_state(state["checksum"])
        upload: Params = {
            "UploadId": entry.upload_id,
            "Key": encode(entry.key),
            "Initiated": _datetime(state["initiated_ms"]),
            "StorageClass": state["storage_class"],
            "Owner": _user(state["owner"]),
            "Initiator": _user(state["owner"]),
        }
        if mode.requested:
            upload.update(ChecksumAlgorithm=mode.algorithm, ChecksumType=mode.type)
        uploads.append(upload)
    out: Params = {
        "Bucket": bucket,
        "KeyMarker": encode(key_marker),
        "UploadIdMarker": upload_id_marker,
        "MaxUploads": max_uploads,
        "IsTruncated": page.truncated,
        "Uploads": uploads,
        "CommonPrefixes": [{"Prefix": encode(p)} for p in page.prefixes],
    }
    if prefix or params.get("Prefix") is not None:
        out["Prefix"] = encode(prefix)
    if delimiter:
        out["Delimiter"] = encode(delimiter)
    if params.get("EncodingType") is not None:
        out["EncodingType"] = params["EncodingType"]
    last = page.last
    if page.truncated and last is not None:
        if isinstance(last, list_walk.CommonPrefix):
            out["NextKeyMarker"] = encode(last.prefix)
        else:
            out["NextKeyMarker"] = encode(last.key)
            out["NextUploadIdMarker"] = last.upload_id
    return out


HANDLERS = {
    "CreateMultipartUpload": create_multipart_upload,
    "UploadPart": upload_part,
    "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_multipart_upload,
    "AbortMultipartUpload": abort_multipart_upload,
    "ListParts": list_parts,
    "ListMultipartUploads": list_multipart_uploads,
}
