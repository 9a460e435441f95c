"""Copies of object bytes on other nodes: made after a write, re-made when lost, read from.

Theory of operation
-------------------
A blob is written once, on the node that took the upload (its *origin*, the ``node`` of the
segment the journal records). With ``--replicas N`` the cluster keeps ``min(N, voters)``
*holders* of every blob the projections reference:

- **Same id everywhere.** A copy is stored under the blob's own id (on whichever local disk
  has room), so the segment in the journal stays valid on every node; a node finds its copy
  with ``BlobStore.locate``. Copies travel by content over the bulk connection: ``blob.put``
  carries the id, size and SHA-256, and the receiver stores the body durably, checks both,
  and only then records itself as a holder.
- **Holders are journal facts.** Each node records the copies *it* holds as the entity
  ``blob/replica/<blob>/<node>`` (kind ``blob.replica``, table ``blob_replicas``) and
  tombstones it when it deletes the copy. Only the holder writes its own register, so the
  LWW fold never has two writers to reconcile. The holders of a blob are its origin plus
  those rows; a node removed from the cluster stops counting because only current voters do.
- **Copies are made in the background.** ``schedule`` (called once a write is acknowledged)
  queues the new blobs without waiting; worker tasks push each to the voters that lack it,
  picked by rendezvous hashing so copies spread evenly. A missed or failed copy is found by
  the *scrub*.
- **The scrub** (every ~30 s, jittered) walks every referenced blob. One that has fewer
  holders among the voters than wanted is re-copied by exactly one node: the lowest node id
  among the holders this node can reach, itself included. The origin counts as a holder
  without a row, so when it loses its own copy (a disk died) only it can tell: its scrub
  fetches the blob back from another holder. Two nodes that disagree on
  reachability may both push; the receiver keeps one copy, so that costs bandwidth only.
- **Garbage collection** happens in the same walk: a local blob no projection references,
  written longer than ``gc_margin`` ago (10 min) and not being received, is deleted and its
  row tombstoned. The margin covers a blob durable but not yet committed (the PUT path), and
  a copy that arrived before the event referencing it (replication lag). No GC runs during
  the first ``gc_margin`` after start, while this node's journal may still be catching up.
- **Reads** use the local copy when there is one; otherwise ``blob.read`` streams the range
  from a holder, reachable ones first. If a holder fails part-way, the next one continues
  from the byte reached, so a GET succeeds while any holder lives, in flat memory.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from cluster.forwarding import forward, serve_forwarded
from cluster.peers import Peers
from cluster.transport import RemoteError, RequestTimeout, TransportError
from zeronode.aws.errors import AWSError
from zeronode.journal import Change, entity_fields
from zeronode.logs import get_logger
from zeronode.storage.blobs import BlobRef, BlobStore, is_blob_id
from zeronode.storage.reader import BytesUnavailable

__all__ = [
    "PUT_METHOD",
    "READ_METHOD",
    "REPLICA_KIND",
    "BlobReplicas",
    "Catalog",
    "ReplicaProjection",
    "ScrubReport",
    "replica_entity",
]

_log = get_logger(__name__)

REPLICA_KIND = "blob.replica"
READ_METHOD = "blob.read"
PUT_METHOD = "blob.put"

Segment = Mapping[str, Any]
"""``{"node", "disk", "blob", "size"}``: where an object's bytes were written."""

Catalog = Callable[[Any], Awaitable[Mapping[str, Segment]]]
"""``async catalog(journal) -> {blob id: segment}`` for every blob the projections reference
(the S3 service's ``segments.blob_catalog``); injected, as storage does not know services."""

#: How long a copy this node made counts as a holder before the receiver's row replicates here.
_RECENT_PUSH_SECONDS = 300.0
#: A copy that takes longer than this plus its size at this rate is given up (a stalled peer
#: must not hold a copy worker for ever; the scrub tries again).
_COPY_GRACE_SECONDS = 60.0
_COPY_MIN_RATE = 1 << 20  # bytes per second
_STATS_ON_LOOP = 16  # a GET over more segments looks for local copies in a worker thread


def replica_entity(blob: str, node: str) -> str:
    return f"blob/replica/{blob}/{node}"


class ReplicaProjection:
    """``blob_replicas``: one row per (blob, node holding a copy of it)."""

    kind = REPLICA_KIND
    schema = (
        "CREATE TABLE IF NOT EXISTS blob_replicas ("
        " blob TEXT NOT NULL, node TEXT NOT NULL, disk TEXT NOT NULL, size INTEGER NOT NULL,"
        " PRIMARY KEY (blob, node)) WITHOUT ROWID",
    )

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        blob, node = entity_fields(entity, "blob/replica/", 2)
        if state is None:
            db.execute("DELETE FROM blob_replicas WHERE blob = ? AND node = ?", (blob, node))
        else:
            db.execute(
                "INSERT OR REPLACE INTO blob_replicas (blob, node, disk, size) VALUES (?, ?, ?, ?)",
                (blob, node, state["disk"], state["size"]),
            )


@dataclass(frozen=True)
class ScrubReport:
    """What one scrub found and did."""

    referenced: int
    under_replicated: int
    queued: int  # under-replicated blobs this node is responsible for, queued for copying
    collected: int  # unreferenced local blobs deleted


class BlobReplicas:
    """This node's side of blob replication (see the module docstring).

    ``register()`` before the cluster serves; ``run()`` in a nursery for the copy workers and
    the scrub; ``schedule()`` after each acknowledged write; ``open_read()`` for bytes this
    node may not hold.
    """

    def __init__(
        self,
        node_id: str,
        blobs: BlobStore,
        journal: Any,
        peers: Peers,
        replicas: int,
        catalog: Catalog,
        *,
        scrub_interval: float = 30.0,
        gc_margin: float = 600.0,
        copy_workers: int = 2,
        queue_limit: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.node_id = node_id
        self._blobs = blobs
        self._journal = journal
        self._peers = peers
        self._replicas = replicas
        self._catalog = catalog
        self._scrub_interval = scrub_interval
        self._gc_margin = gc_margin
        self._copy_workers = copy_workers
        self._clock = clock
        self._started = clock()
        self._send, self._receive = trio.open_memory_channel[Segment](queue_limit)
        self._queued: set[str] = set()  # blob ids queued or being copied
        self._idle = trio.Event()
        self._idle.set()
        self._incoming: set[str] = set()  # blob ids being received
        self._recent: dict[str, dict[str, float]] = {}  # blob -> {node: when pushed there}
        self._under_replicated = 0
        self._copies_made = 0
        self._copy_failures = 0

    # -- lifetime --

    def register(self) -> None:
        """Serve ``blob.read`` and ``blob.put`` to the other nodes."""
        serve_forwarded(self._peers, READ_METHOD, self._serve_read)
        serve_forwarded(self._peers, PUT_METHOD, self._serve_put)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Copy queued blobs and scrub periodically, until cancelled."""
        async with trio.open_nursery() as nursery:
            for _ in range(self._copy_workers):
                nursery.start_soon(self._copy_worker)
            task_status.started()
            while True:
                await trio.sleep(self._scrub_interval * random.uniform(0.75, 1.25))
                try:
                    await self.scrub()
                except Exception as error:  # noqa: BLE001 - the next scrub tries again
                    _log.warning("replicas.scrub_failed", error=repr(error))

    async def wait_idle(self) -> None:
        """Return once no copy is queued or under way."""
        while self._queued:
            await self._idle.wait()

    # -- queries --

    def wanted(self) -> int:
        """How many holders each blob should have: ``replicas``, capped by the voters."""
        return max(1, min(self._replicas, len(self._peers.voters())))

    async def holders(self, segment: Segment) -> list[str]:
        """The nodes recorded as holding ``segment``'s blob: its origin, then copies."""
        copies = await self._journal.read(partial(_copy_holders, blob=segment["blob"]))
        return list(dict.fromkeys([segment["node"], *copies]))

    async def ensure_readable(self, segments: Sequence[Segment]) -> None:
        """Raise the 503 of :func:`_no_holder_error` unless every one of ``segments`` is here
        or on a holder that answers; a GET checks before it answers 200.

        Membership's view of reachability is a hint (it lags a healed partition), so a
        segment whose holders all look unreachable is tried: one byte from any of them.
        Holders that look reachable are trusted. The local copies are looked up on the loop
        for a few segments (a ``stat`` each), with the holder rows in a worker thread for a
        many-part object."""
        if len(segments) <= _STATS_ON_LOOP:
            absent = [s for s in segments if self._blobs.locate(s["blob"], s["size"]) is None]
            if not absent:
                return
        else:
            absent = list(segments)
        missing = await self._journal.read(partial(self._absent_with_holders, absent))
        reachable = self._peers.reachable() - {self.node_id}
        for segment, holders in missing:
            if not holders & reachable:
                async for _ in self.open_read(segment, 0, 1):  # raises if none answers
                    pass

    def _absent_with_holders(
        self, segments: Sequence[Segment], db: sqlite3.Connection
    ) -> list[tuple[Segment, set[str]]]:
        """Worker thread: the segments not here, each with the nodes recorded as holding it."""
        return [
            (s, {s["node"], *_copy_holders(db, blob=s["blob"])})
            for s in segments
            if self._blobs.locate(s["blob"], s["size"]) is None
        ]

    def status(self) -> dict[str, int]:
        """For ``zeronode status``; ``under_replicated`` is as of the last scrub."""
        return {
            "replicas": self.wanted(),
            "under_replicated": self._under_replicated,
            "copies_made": self._copies_made,
            "copy_failures": self._copy_failures,
            "pending": len(self._queued),
        }

    # -- making copies --

    def schedule(self, segments: Iterable[Segment]) -> None:
        """Queue copies of ``segments``' blobs; never waits. A blob that does not fit in the
        queue is left to the scrub."""
        if self.wanted() < 2:
            return
        for segment in segments:
            self._enqueue(segment)

    def _enqueue(self, segment: Segment) -> bool:
        blob = segment["blob"]
        if blob in self._queued or not is_blob_id(blob):
            return False
        try:
            self._send.send_nowait(dict(segment))
        except trio.WouldBlock:
            _log.info("replicas.queue_full", blob=blob)
            return False
        if not self._queued:
            self._idle = trio.Event()
        self._queued.add(blob)
        return True

    async def _copy_worker(self) -> None:
        async for segment in self._receive:
            try:
                await self._replicate(segment)
            except Exception as error:  # noqa: BLE001 - the scrub retries
                _log.warning("replicas.copy_failed", blob=segment["blob"], error=repr(error))
            finally:
                self._queued.discard(segment["blob"])
                if not self._queued:
                    self._idle.set()

    async def _replicate(self, segment: Segment) -> None:
        """Push the local copy of ``segment``'s blob to voters lacking it, up to ``wanted``."""
        blob = segment["blob"]
        local = self._blobs.locate(blob, segment["size"])
        if local is None:
            if segment["node"] == self.node_id:
                await self._fetch(segment)
            return  # another holder makes any further copies
        voters = self._peers.voters()
        holders = {*await self.holders(segment), *self._recently_pushed(blob), self.node_id}
        missing = self.wanted() - len(holders & voters)
        if missing <= 0:
            return
        candidates = _ranked(blob, (self._peers.reachable() & voters) - holders)
        sha256 = await self._blobs.sha256(local) if candidates else ""
        for target in candidates:
            if missing == 0:
                break
            if await self._push(local, sha256, target):
                missing -= 1

    async def _fetch(self, segment: Segment) -> None:
        """Take back a copy of a blob this node is the origin of and lost (a disk died).

        The origin counts as a holder without a row, so no other node can tell the copy is
        gone: only the origin can re-make it, from any other holder."""
        blob, size = segment["blob"], segment["size"]
        if blob in self._incoming:
            return
        self._incoming.add(blob)
        try:
            written = await self._blobs.write(
                self.open_read(segment), expected_size=size, blob_id=blob
            )
        finally:
            self._incoming.discard(blob)
        self._copies_made += 1
        _log.info("replicas.refetched", blob=blob, size=size, disk=written.ref.disk)

    async def _push(self, ref: BlobRef, sha256: str, target: str) -> bool:
        header = {"blob": ref.blob, "size": ref.size, "sha256": sha256}
        disk = None
        try:
            with trio.move_on_after(_COPY_GRACE_SECONDS + ref.size / _COPY_MIN_RATE) as deadline:
                async with self._blobs.read(ref) as body:
                    async with forward(self._peers, target, PUT_METHOD, header, body) as reply:
                        disk = reply.header.get("disk") if isinstance(reply.header, dict) else None
            if deadline.cancelled_caught:
                raise RequestTimeout(f"copy to {target} took too long")
        except (TransportError, AWSError) as error:
            self._copy_failures += 1
            _log.warning("replicas.push_failed", blob=ref.blob, target=target, error=str(error))
            return False
        self._copies_made += 1
        self._recent.setdefault(ref.blob, {})[target] = self._clock()
        _log.info("replicas.copied", blob=ref.blob, size=ref.size, target=target, disk=disk)
        return True

    def _recently_pushed(self, blob: str) -> list[str]:
        cutoff = self._clock() - _RECENT_PUSH_SECONDS
        return [node for node, at in self._recent.get(blob, {}).items() if at > cutoff]

    def _forget_old_pushes(self) -> None:
        cutoff = self._clock() - _RECENT_PUSH_SECONDS
        for blob in list(self._recent):
            kept = {node: at for node, at in self._recent[blob].items() if at > cutoff}
            if kept:
                self._recent[blob] = kept
            else:
                del self._recent[blob]

    # -- serving other nodes --

    async def _serve_read(
        self, peer_id: str, header: Any, body: AsyncIterator[bytes]
    ) -> tuple[Any, AsyncIterator[bytes]]:
        blob, size = _blob_header(header)
        start, end = header.get("start", 0), header.get("end", size)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= size):
            raise AWSError("InvalidRange", f"range [{start}, {end}) of a {size} byte blob", 416)
        ref = self._blobs.locate(blob, size)
        if ref is None:
            raise AWSError("NoSuchBlob", f"blob {blob} is not on node {self.node_id}", 404)
        return {"size": end - start}, self._blobs.read(ref, start, end)

    async def _serve_put(
        self, peer_id: str, header: Any, body: AsyncIterator[bytes]
    ) -> tuple[Any, None]:
        blob, size = _blob_header(header)
        sha256 = header.get("sha256")
        if not isinstance(sha256, str) or len(sha256) != 64:
            raise AWSError("InvalidRequest", "blob.put needs the body's hex SHA-256", 400)
        if blob in self._incoming:
            raise AWSError("SlowDown", f"blob {blob} is already being received", 503)
        self._incoming.add(blob)
        try:
            ref = self._blobs.locate(blob, size)
            if ref is None:
                written = await self._blobs.write(
                    body, expected_size=size, expected_sha256=sha256, blob_id=blob
                )
                ref = written.ref
            await self._record(ref)
        finally:
            self._incoming.discard(blob)
        _log.info("replicas.received", blob=blob, size=size, origin=peer_id, disk=ref.disk)
        return {"disk": ref.disk, "size": ref.size}, None

    async def _record(self, ref: BlobRef) -> None:
        """Record this node as a holder of ``ref`` (once: an identical row is left alone)."""
        state = {"blob": ref.blob, "node": self.node_id, "disk": ref.disk, "size": ref.size}

        def mutation(db: sqlite3.Connection) -> list[Change]:
            row = db.execute(
                "SELECT disk, size FROM blob_replicas WHERE blob = ? AND node = ?",
                (ref.blob, self.node_id),
            ).fetchone()
            if row == (ref.disk, ref.size):
                return []
            return [Change(replica_entity(ref.blob, self.node_id), REPLICA_KIND, state)]

        await self._journal.submit(mutation)

    # -- reading --

    async def open_read(
        self, segment: Segment, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of ``segment``'s blob, from here or from a holder.

        Raises ``ServiceUnavailable`` (503, which SDKs retry) if no holder can serve the rest
        of the range; by then some bytes may have been yielded.
        """
        blob, size = segment["blob"], segment["size"]
        end = size if end is None else end
        if not 0 <= start <= end <= size:
            raise ValueError(f"range [{start}, {end}) is outside a blob of {size} bytes")
        local = self._blobs.locate(blob, size)
        if local is not None:
            async with self._blobs.read(local, start, end) as reader:
                async for block in reader:
                    yield block
            return
        position = start
        if position == end:
            return
        failures: list[str] = []
        for holder in await self._sources(segment):
            header = {"blob": blob, "size": size, "start": position, "end": end}
            try:
                async with forward(self._peers, holder, READ_METHOD, header) as reply:
                    async for chunk in reply:
                        if len(chunk) > end - position:
                            raise RemoteError("MalformedReply", "more bytes than asked for")
                        position += len(chunk)
                        yield chunk
            except TransportError as error:
                failures.append(f"{holder}: {error}")
                _log.info("replicas.read_failed", blob=blob, holder=holder, error=str(error))
            if position == end:
                return
        _log.warning(
            "replicas.unavailable", blob=blob, at=position, end=end, tried="; ".join(failures)
        )
        raise _no_holder_error()

    async def _sources(self, segment: Segment) -> list[str]:
        """Holders to read from other than this node, the reachable ones first."""
        reachable = self._peers.reachable()
        others = [h for h in await self.holders(segment) if h != self.node_id]
        return [h for h in others if h in reachable] + [h for h in others if h not in reachable]

    # -- the scrub --

    async def scrub(self) -> ScrubReport:
        """One pass: count under-replicated blobs, queue the copies this node is responsible
        for, repair this node's own rows, and collect unreferenced local blobs.

        The journal is read before the disks are listed, so a copy recorded meanwhile is on
        the list, and one received after the listing is not a candidate for collection.
        """
        catalog = await self._catalog(self._journal)
        copies = await self._journal.read(_all_copy_holders)
        stored = await self._blobs.list_blobs()
        local = {item.ref.blob: item for item in stored}
        now = self._clock()
        self._forget_old_pushes()
        voters, reachable, wanted = self._peers.voters(), self._peers.reachable(), self.wanted()
        me = self.node_id

        under, queued = 0, 0
        unrecorded: list[BlobRef] = []
        for blob, segment in catalog.items():
            recorded = copies.get(blob, set())
            holders = {segment["node"], *recorded, *self._recent.get(blob, ())}
            item = local.get(blob)
            if item is not None and item.ref.size == segment["size"]:
                holders.add(me)
                if me not in recorded and segment["node"] != me and blob not in self._incoming:
                    unrecorded.append(item.ref)  # a copy whose row was never written
            else:
                holders.discard(me)
                if segment["node"] == me and recorded - {me} and blob not in self._incoming:
                    under += 1  # the origin lost its own copy: it takes one back
                    queued += self._enqueue(segment)
                    continue
            live = holders & voters
            if len(live) >= wanted:
                continue
            under += 1
            reachable_holders = {h for h in live if h == me or h in reachable}
            if reachable_holders and min(reachable_holders) == me and self._enqueue(segment):
                queued += 1
        self._under_replicated = under

        collected: list[BlobRef] = []
        if now - self._started >= self._gc_margin:
            cutoff = now - self._gc_margin
            collected = [
                item.ref
                for item in stored
                if item.ref.blob not in catalog
                and item.mtime < cutoff
                and item.ref.blob not in self._incoming
                and item.ref.blob not in self._queued
            ]
        await self._blobs.free(collected)  # a read on this node may still be streaming one
        gone = {ref.blob for ref in collected}
        lost = [
            blob
            for blob, nodes in copies.items()
            if me in nodes and (blob in gone or blob not in local) and blob not in self._incoming
        ]
        repaired = []
        if lost or unrecorded:
            repaired = await self._journal.submit(partial(self._repair, lost, unrecorded))
        report = ScrubReport(len(catalog), under, queued, len(collected))
        if under or collected or repaired:
            _log.info(
                "replicas.scrubbed",
                referenced=report.referenced,
                under_replicated=under,
                queued=queued,
                collected=len(collected),
                rows_repaired=len(repaired),
            )
        return report

    def _repair(
        self, lost: list[str], unrecorded: list[BlobRef], db: sqlite3.Connection
    ) -> list[Change]:
        """Writer thread: tombstone this node's rows of copies it no longer has and record
        copies it has without a row. Presence is checked again here, as a copy may have
        arrived since the disks were listed."""
        me = self.node_id
        changes = [
            Change(replica_entity(blob, me), REPLICA_KIND, None)
            for blob in lost
            if self._blobs.locate(blob) is None
        ]
        for ref in unrecorded:
            state = {"blob": ref.blob, "node": me, "disk": ref.disk, "size": ref.size}
            changes.append(Change(replica_entity(ref.blob, me), REPLICA_KIND, state))
        return changes


def _no_holder_error() -> BytesUnavailable:
    """What a read answers when no node holding the bytes can be reached (SDKs retry it)."""
    return BytesUnavailable(
        "ServiceUnavailable",
        "No node holding this object's bytes can be reached now. Please try again.",
        503,
        sender_fault=False,
    )


def _blob_header(header: Any) -> tuple[str, int]:
    """The blob id and size a ``blob.*`` request names, checked before they touch a path."""
    if not isinstance(header, dict):
        raise AWSError("InvalidRequest", "a blob request header is a map", 400)
    blob, size = header.get("blob"), header.get("size")
    if not is_blob_id(blob) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise AWSError("InvalidRequest", f"bad blob or size in {header!r:.200}", 400)
    assert isinstance(blob, str)
    return blob, size


def _ranked(blob: str, nodes: Iterable[str]) -> list[str]:
    """``nodes`` in rendezvous-hash order for ``blob``: each blob's copies go to a stable,
    evenly spread choice of nodes."""
    return sorted(
        nodes, key=lambda node: hashlib.blake2b(f"{blob}/{node}".encode(), digest_size=8).digest()
    )


def _copy_holders(db: sqlite3.Connection, *, blob: str) -> list[str]:
    rows = db.execute("SELECT node FROM blob_replicas WHERE blob = ? ORDER BY node", (blob,))
    return [node for (node,) in rows]


def _all_copy_holders(db: sqlite3.Connection) -> dict[str, set[str]]:
    holders: dict[str, set[str]] = {}
    for blob, node in db.execute("SELECT blob, node FROM blob_replicas"):
        holders.setdefault(blob, set()).add(node)
    return holders
