"""S3 listings: ListObjectsV2, ListObjects (v1) and ListObjectVersions.

The page itself is :mod:`list_walk`'s business; this module adds S3's request rules, the
sources that feed the walk from the projection tables, and the response shapes.

- Every request is one ``journal.read``: the bucket check and all the batches of the walk see
  one snapshot, so a page never mixes two states of the bucket.
- ``s3_objects`` and ``s3_versions`` are keyed ``(bucket, key, ...)`` WITHOUT ROWID, so a
  batch is a range scan of the primary key. ``s3_versions`` is ordered by version id within
  a key, not newest first, so the version source reads whole keys and orders each key's
  versions itself (SQLite cannot walk an index ascending on key and descending on ``ord``).
- ``EncodingType=url`` percent-encodes, as S3 does, the keys and the request values echoed
  back (form encoding: a space is ``+``, ``/`` stays), so keys with characters XML 1.0
  cannot carry survive the trip. botocore asks for it on every listing and decodes.
- Rendering (unpacking each state, building the dicts) happens in the read's worker thread,
  never on the trio loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from itertools import groupby
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote_plus

from zeronode.aws.errors import AWSError
from zeronode.aws.service import Params, RequestContext
from zeronode.services.s3.buckets import no_such_bucket
from zeronode.services.s3.list_walk import CommonPrefix, Page, walk
from zeronode.services.s3.object_fields import last_modified, quoted_etag
from zeronode.services.s3.projections import unpack
from zeronode.services.s3.tokens import continuation_token, resume_after
from zeronode.services.s3.versioning import check_version_id

MAX_KEYS = 1000
OWNER_DISPLAY_NAME = "zeronode"
_V2_TOKEN = "s3.ListObjectsV2"
_INT32_MAX = 2**31 - 1
_MAX_KEYS_RANGE = "Argument maxKeys must be an integer between 0 and 2147483647"

T = TypeVar("T")


# --- sources ---------------------------------------------------------------------------------


class ObjectRow(NamedTuple):
    key: str
    size: int
    etag: str
    last_modified_ms: int
    storage_class: str
    state: bytes


class VersionRow(NamedTuple):
    key: str
    version_id: str
    ord: str
    delete_marker: int
    size: int
    etag: str
    last_modified_ms: int
    state: bytes
    is_latest: bool = False

    @property
    def age(self) -> tuple[str, str]:
        """Sorts newest last, as ``versioning.newest_state`` picks the newest."""
        return (self.ord, self.version_id)


def _range_sql(table: str, columns: str, inclusive: bool, upper: str | None) -> str:
    sql = f"SELECT {columns} FROM {table} WHERE bucket = ? AND key {'>=' if inclusive else '>'} ?"
    if upper is not None:
        sql += " AND key < ?"
    return sql + " ORDER BY key LIMIT ?"


def _range_args(bucket: str, key: str, upper: str | None, limit: int) -> tuple[Any, ...]:
    return (bucket, key, upper, limit) if upper is not None else (bucket, key, limit)


class ObjectSource:
    """Current objects (``s3_objects``) in key order."""

    _COLUMNS = "key, size, etag, last_modified_ms, storage_class, state"

    def __init__(self, db: sqlite3.Connection, bucket: str) -> None:
        self.db, self.bucket = db, bucket

    def seek(self, key: str, inclusive: bool, upper: str | None, limit: int) -> list[ObjectRow]:
        sql = _range_sql("s3_objects", self._COLUMNS, inclusive, upper)
        rows = self.db.execute(sql, _range_args(self.bucket, key, upper, limit))
        return [ObjectRow(*row) for row in rows]

    def resume(self, entry: ObjectRow, upper: str | None, limit: int) -> list[ObjectRow]:
        return self.seek(entry.key, False, upper, limit)


class VersionSource:
    """Every version and delete marker (``s3_versions``): keys in order, newest first in a key.

    Batches always hold whole keys, which is what lets a batch mark each key's newest
    version ``is_latest`` without another query.
    """

    _COLUMNS = "key, version_id, ord, delete_marker, size, etag, last_modified_ms, state"

    def __init__(self, db: sqlite3.Connection, bucket: str) -> None:
        self.db, self.bucket = db, bucket

    def _key_versions(self, key: str) -> list[VersionRow]:
        sql = f"SELECT {self._COLUMNS} FROM s3_versions WHERE bucket = ? AND key = ?"
        return [VersionRow(*row) for row in self.db.execute(sql, (self.bucket, key))]

    def seek(self, key: str, inclusive: bool, upper: str | None, limit: int) -> list[VersionRow]:
        sql = _range_sql("s3_versions", self._COLUMNS, inclusive, upper)
        args = _range_args(self.bucket, key, upper, limit)
        rows = [VersionRow(*row) for row in self.db.execute(sql, args)]
        if len(rows) == limit:  # the last key may go on past the batch: take it whole
            last = rows[-1].key
            rows = [row for row in rows if row.key != last] + self._key_versions(last)
        ordered: list[VersionRow] = []
        for _, versions in groupby(rows, key=lambda row: row.key):
            newest_first = sorted(versions, key=lambda row: row.age, reverse=True)
            ordered.append(newest_first[0]._replace(is_latest=True))
            ordered.extend(newest_first[1:])
        return ordered

    def resume(self, entry: VersionRow, upper: str | None, limit: int) -> list[VersionRow]:
        if upper is not None and entry.key >= upper:
            return []
        older = sorted(
            (row for row in self._key_versions(entry.key) if row.age < entry.age),
            key=lambda row: row.age,
            reverse=True,
        )
        return older + self.seek(entry.key, False, upper, limit)

    def marker(self, key: str, version_id: str) -> VersionRow | None:
        """The version a ``VersionIdMarker`` names, if ``key`` still has it."""
        row = self.db.execute(
            f"SELECT {self._COLUMNS} FROM s3_versions"
            " WHERE bucket = ? AND key = ? AND version_id = ?",
            (self.bucket, key, version_id),
        ).fetchone()
        return VersionRow(*row) if row else None


# --- request rules ---------------------------------------------------------------------------


def _invalid_argument(message: str, name: str, value: Any) -> AWSError:
    return AWSError(
        "InvalidArgument", message, 400, extra={"ArgumentName": name, "ArgumentValue": str(value)}
    )


def key_encoder(params: Params) -> Callable[[str], str]:
    """How keys and echoed values are written: as they are, or url-encoded on request."""
    encoding = params.get("EncodingType")
    if encoding is None:
        return lambda text: text
    if encoding != "url":
        raise _invalid_argument(
            "Invalid Encoding Method specified in Request", "encoding-type", encoding
        )
    return lambda text: quote_plus(text, safe="/")


def _max_keys(params: Params, negative_message: str, argument: str) -> int:
    """The page size asked for (default and cap 1000; S3 echoes what was asked)."""
    max_keys = params.get("MaxKeys")
    if max_keys is None:
        return MAX_KEYS
    if not 0 <= max_keys <= _INT32_MAX:
        raise _invalid_argument(negative_message, argument, max_keys)
    return int(max_keys)


def _item_name(item: Any) -> str:
    return item.prefix if isinstance(item, CommonPrefix) else item.key


async def _read_bucket(
    ctx: RequestContext, bucket: str, fn: Callable[[sqlite3.Connection], T]
) -> T:
    """``fn(db)`` in one snapshot, after checking in that snapshot that the bucket exists."""

    def read(db: sqlite3.Connection) -> tuple[bool, T | None]:
        if db.execute("SELECT 1 FROM s3_buckets WHERE name = ?", (bucket,)).fetchone() is None:
            return False, None
        return True, fn(db)

    found, result = await ctx.node.journal.read(read)
    if not found:
        raise no_such_bucket(bucket)
    return result  # type: ignore[return-value]


# --- response shapes -------------------------------------------------------------------------


def _owner(state: dict[str, Any]) -> dict[str, str]:
    return {"DisplayName": OWNER_DISPLAY_NAME, "ID": state["owner"]}


def _data_fields(state: dict[str, Any]) -> dict[str, Any]:
    """What Contents and Version entries share: ETag, checksum, size, storage class."""
    out: dict[str, Any] = {"ETag": quoted_etag(state), "Size": state["size"],
                           "StorageClass": state.get("storage_class", "STANDARD")}
    checksum = state.get("checksum")
    if checksum:
        out["ChecksumAlgorithm"] = [checksum["algorithm"]]
        out["ChecksumType"] = checksum["type"]
    return out


def _contents(row: ObjectRow, encode: Callable[[str], str], *, owner: bool) -> dict[str, Any]:
    state = unpack(row.state)
    out = {"Key": encode(row.key), "LastModified": last_modified(state), **_data_fields(state)}
    if owner:
        out["Owner"] = _owner(state)
    return out


def _version(row: VersionRow, encode: Callable[[str], str]) -> dict[str, Any]:
    state = unpack(row.state)
    out = {"Key": encode(row.key), "VersionId": row.version_id, "IsLatest": row.is_latest,
           "LastModified": last_modified(state), "Owner": _owner(state)}
    if not row.delete_marker:
        out.update(_data_fields(state))
    return out


def _page_members(
    params: Params, page: Page[Any], prefix: str, delimiter: str, max_keys: int,
    encode: Callable[[str], str],
) -> Params:
    """The members every listing answers with, besides its entries and markers."""
    out: Params = {
        "Name": params["Bucket"],
        "Prefix": encode(prefix),
        "MaxKeys": max_keys,
        "IsTruncated": page.truncated,
        "CommonPrefixes": [{"Prefix": encode(p)} for p in page.prefixes] or None,
    }
    if delimiter:  # S3 leaves out an empty delimiter
        out["Delimiter"] = encode(delimiter)
    if params.get("EncodingType") is not None:
        out["EncodingType"] = params["EncodingType"]
    return out


async def _list_current(
    ctx: RequestContext, params: Params, after: str, *, owner: bool
) -> tuple[Params, Page[ObjectRow]]:
    """The page of current objects, with the members ListObjects and ListObjectsV2 share."""
    bucket, encode = params["Bucket"], key_encoder(params)
    max_keys = _max_keys(params, _MAX_KEYS_RANGE, "maxKeys")
    prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""

    def read(db: sqlite3.Connection) -> tuple[Page[ObjectRow], list[dict[str, Any]]]:
        page = walk(ObjectSource(db, bucket), prefix=prefix, delimiter=delimiter, after=after,
                    max_keys=min(max_keys, MAX_KEYS))
        return page, [_contents(row, encode, owner=owner) for row in page.entries]

    page, contents = await _read_bucket(ctx, bucket, read)
    out = _page_members(params, page, prefix, delimiter, max_keys, encode)
    out["Contents"] = contents or None
    return out, page


# --- handlers --------------------------------------------------------------------------------


async def list_objects_v2(ctx: RequestContext, params: Params) -> Params:
    token = params.get("ContinuationToken")
    start_after = params.get("StartAfter")
    after = resume_after(_V2_TOKEN, token) if token is not None else start_after or ""
    out, page = await _list_current(ctx, params, after, owner=bool(params.get("FetchOwner")))
    out["KeyCount"] = len(page.items)
    if token is not None:
        out["ContinuationToken"] = token
    if start_after is not None:
        out["StartAfter"] = key_encoder(params)(start_after)
    if page.truncated:
        out["NextContinuationToken"] = continuation_token(_V2_TOKEN, _item_name(page.last))
    return out


async def list_objects(ctx: RequestContext, params: Params) -> Params:
    """ListObjects (v1): ``Marker`` is a plain key; ``NextMarker`` only with a delimiter."""
    marker = params.get("Marker") or ""
    out, page = await _list_current(ctx, params, marker, owner=True)
    encode = key_encoder(params)
    out["Marker"] = encode(marker)
    if page.truncated and params.get("Delimiter"):
        out["NextMarker"] = encode(_item_name(page.last))
    return out


async def list_object_versions(ctx: RequestContext, params: Params) -> Params:
    """Versions and delete markers, keys in order and newest first within a key.

    ``KeyMarker`` alone starts after every version of that key; with ``VersionIdMarker`` it
    starts after that version. A marker version that no longer exists starts after the key.
    """
    bucket, encode = params["Bucket"], key_encoder(params)
    max_keys = _max_keys(params, "max-keys cannot be negative", "max-keys")
    prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""
    key_marker = params.get("KeyMarker") or ""
    version_marker = params.get("VersionIdMarker") or ""
    if version_marker and not key_marker:
        raise _invalid_argument(
            "A version-id marker cannot be specified without a key marker.", "version-id-marker",
            version_marker,
        )
    if version_marker:
        try:
            check_version_id(version_marker)
        except AWSError:
            raise _invalid_argument(
                "Invalid version id specified", "version-id-marker", version_marker
            ) from None

    def read(db: sqlite3.Connection) -> tuple[Page[VersionRow], list[Params], list[Params]]:
        source = VersionSource(db, bucket)
        start = source.marker(key_marker, version_marker) if version_marker else None
        page = walk(source, prefix=prefix, delimiter=delimiter, after=key_marker, after_entry=start,
                    max_keys=min(max_keys, MAX_KEYS))
        versions = [_version(row, encode) for row in page.entries if not row.delete_marker]
        markers = [_version(row, encode) for row in page.entries if row.delete_marker]
        return page, versions, markers

    page, versions, markers = await _read_bucket(ctx, bucket, read)
    out = _page_members(params, page, prefix, delimiter, max_keys, encode)
    out.update(KeyMarker=encode(key_marker), VersionIdMarker=version_marker,
               Versions=versions or None, DeleteMarkers=markers or None)
    if page.truncated:
        last = page.last
        out["NextKeyMarker"] = encode(_item_name(last))
        if isinstance(last, VersionRow):
            out["NextVersionIdMarker"] = last.version_id
    return out


HANDLERS = {
    "ListObjectsV2": list_objects_v2,
    "ListObjects": list_objects,
    "ListObjectVersions": list_object_versions,
}
