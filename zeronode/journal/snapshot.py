"""Snapshots: a whole journal database, copied out of a running node and swapped into another.

Theory of operation
-------------------
A node whose version vector lies below a peer's compaction floor cannot catch up from logs:
the events it lacks are gone (``compaction.py``). It installs a snapshot instead, the peer's
whole database (log, vector, winners, projections, floor marks), which stands for every event
the peer held, and then follows the logs from there.

Taking one. SQLite's online backup API copies the database a bounded number of pages at a
time from one of the journal's read-only connections, inside a single read transaction: in WAL
mode the writer goes on committing meanwhile, and the copy is exactly the database as of that
transaction, whose version vector is the snapshot's ``position``. The copy is switched to
rollback-journal mode (one self-contained file, no ``-wal``), fsync'd, hashed (SHA-256 of the
file's bytes) and renamed into place.

Installing one. The file is copied beside the database while its hash is checked (so it lies
on the database's filesystem, and the caller's file is left alone), then opened once to check
its structure and read its manifest (node id, vector, clock). It is refused unless its vector
covers ours for every origin but our own, or installing it would lose events. Our own origin
is the exception because we are the source of its events: those above the snapshot's vector
are read from the current database and appended to the new one.

The swap is one job the writer runs alone, while the journal holds every reader slot (no read
is in flight, the readers are closed). In this order:

1. adopt: in one transaction on the staged copy, set ``journal_meta`` to this node's id (the
   peer's never reaches our database) and the clock to the later of both, append and fold our
   own missing events, and fold the quarantined events our projections understand.
2. checkpoint the current database (``wal_checkpoint(TRUNCATE)``: every commit is in its main
   file, fsync'd), close the write connection, remove the emptied ``-wal`` and the ``-shm``:
   a WAL left beside the new file would be replayed into it.
3. rename the staged copy over the database and fsync the directory: the commit point.
4. reopen the write connection (WAL mode again), reload vector, floor and clock; the readers
   reopen.

A crash before step 3 leaves the old database, whole in its main file (the steps before only
checkpoint it); a crash after leaves the new one, already carrying this node's identity and
events. A staged copy a crash leaves behind is removed at the next open.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zeronode.journal.event import NODE_ID_PATTERN, Event
from zeronode.journal.projection import ProjectionSet
from zeronode.journal.store import (
    EVENT_COLUMNS,
    SCHEMA,
    Store,
    append_event,
    fold_event,
    refold_quarantine,
)
from zeronode.storage.disks import fsync_dir

log = logging.getLogger("zeronode.journal")

BACKUP_PAGES = 1024  # pages copied per backup step
COPY_BLOCK = 1 << 20
_STAGING_INFIX = ".install-"


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot file: where it is, its size and SHA-256 (hex), the version vector it holds
    and the node it was taken from."""

    path: Path
    size: int
    sha256: str
    position: dict[str, int]
    node_id: str


@dataclass(frozen=True)
class SnapshotManifest:
    """What a snapshot file says about itself: its node, vector and persisted clock."""

    node_id: str
    position: dict[str, int]
    hlc: int


class SnapshotRejected(ValueError):
    """A snapshot that cannot be installed (wrong hash, not a journal, or it would lose events
    this node holds); the journal is unchanged."""


# -- taking a snapshot ---------------------------------------------------------------------------


def write_snapshot(db: sqlite3.Connection, dest: Path) -> SnapshotInfo:
    """Back the database of ``db`` up into ``dest``; call it in a read transaction (``Journal.
    read``), whose snapshot the first query here fixes and the backup copies."""
    manifest = manifest_of(db)
    temporary = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")
    try:
        target = sqlite3.connect(temporary, isolation_level=None)
        try:
            db.backup(target, pages=BACKUP_PAGES)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
        with open(temporary, "rb") as copy:
            size, digest = _hash(copy)
            os.fsync(copy.fileno())
        os.replace(temporary, dest)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return SnapshotInfo(dest, size, digest, manifest.position, manifest.node_id)


def manifest_of(db: sqlite3.Connection) -> SnapshotManifest:
    """The node id, version vector and clock a journal database holds."""
    meta = dict(db.execute("SELECT key, value FROM journal_meta"))
    node_id, hlc = meta.get("node_id"), meta.get("hlc", 0)
    if not isinstance(node_id, str) or not NODE_ID_PATTERN.fullmatch(node_id):
        raise SnapshotRejected(f"no valid node id in the journal: {node_id!r}")
    if not isinstance(hlc, int):
        raise SnapshotRejected(f"no valid clock in the journal: {hlc!r}")
    position = dict(db.execute("SELECT origin, seq FROM journal_version_vector"))
    return SnapshotManifest(node_id, position, hlc)


# -- installing one: the steps -------------------------------------------------------------------


def staging_path(database: Path) -> Path:
    """A fresh name beside ``database`` for a snapshot about to be installed."""
    return database.with_name(f".{database.name}{_STAGING_INFIX}{secrets.token_hex(8)}")


def remove_staged(database: Path) -> None:
    """Remove staged copies a crash left beside ``database`` (call with the journal's lock)."""
    for leftover in database.parent.glob(f".{database.name}{_STAGING_INFIX}*"):
        leftover.unlink(missing_ok=True)


def stage_snapshot(source: Path, staged: Path, sha256: str) -> SnapshotManifest:
    """Copy ``source`` to ``staged`` checking its SHA-256, then check it is a sound journal
    database; raises ``SnapshotRejected`` otherwise."""
    with open(source, "rb") as original, open(staged, "xb") as copy:
        hasher = hashlib.sha256()
        while block := original.read(COPY_BLOCK):
            hasher.update(block)
            copy.write(block)
        copy.flush()
        os.fsync(copy.fileno())
    if not hmac.compare_digest(hasher.hexdigest(), sha256.lower()):
        raise SnapshotRejected(f"snapshot {source} does not have SHA-256 {sha256}")
    return read_manifest(staged)


def read_manifest(path: Path) -> SnapshotManifest:
    """The manifest of the journal database at ``path``, after an integrity check."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise SnapshotRejected(f"snapshot {path} is damaged: {verdict}")
            return manifest_of(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        raise SnapshotRejected(f"snapshot {path} is not a journal database: {error}") from error


def check_dominates(position: Mapping[str, int], held: Mapping[str, int], node_id: str) -> None:
    """Refuse a snapshot whose vector lacks events this node holds, its own origin aside."""
    lacking = {
        origin: (position.get(origin, 0), seq)
        for origin, seq in held.items()
        if origin != node_id and position.get(origin, 0) < seq
    }
    if lacking:
        detail = ", ".join(f"{o}: {has} < {need}" for o, (has, need) in sorted(lacking.items()))
        raise SnapshotRejected(f"the snapshot lacks events this node holds ({detail})")


def own_events_above(db: sqlite3.Connection, node_id: str, after: int, held: int) -> list[Event]:
    """This node's events with seq in ``(after, held]``; refuses if some are gone."""
    events = [
        Event(*row)
        for row in db.execute(
            f"SELECT {EVENT_COLUMNS} FROM journal_events WHERE origin = ? AND seq > ?"
            " ORDER BY seq",
            (node_id, after),
        )
    ]
    if [event.seq for event in events] != list(range(after + 1, held + 1)):
        raise SnapshotRejected(
            f"this node's events after seq {after} are partly compacted: the snapshot is too old"
        )
    return events


def adopt(
    staged: Path,
    node_id: str,
    own_events: Sequence[Event],
    hlc: int,
    projections: ProjectionSet,
) -> None:
    """Make the staged database this node's: its id and clock, its own ``own_events``, the
    quarantine folded by ``projections``; one transaction, leaving a single-file database."""
    db = sqlite3.connect(staged, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA:
            db.execute(statement)
        projections.create_schema(db)
        db.execute("INSERT OR REPLACE INTO journal_meta VALUES ('node_id', ?)", (node_id,))
        db.execute("INSERT OR REPLACE INTO journal_meta VALUES ('hlc', ?)", (hlc,))
        for event in own_events:
            append_event(db, event)
            fold_event(db, projections, event, total=True)
        refold_quarantine(db, projections)
        db.execute("COMMIT")
    finally:
        db.close()


def checkpoint(db: sqlite3.Connection) -> None:
    """Move every commit of the WAL into the main file (fsync'd) and empty the WAL."""
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise RuntimeError("cannot checkpoint the journal: another connection is reading")


def replace_database(staged: Path, database: Path) -> None:
    """Remove the closed ``database``'s WAL files, rename ``staged`` over it, fsync the
    directory. The old database must have been checkpointed and closed."""
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    os.replace(staged, database)
    fsync_dir(database.parent)


def install_staged(store: Store, staged: Path, manifest: SnapshotManifest) -> None:
    """The writer's job (run alone, with every reader closed): steps 1 to 4 above."""
    node_id = store.node_id
    check_dominates(manifest.position, store.vv, node_id)
    own = own_events_above(
        store.db, node_id, manifest.position.get(node_id, 0), store.vv.get(node_id, 0)
    )
    adopt(staged, node_id, own, max(store.clock.last, manifest.hlc), store.projections)
    checkpoint(store.db)
    store.db.close()
    try:
        replace_database(staged, store.path)
    finally:
        store.reopen()
    log.info(
        "journal.snapshot_installed source=%s origins=%d own_events_kept=%d",
        manifest.node_id, len(manifest.position), len(own),
    )


def _hash(file: BinaryIO) -> tuple[int, str]:
    hasher, size = hashlib.sha256(), 0
    while block := file.read(COPY_BLOCK):
        hasher.update(block)
        size += len(block)
    return size, hasher.hexdigest()
