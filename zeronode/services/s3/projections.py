"""The S3 journal entities and their projections (the tables S3 handlers read).

Entities (each an LWW register; the event payload is the entity's whole state):

- ``s3/bucket/<bucket>``                          kind ``s3.bucket``         -> ``s3_buckets``
- ``s3/bucket-config/<bucket>/<name>``            kind ``s3.bucket_config``  -> ``s3_bucket_configs``
  one register per bucket sub-resource (``versioning``, ``cors``, ``tagging``...), as AWS
  replaces each sub-resource whole.
- ``s3/object/<bucket>/<version id>/<key>``       kind ``s3.object``         -> ``s3_versions``
  one register per object version; an unversioned write is the version ``null``, so
  overwriting a key overwrites the same register. Delete markers are versions too.
- ``s3/upload/<bucket>/<upload id>``              kind ``s3.upload``         -> ``s3_uploads``
- ``s3/part/<bucket>/<upload id>/<part number>``  kind ``s3.part``           -> ``s3_parts``

Bucket names, version ids and upload ids never contain ``/``, so the key (last, and free to
contain anything, ``/`` included) is recovered exactly by splitting a bounded number of times.

``s3_objects`` is derived, not an entity: for each key, the newest version (greatest ``ord``)
when it is not a delete marker. The object projection recomputes it from that key's version
rows after every change, so it is a function of the set of versions and does not depend on
the order events arrive in. Listings read it; version listings read ``s3_versions``.

The object state (what handlers write and read back), for a version that holds data::

    {"bucket", "key", "version_id" ("null" or an id), "ord" (sortable, newest greatest),
     "delete_marker": False, "last_modified_ms": int, "owner": canonical user id,
     "size": int, "etag": "hex" or "hex-N" (no quotes), "storage_class": "STANDARD",
     "content": {"ContentType": ..., "ContentEncoding": ..., "ContentDisposition": ...,
                 "CacheControl": ..., "ContentLanguage": ..., "Expires": raw header text},
     "metadata": {name: value}, "tags": {key: value},
     "checksum": {"algorithm": "CRC32", "value": base64, "type": "FULL_OBJECT"|"COMPOSITE"} or None,
     "parts": [{"size": int, "checksum": base64 or None}] or None   (multipart objects),
     "segments": [{"node": id, "disk": id, "blob": id, "size": int}]  (the bytes, in order)}

A delete marker has ``delete_marker: True`` and only the identifying fields.
For a multipart object, ``checksum.value`` of a COMPOSITE checksum ends in ``-N``.

A multipart upload's state (``multipart.py``) and each of its parts'::

    upload: {"key", "initiated_ms", "owner", "content", "metadata", "tags", "storage_class",
             "checksum": {"algorithm", "type", "requested": bool}}
    part:   {"size", "etag" (hex), "last_modified_ms",
             "checksum": {"algorithm", "value"}, "segment": one segment, as above}

A part's blob is referenced by its ``segment`` until the upload is completed (then by the
object's ``segments``) or aborted.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgpack

from zeronode.journal import entity_fields

BUCKET_KIND = "s3.bucket"
BUCKET_CONFIG_KIND = "s3.bucket_config"
OBJECT_KIND = "s3.object"
UPLOAD_KIND = "s3.upload"
PART_KIND = "s3.part"


def bucket_entity(bucket: str) -> str:
    return f"s3/bucket/{bucket}"


def bucket_config_entity(bucket: str, name: str) -> str:
    return f"s3/bucket-config/{bucket}/{name}"


def object_entity(bucket: str, version_id: str, key: str) -> str:
    return f"s3/object/{bucket}/{version_id}/{key}"


def upload_entity(bucket: str, upload_id: str) -> str:
    return f"s3/upload/{bucket}/{upload_id}"


def part_entity(bucket: str, upload_id: str, part_number: int) -> str:
    return f"s3/part/{bucket}/{upload_id}/{part_number}"


def pack(state: dict[str, Any]) -> bytes:
    return msgpack.packb(state, use_bin_type=True)


def unpack(blob: bytes) -> dict[str, Any]:
    return msgpack.unpackb(blob, raw=False)


class BucketProjection:
    """``s3_buckets``: one row per live bucket."""

    kind = BUCKET_KIND
    schema = (
        "CREATE TABLE IF NOT EXISTS s3_buckets ("
        " name TEXT PRIMARY KEY, region TEXT NOT NULL, created_ms INTEGER NOT NULL,"
        " owner TEXT NOT NULL) WITHOUT ROWID",
    )

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        (name,) = entity_fields(entity, "s3/bucket/", 1)
        if state is None:
            db.execute("DELETE FROM s3_buckets WHERE name = ?", (name,))
        else:
            db.execute(
                "INSERT OR REPLACE INTO s3_buckets (name, region, created_ms, owner) VALUES (?, ?, ?, ?)",
                (name, state["region"], state["created_ms"], state["owner"]),
            )


class BucketConfigProjection:
    """``s3_bucket_configs``: one row per (bucket, sub-resource) that is set."""

    kind = BUCKET_CONFIG_KIND
    schema = (
        "CREATE TABLE IF NOT EXISTS s3_bucket_configs ("
        " bucket TEXT NOT NULL, name TEXT NOT NULL, state BLOB NOT NULL,"
        " PRIMARY KEY (bucket, name)) WITHOUT ROWID",
    )

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        bucket, name = entity_fields(entity, "s3/bucket-config/", 2)
        if state is None:
            db.execute("DELETE FROM s3_bucket_configs WHERE bucket = ? AND name = ?", (bucket, name))
        else:
            db.execute(
                "INSERT OR REPLACE INTO s3_bucket_configs (bucket, name, state) VALUES (?, ?, ?)",
                (bucket, name, pack(state)),
            )


class ObjectProjection:
    """``s3_versions`` (every version and delete marker) and the derived ``s3_objects``."""

    kind = OBJECT_KIND
    schema = (
        "CREATE TABLE IF NOT EXISTS s3_versions ("
        " bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL, ord TEXT NOT NULL,"
        " delete_marker INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,"
        " last_modified_ms INTEGER NOT NULL, state BLOB NOT NULL,"
        " PRIMARY KEY (bucket, key, version_id)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS s3_versions_by_order ON s3_versions (bucket, key, ord)",
        "CREATE TABLE IF NOT EXISTS s3_objects ("
        " bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,"
        " size INTEGER NOT NULL, etag TEXT NOT NULL, last_modified_ms INTEGER NOT NULL,"
        " storage_class TEXT NOT NULL, state BLOB NOT NULL,"
        " PRIMARY KEY (bucket, key)) WITHOUT ROWID",
    )

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        bucket, version_id, key = entity_fields(entity, "s3/object/", 3)
        if state is None:
            db.execute(
                "DELETE FROM s3_versions WHERE bucket = ? AND key = ? AND version_id = ?",
                (bucket, key, version_id),
            )
        else:
            marker = bool(state.get("delete_marker"))
            db.execute(
                "INSERT OR REPLACE INTO s3_versions (bucket, key, version_id, ord, delete_marker,"
                " size, etag, last_modified_ms, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bucket, key, version_id, state["ord"], int(marker),
                    0 if marker else state["size"], "" if marker else state["etag"],
                    state["last_modified_ms"], pack(state),
                ),
            )
        self._refresh_latest(db, bucket, key)

    @staticmethod
    def _refresh_latest(db: sqlite3.Connection, bucket: str, key: str) -> None:
        newest = db.execute(
            "SELECT version_id, delete_marker, size, etag, last_modified_ms, state FROM s3_versions"
            " WHERE bucket = ? AND key = ? ORDER BY ord DESC, version_id DESC LIMIT 1",
            (bucket, key),
        ).fetchone()
        if newest is None or newest[1]:
            db.execute("DELETE FROM s3_objects WHERE bucket = ? AND key = ?", (bucket, key))
            return
        version_id, _, size, etag, last_modified_ms, blob = newest
        storage_class = unpack(blob).get("storage_class", "STANDARD")
        db.execute(
            "INSERT OR REPLACE INTO s3_objects (bucket, key, version_id, size, etag,"
            " last_modified_ms, storage_class, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (bucket, key, version_id, size, etag, last_modified_ms, storage_class, blob),
        )


class UploadProjection:
    """``s3_uploads``: multipart uploads in progress (created, neither completed nor aborted)."""

    kind = UPLOAD_KIND
    schema = (
        "CREATE TABLE IF NOT EXISTS s3_uploads ("
        " bucket TEXT NOT NULL, upload_id TEXT NOT NULL, key TEXT NOT NULL,"
        " initiated_ms INTEGER NOT NULL, state BLOB NOT NULL,"
        " PRIMARY KEY (bucket, upload_id)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS s3_uploads_by_key ON s3_uploads (bucket, key, initiated_ms)",
    )

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        bucket, upload_id = entity_fields(entity, "s3/upload/", 2)
        if state is None:
            db.execute("DELETE FROM s3_uploads WHERE bucket = ? AND upload_id = ?", (bucket, upload_id))
        else:
            db.execute(
                "INSERT OR REPLACE INTO s3_uploads (bucket, upload_id, key, initiated_ms, state)"
                " VALUES (?, ?, ?, ?, ?)",
                (bucket, upload_id, state["key"], state["initiated_ms"], pack(state)),
            )


class PartProjection:
    """``s3_parts``: the parts uploaded so far, per upload."""

    kind = PART_KIND
    schema = (
        "CREATE TABLE IF NOT EXISTS s3_parts ("
        " bucket TEXT NOT NULL, upload_id TEXT NOT NULL, part_number INTEGER NOT NULL,"
        " size INTEGER NOT NULL, etag TEXT NOT NULL, last_modified_ms INTEGER NOT NULL,"
        " state BLOB NOT NULL, PRIMARY KEY (bucket, upload_id, part_number)) WITHOUT ROWID",
    )

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        bucket, upload_id, number = entity_fields(entity, "s3/part/", 3)
        if state is None:
            db.execute(
                "DELETE FROM s3_parts WHERE bucket = ? AND upload_id = ? AND part_number = ?",
                (bucket, upload_id, int(number)),
            )
        else:
            db.execute(
                "INSERT OR REPLACE INTO s3_parts (bucket, upload_id, part_number, size, etag,"
                " last_modified_ms, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (bucket, upload_id, int(number), state["size"], state["etag"],
                 state["last_modified_ms"], pack(state)),
            )


PROJECTIONS = (
    BucketProjection(),
    BucketConfigProjection(),
    ObjectProjection(),
    UploadProjection(),
    PartProjection(),
)
