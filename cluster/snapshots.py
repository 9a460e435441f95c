"""Snapshot transfer between nodes: serving ``repl.snapshot``, fetching and installing one.

Theory of operation
-------------------
A node whose version vector lies below a peer's compaction floor is refused that origin's
events (``BehindFloor``): what it lacks is gone from every log that compacted. It fetches the
peer's whole journal instead and installs it (``zeronode.journal.snapshot``), then follows
the logs from the snapshot's position like any node.

The transfer is one bulk stream (its own connection, so it delays no ping or request). The
fetcher sends an empty body; the server writes a fresh snapshot to a temporary file, answers
with a first chunk holding a msgpack header ``{"sha256": hex, "size": bytes, "position":
{origin: seq}}``, then the file's bytes, and deletes the file. The fetcher streams the body
into a temporary file of its own, so memory stays bounded by one chunk whatever the size,
refuses a body longer or shorter than announced, and hands the file to
``Journal.install_snapshot``, which checks the hash before it touches anything.

A server makes one snapshot at a time (each is a full copy of the database on disk); another
fetcher waits its turn. The transport puts no deadline on a bulk body: a caller that wants one
wraps ``fetch_snapshot`` in a trio timeout.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import trio

from cluster.peers import Peers
from cluster.transport import BulkStream
from zeronode.journal import Journal, SnapshotInfo, SnapshotRejected

__all__ = ["SNAPSHOT_METHOD", "fetch_snapshot", "serve_snapshots"]

log = logging.getLogger("cluster.snapshots")

SNAPSHOT_METHOD = "repl.snapshot"
READ_CHUNK = 256 * 1024
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class _Header:
    sha256: str
    size: int
    position: dict[str, int]


def serve_snapshots(peers: Peers, journal: Journal, *, tmp_dir: Path | None = None) -> None:
    """Serve ``repl.snapshot``: each request gets a fresh snapshot of ``journal``, written to
    ``tmp_dir`` (by default the journal's directory) and deleted once sent."""
    directory = journal.path.parent if tmp_dir is None else tmp_dir
    one_at_a_time = trio.Lock()

    async def serve(peer_id: str, header: Any, bulk: BulkStream) -> None:
        async with one_at_a_time:
            dest = directory / f".{journal.path.name}.serve-{secrets.token_hex(8)}"
            try:
                info = await journal.snapshot(dest)
                await bulk.send(
                    msgpack.packb(
                        {"sha256": info.sha256, "size": info.size, "position": info.position}
                    )
                )
                async with await trio.open_file(dest, "rb") as file:
                    while block := await file.read(READ_CHUNK):
                        await bulk.send(block)
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(partial(dest.unlink, missing_ok=True))
        log.info("snapshots.served peer=%s size=%d", peer_id, info.size)

    peers.on_bulk(SNAPSHOT_METHOD, serve)


async def fetch_snapshot(
    peers: Peers, peer_id: str, journal: Journal, tmp_dir: Path
) -> SnapshotInfo:
    """Fetch ``peer_id``'s snapshot through ``tmp_dir`` and install it into ``journal``.

    Returns what was installed (``path`` is the journal's database, which it now is). Raises
    ``TransportError`` if the transfer fails and ``SnapshotRejected`` (a ``ValueError``) if the
    snapshot is malformed or cannot be installed; the journal is then unchanged.
    """
    path = tmp_dir / f".snapshot-{peer_id}-{secrets.token_hex(8)}"
    try:
        async with peers.open_bulk(peer_id, SNAPSHOT_METHOD, {}) as bulk:
            await bulk.send_eof()
            header = _parse_header(await bulk.receive())
            received = 0
            async with await trio.open_file(path, "xb") as file:
                async for chunk in bulk:
                    received += len(chunk)
                    if received > header.size:
                        raise SnapshotRejected(f"snapshot from {peer_id} exceeds {header.size} B")
                    await file.write(chunk)
            if received != header.size:
                raise SnapshotRejected(
                    f"snapshot from {peer_id} ended at {received} of {header.size} bytes"
                )
        await journal.install_snapshot(path, sha256=header.sha256)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(partial(path.unlink, missing_ok=True))
    log.info("snapshots.installed peer=%s size=%d", peer_id, header.size)
    return SnapshotInfo(journal.path, header.size, header.sha256, header.position, peer_id)


def _parse_header(chunk: bytes) -> _Header:
    """The first chunk of a snapshot body; raises ``SnapshotRejected`` if it is not one."""
    try:
        if len(chunk) > MAX_HEADER_BYTES:
            raise ValueError("oversized")
        header = msgpack.unpackb(chunk)
        sha256, size, position = header["sha256"], header["size"], header["position"]
    except (ValueError, TypeError, KeyError) as error:
        raise SnapshotRejected(f"malformed snapshot header: {error!r}") from error
    if (
        not isinstance(sha256, str)
        or len(sha256) != 64
        or not isinstance(size, int)
        or size < 0
        or not isinstance(position, dict)
        or not all(isinstance(o, str) and isinstance(s, int) for o, s in position.items())
    ):
        raise SnapshotRejected(f"malformed snapshot header: {header!r:.200}")
    return _Header(sha256, size, dict(position))
