"""Object versions: which register a write or delete touches, by the bucket's versioning state.

S3's rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html):

- never enabled: a PUT replaces the ``null`` version; a DELETE removes it (no marker);
- Enabled: a PUT adds a version with a new id; a DELETE without a version id adds a delete
  marker with a new id;
- Suspended: a PUT replaces the ``null`` version, wherever it sits in the history, and makes
  it the newest; a DELETE without a version id puts a ``null`` delete marker in its place;
- a DELETE with a version id removes that version (or marker) for good, in every state.

Every function here runs inside a journal mutation (on the writer thread, in the open
transaction), so the check and the write are atomic on the node. They return the changes to
commit and the states they replace, whose bytes the caller frees once the commit is durable.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from zeronode.aws.errors import AWSError
from zeronode.journal import Change
from zeronode.services.s3.projections import OBJECT_KIND, bucket_config_entity, object_entity, unpack

NULL_VERSION = "null"
VERSIONING = "versioning"
_VERSION_ID = re.compile(r"^[0-9a-f]{32}$")


class _OrderClock:
    """Sortable, strictly increasing version orders: 12 hex of ms, 4 of counter, 16 random.

    The random tail keeps orders made on different nodes apart; the first 16 characters make
    lexicographic order follow time, which is what "newest version" means.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def next(self) -> str:
        with self._lock:
            now = int(time.time() * 1000)
            if now > self._last_ms:
                self._last_ms, self._counter = now, 0
            else:
                self._counter += 1
                if self._counter > 0xFFFF:
                    self._last_ms, self._counter = self._last_ms + 1, 0
            return f"{self._last_ms:012x}{self._counter:04x}{secrets.token_hex(8)}"


new_order = _OrderClock().next


def check_version_id(version_id: str) -> None:
    """S3 refuses a version id it could never have issued."""
    if version_id != NULL_VERSION and not _VERSION_ID.match(version_id):
        raise AWSError("InvalidArgument", "Invalid version id specified", 400,
                       extra={"ArgumentName": "versionId", "ArgumentValue": version_id})


def versioning_status(db: sqlite3.Connection, bucket: str) -> str | None:
    """``Enabled``, ``Suspended`` or None (never enabled)."""
    row = db.execute(
        "SELECT state FROM s3_bucket_configs WHERE bucket = ? AND name = ?", (bucket, VERSIONING)
    ).fetchone()
    return unpack(row[0]).get("Status") if row else None


def version_state(db: sqlite3.Connection, bucket: str, key: str, version_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT state FROM s3_versions WHERE bucket = ? AND key = ? AND version_id = ?",
        (bucket, key, version_id),
    ).fetchone()
    return unpack(row[0]) if row else None


def newest_state(db: sqlite3.Connection, bucket: str, key: str) -> dict[str, Any] | None:
    """The newest version of ``key``, which may be a delete marker; None if it has none."""
    row = db.execute(
        "SELECT state FROM s3_versions WHERE bucket = ? AND key = ?"
        " ORDER BY ord DESC, version_id DESC LIMIT 1",
        (bucket, key),
    ).fetchone()
    return unpack(row[0]) if row else None


def current_state(db: sqlite3.Connection, bucket: str, key: str) -> dict[str, Any] | None:
    """What a GET without a version id returns: the newest version unless it is a marker."""
    row = db.execute("SELECT state FROM s3_objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
    return unpack(row[0]) if row else None


@dataclass
class VersionWrite:
    """The outcome of a write or delete: what to commit, what it answers, what bytes it frees."""

    changes: list[Change] = field(default_factory=list)
    state: dict[str, Any] | None = None
    replaced: list[dict[str, Any]] = field(default_factory=list)


def _write_newest(
    db: sqlite3.Connection, bucket: str, key: str, status: str | None, fields: dict[str, Any]
) -> VersionWrite:
    """Make ``fields`` the newest version of ``key``: a fresh version id when versioning is
    Enabled, else the ``null`` version, replacing the one that was there (its bytes are the
    caller's to free after the commit)."""
    order = new_order()
    version_id = order if status == "Enabled" else NULL_VERSION
    state = {**fields, "bucket": bucket, "key": key, "version_id": version_id, "ord": order}
    write = VersionWrite([Change(object_entity(bucket, version_id, key), OBJECT_KIND, state)], state)
    if version_id == NULL_VERSION:
        previous = version_state(db, bucket, key, NULL_VERSION)
        if previous is not None:
            write.replaced.append(previous)
    return write


def put_version(db: sqlite3.Connection, bucket: str, key: str, fields: dict[str, Any]) -> VersionWrite:
    """Store ``fields`` (an object state without ids) as the newest version of ``key``."""
    status = versioning_status(db, bucket)
    return _write_newest(db, bucket, key, status, {**fields, "delete_marker": False})


def delete_version(
    db: sqlite3.Connection, bucket: str, key: str, version_id: str | None, *, owner: str, now_ms: int
) -> VersionWrite:
    """DeleteObject's effect; ``write.state`` is the removed version or the new marker."""
    if version_id is not None:
        check_version_id(version_id)
        existing = version_state(db, bucket, key, version_id)
        if existing is None:
            return VersionWrite()  # S3 answers 204 for a version that is not there
        return VersionWrite(
            [Change(object_entity(bucket, version_id, key), OBJECT_KIND, None)], existing, [existing]
        )
    status = versioning_status(db, bucket)
    if status is None:
        existing = version_state(db, bucket, key, NULL_VERSION)
        if existing is None:
            return VersionWrite()
        return VersionWrite(
            [Change(object_entity(bucket, NULL_VERSION, key), OBJECT_KIND, None)], None, [existing]
        )
    marker = {"delete_marker": True, "last_modified_ms": now_ms, "owner": owner}
    return _write_newest(db, bucket, key, status, marker)


def set_versioning(bucket: str, status: str, mfa_delete: str | None = None) -> Change:
    state: dict[str, Any] = {"Status": status}
    if mfa_delete is not None:
        state["MFADelete"] = mfa_delete
    return Change(bucket_config_entity(bucket, VERSIONING), "s3.bucket_config", state)


def segments_of(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The byte segments that ``states`` held (delete markers hold none)."""
    return [seg for state in states if not state.get("delete_marker") for seg in state.get("segments", ())]
