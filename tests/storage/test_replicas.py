"""Copies of blobs on other nodes (``zeronode.storage.replicas``), over an in-process network.

Each node has a real journal and a real blob store; journals are synchronised by hand
(``sync``), standing in for journal replication. What references a blob is a toy projection
(``test.ref``), so the tests need no S3.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from cluster.forwarding import ForwardedError, forward
from tests.cluster.sim_network import SimNetwork, SimPeers
from tests.journal.toy import KeyValueProjection
from tests.storage.helpers import chunks_of, files_under
from zeronode.aws.errors import AWSError
from zeronode.journal import Change, Journal, open_journal
from zeronode.storage import BlobStore, open_blob_store
from zeronode.storage.replicas import PUT_METHOD, BlobReplicas, ReplicaProjection

MiB = 1 << 20
REF = "test.ref"


def projections() -> list[Any]:
    return [KeyValueProjection(REF, "refs"), ReplicaProjection()]


async def catalog(journal: Journal) -> dict[str, dict[str, Any]]:
    def read(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        segments = [json.loads(value)["v"] for (value,) in db.execute("SELECT value FROM refs")]
        return {segment["blob"]: segment for segment in segments}

    return await journal.read(read)


@dataclass
class Node:
    id: str
    journal: Journal
    blobs: BlobStore
    peers: SimPeers
    replicas: BlobReplicas
    disk: Path

    async def put(self, data: bytes, name: str | None = None) -> dict[str, Any]:
        """Write ``data`` as a blob here and reference it from the journal: a PUT."""
        written = await self.blobs.write(chunks_of(data), expected_size=len(data))
        ref = written.ref
        segment = {"node": self.id, "disk": ref.disk, "blob": ref.blob, "size": ref.size}
        await self.journal.submit(
            lambda db: [Change(f"test/ref/{name or ref.blob}", REF, {"v": segment})]
        )
        return segment

    async def unreference(self, name: str) -> None:
        await self.journal.submit(lambda db: [Change(f"test/ref/{name}", REF, None)])

    async def read(self, segment: dict[str, Any], start: int = 0, end: int | None = None) -> bytes:
        parts = []
        async for chunk in self.replicas.open_read(segment, start, end):
            assert 0 < len(chunk) <= MiB
            parts.append(chunk)
        return b"".join(parts)

    def holds(self, blob: str) -> bool:
        return self.blobs.locate(blob) is not None


async def sync(nodes: list[Node]) -> None:
    """Every node gets every event (journal replication, by hand)."""
    for _ in range(2):
        for source in nodes:
            for dest in nodes:
                if dest is not source:
                    await dest.journal.ingest(await source.journal.events(dest.journal.position()))


@asynccontextmanager
async def cluster(
    tmp_path: Path,
    count: int = 3,
    *,
    replicas: int = 2,
    gc_margin: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[tuple[SimNetwork, list[Node]]]:
    """``count`` nodes, sorted by node id (so ``nodes[0]`` has the lowest), copy workers
    running, scrubs only when a test calls ``scrub()``."""
    async with AsyncExitStack() as stack:
        opened = []
        for i in range(count):
            journal = await stack.enter_async_context(
                open_journal(tmp_path / f"node{i}.db", projections())
            )
            disk = tmp_path / f"disk{i}"
            blobs = await stack.enter_async_context(
                open_blob_store([disk], node_id=journal.node_id)
            )
            opened.append((journal, blobs, disk))
        network = SimNetwork()
        async with trio.open_nursery() as nursery, network.running():
            nodes = []
            for journal, blobs, disk in opened:
                peers = network.peers(journal.node_id)
                replica = BlobReplicas(
                    journal.node_id, blobs, journal, peers, replicas, catalog,
                    scrub_interval=3600.0, gc_margin=gc_margin, clock=clock,
                )
                replica.register()
                nodes.append(Node(journal.node_id, journal, blobs, peers, replica, disk))
            nodes.sort(key=lambda node: node.id)
            for node in nodes:
                await nursery.start(node.replicas.run)
            yield network, nodes
            nursery.cancel_scope.cancel()


async def settle(nodes: list[Node]) -> None:
    with trio.fail_after(10):
        for node in nodes:
            await node.replicas.wait_idle()


def s3_context(node: Node) -> Any:
    """The part of an S3 request context the segment functions use, for ``node``."""
    services = SimpleNamespace(node_id=node.id, blobs=node.blobs, replicas=node.replicas)
    return SimpleNamespace(node=services)


async def put_copied(origin: Node, nodes: list[Node], data: bytes) -> dict[str, Any]:
    """A PUT on ``origin`` whose copies are scheduled (as S3 does once it commits) and made."""
    segment = await origin.put(data)
    origin.replicas.schedule([segment])
    await settle(nodes)
    return segment


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


# -- copies after a write ------------------------------------------------------------------


async def test_a_scheduled_blob_is_copied_once_under_the_same_id(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, replicas=2) as (_, nodes):
        origin = nodes[1]
        data = data_of(3 * MiB + 17)
        segment = await put_copied(origin, nodes, data)

        copies = [node for node in nodes if node is not origin and node.holds(segment["blob"])]
        assert len(copies) == 1  # replicas=2: the origin and one copy
        holder = copies[0]
        ref = holder.blobs.locate(segment["blob"], len(data))
        assert ref is not None and ref.blob == segment["blob"]
        async with holder.blobs.read(ref) as reader:
            assert b"".join([block async for block in reader]) == data

        await sync(nodes)
        for node in nodes:
            assert await node.replicas.holders(segment) == [origin.id, holder.id]
        assert origin.replicas.status()["copies_made"] == 1

        # Scheduling again finds enough holders and copies nothing.
        origin.replicas.schedule([segment])
        await settle(nodes)
        assert origin.replicas.status()["copies_made"] == 1


async def test_small_and_empty_blobs_are_copied_too(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, replicas=2) as (_, nodes):
        segments = [await nodes[0].put(b"tiny"), await nodes[0].put(b"")]
        nodes[0].replicas.schedule(segments)
        await settle(nodes)
        assert all(nodes[1].holds(segment["blob"]) for segment in segments)


async def test_replicas_are_capped_by_the_cluster_size(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, replicas=3) as (_, nodes):
        segment = await put_copied(nodes[0], nodes, data_of(1000))
        assert nodes[1].holds(segment["blob"])
        await sync(nodes)
        report = await nodes[0].replicas.scrub()
        assert report.under_replicated == 0
        assert nodes[0].replicas.status()["replicas"] == 2


async def test_a_copy_whose_hash_does_not_match_is_refused(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as (_, nodes):
        sender, receiver = nodes
        blob = "ab" * 16
        header = {"blob": blob, "size": 5, "sha256": "0" * 64}
        with pytest.raises(ForwardedError) as caught:
            async with forward(sender.peers, receiver.id, PUT_METHOD, header, b"bytes"):
                pass
        assert caught.value.code == "XAmzContentSHA256Mismatch"
        assert not receiver.holds(blob)
        assert files_under(receiver.disk, "tmp") == []
        assert await receiver.replicas.holders({"node": sender.id, "blob": blob}) == [sender.id]


async def test_a_malformed_blob_id_never_names_a_path(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as (_, nodes):
        header = {"blob": "../../../etc/passwd", "size": 1, "sha256": "0" * 64}
        with pytest.raises(ForwardedError) as caught:
            async with forward(nodes[0].peers, nodes[1].id, PUT_METHOD, header, b"x"):
                pass
        assert caught.value.code == "InvalidRequest"
        with pytest.raises(ValueError):
            await nodes[1].blobs.write(chunks_of(b"x"), expected_size=1, blob_id="nothex")


async def test_an_identical_copy_may_arrive_twice(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as (_, nodes):
        data = data_of(2 * MiB)
        segment = await nodes[0].put(data)
        ref = nodes[0].blobs.locate(segment["blob"])
        assert ref is not None
        sha256 = await nodes[0].blobs.sha256(ref)
        header = {"blob": ref.blob, "size": ref.size, "sha256": sha256}
        for _ in range(2):
            async with forward(nodes[0].peers, nodes[1].id, PUT_METHOD, header, data) as reply:
                assert reply.header["size"] == len(data)
        assert len(files_under(nodes[1].disk, "blobs")) == 1
        assert await nodes[1].read(segment) == data


# -- reads from other nodes -----------------------------------------------------------------


async def test_a_node_without_the_bytes_streams_a_range_from_the_holder(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as (_, nodes):
        data = data_of(3 * MiB + 5)
        segment = await nodes[0].put(data)
        assert await nodes[1].read(segment, 1000, 2 * MiB + 7) == data[1000 : 2 * MiB + 7]
        assert await nodes[1].read(segment) == data
        assert await nodes[1].read(segment, 10, 10) == b""
        assert not nodes[1].holds(segment["blob"])  # reading makes no copy


async def test_a_read_succeeds_through_a_copy_when_the_origin_is_dead(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, replicas=2) as (network, nodes):
        origin = nodes[0]
        data = data_of(MiB + 1)
        segment = await put_copied(origin, nodes, data)
        await sync(nodes)
        holder = next(n for n in nodes[1:] if n.holds(segment["blob"]))
        reader = next(n for n in nodes[1:] if n is not holder)

        network.take_down(origin.id)
        assert await reader.read(segment, 5) == data[5:]
        network.take_down(holder.id)
        with pytest.raises(AWSError) as caught:
            await reader.read(segment)
        assert (caught.value.code, caught.value.status) == ("ServiceUnavailable", 503)


async def test_a_read_continues_from_another_holder_when_one_dies_part_way(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, 3, replicas=2) as (network, nodes):
        origin = nodes[0]
        data = data_of(4 * MiB)
        segment = await put_copied(origin, nodes, data)
        await sync(nodes)
        reader = next(n for n in nodes[1:] if not n.holds(segment["blob"]))

        received = bytearray()
        async for chunk in reader.replicas.open_read(segment):
            received += chunk
            if origin.id not in network.down:
                network.take_down(origin.id)  # the origin (tried first) dies after one chunk
        assert bytes(received) == data


# -- the scrub ------------------------------------------------------------------------------


async def test_the_scrub_remakes_a_copy_lost_with_a_removed_node(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, replicas=2) as (network, nodes):
        origin = nodes[0]
        segment = await put_copied(origin, nodes, data_of(MiB))
        await sync(nodes)
        lost = next(n for n in nodes[1:] if n.holds(segment["blob"]))
        third = next(n for n in nodes[1:] if n is not lost)
        assert (await origin.replicas.scrub()).under_replicated == 0

        network.remove(lost.id)
        report = await origin.replicas.scrub()
        assert (report.under_replicated, report.queued) == (1, 1)
        await settle(nodes)
        assert third.holds(segment["blob"])

        await sync([origin, third])
        assert (await origin.replicas.scrub()).under_replicated == 0
        assert (await third.replicas.scrub()).under_replicated == 0
        assert origin.replicas.status()["under_replicated"] == 0


async def test_only_the_lowest_reachable_holder_makes_the_copy(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, replicas=3) as (network, nodes):
        low, middle, high = nodes
        segment = await middle.put(data_of(1000))
        await sync(nodes)
        # The lowest node holds nothing: the origin is the only holder, so it copies.
        assert (await low.replicas.scrub()).queued == 0
        assert (await middle.replicas.scrub()).queued == 1
        await settle(nodes)
        await sync(nodes)
        assert low.holds(segment["blob"]) and high.holds(segment["blob"])
        for node in nodes:
            report = await node.replicas.scrub()
            assert (report.under_replicated, report.queued) == (0, 0)


async def test_the_scrub_records_a_copy_it_holds_without_a_row(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, replicas=2) as (_, nodes):
        data = data_of(100)
        segment = await nodes[0].put(data)
        await sync(nodes)
        await nodes[1].blobs.write(chunks_of(data), expected_size=100, blob_id=segment["blob"])
        report = await nodes[1].replicas.scrub()
        assert report.under_replicated == 0
        assert await nodes[1].replicas.holders(segment) == [nodes[0].id, nodes[1].id]


# -- garbage collection ---------------------------------------------------------------------


async def test_gc_removes_old_unreferenced_blobs_only(tmp_path: Path) -> None:
    now = [time.time()]
    async with cluster(tmp_path, 2, replicas=2, gc_margin=600.0, clock=lambda: now[0]) as (
        _,
        nodes,
    ):
        origin, holder = nodes
        kept = await origin.put(data_of(300, 1), name="kept")
        dropped = await origin.put(data_of(300, 2), name="dropped")
        origin.replicas.schedule([kept, dropped])
        await settle(nodes)
        await origin.unreference("dropped")  # the object is deleted elsewhere...
        await sync(nodes)
        stray = await holder.blobs.write(chunks_of(b"stray"), expected_size=5)

        # ...but nothing is collected while the node is young, nor anything written lately.
        assert (await holder.replicas.scrub()).collected == 0
        now[0] += 601
        assert (await holder.replicas.scrub()).collected == 2  # the dropped copy and the stray
        assert holder.holds(kept["blob"])
        assert not holder.holds(dropped["blob"]) and not holder.holds(stray.ref.blob)
        assert await holder.replicas.holders(dropped) == [origin.id]  # its row is tombstoned
        assert await holder.replicas.holders(kept) == [origin.id, holder.id]

        # A blob written ten seconds ago (by the test's clock) is left alone.
        fresh = await holder.blobs.write(chunks_of(b"fresh"), expected_size=5)
        blob = fresh.ref.blob
        os.utime(holder.disk / "blobs" / blob[:2] / blob, (now[0] - 10, now[0] - 10))
        assert (await holder.replicas.scrub()).collected == 0
        assert holder.holds(blob)


async def test_a_lost_copy_has_its_row_forgotten(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, replicas=2) as (_, nodes):
        segment = await put_copied(nodes[0], nodes, data_of(100))
        ref = nodes[1].blobs.locate(segment["blob"])
        assert ref is not None
        await nodes[1].blobs.delete(ref)  # the disk lost it
        await sync(nodes)
        assert (await nodes[1].replicas.scrub()).under_replicated == 1
        assert await nodes[1].replicas.holders(segment) == [nodes[0].id]


async def test_the_origin_takes_back_a_copy_of_its_own_lost_blob(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, replicas=2) as (_, nodes):
        origin = nodes[0]
        data = data_of(2 * MiB + 5)
        segment = await put_copied(origin, nodes, data)
        await sync(nodes)
        ref = origin.blobs.locate(segment["blob"])
        assert ref is not None
        await origin.blobs.delete(ref)  # the origin's disk lost it; the others cannot tell
        for node in nodes[1:]:
            assert (await node.replicas.scrub()).under_replicated == 0

        report = await origin.replicas.scrub()
        assert (report.under_replicated, report.queued) == (1, 1)
        await settle(nodes)
        assert origin.holds(segment["blob"])
        assert await origin.read(segment) == data
        assert (await origin.replicas.scrub()).under_replicated == 0


# -- status ---------------------------------------------------------------------------------


async def test_status_counts(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, replicas=2) as (network, nodes):
        origin = nodes[0]
        assert origin.replicas.status() == {
            "replicas": 2, "under_replicated": 0, "copies_made": 0, "copy_failures": 0,
            "pending": 0,
        }
        segments = [await origin.put(data_of(100, seed)) for seed in range(3)]
        origin.replicas.schedule(segments)
        assert origin.replicas.status()["pending"] == 3  # schedule returns before copying
        await settle(nodes)
        await sync(nodes)
        assert (await origin.replicas.scrub()).under_replicated == 0
        assert origin.replicas.status() == {
            "replicas": 2, "under_replicated": 0, "copies_made": 3, "copy_failures": 0,
            "pending": 0,
        }
        for node in nodes[1:]:
            network.remove(node.id)
        unreplicated = await origin.put(data_of(100, 9))
        await origin.replicas.scrub()
        # Alone now, replicas is capped at 1: nothing is under-replicated.
        assert origin.replicas.status()["replicas"] == 1
        assert origin.replicas.status()["under_replicated"] == 0
        assert origin.holds(unreplicated["blob"])


async def test_status_counts_under_replicated_blobs(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, replicas=2) as (network, nodes):
        network.take_down(nodes[1].id)  # down but still a voter: nowhere to copy to
        await nodes[0].put(data_of(10, 1))
        await nodes[0].put(data_of(10, 2))
        report = await nodes[0].replicas.scrub()
        await settle(nodes)
        assert report.under_replicated == 2
        status = nodes[0].replicas.status()
        assert (status["under_replicated"], status["copies_made"], status["pending"]) == (2, 0, 0)


# -- the S3 seam ----------------------------------------------------------------------------


async def test_s3_reads_a_segment_held_elsewhere_and_schedules_copies(tmp_path: Path) -> None:
    from zeronode.services.s3.segments import read_segments, schedule_replicas

    async with cluster(tmp_path, 2, replicas=2) as (_, nodes):
        origin, other = nodes
        first, second = data_of(MiB + 3, 1), data_of(1000, 2)
        segments = [await origin.put(first), await origin.put(second)]
        await sync(nodes)

        body = b"".join([b async for b in read_segments(s3_context(other), segments, 7, MiB + 500)])
        assert body == (first + second)[7 : MiB + 500]
        assert not other.holds(segments[0]["blob"])

        schedule_replicas(s3_context(origin), segments)
        await settle(nodes)
        assert all(other.holds(segment["blob"]) for segment in segments)


async def test_a_get_answers_503_before_its_body_when_no_holder_of_a_later_segment_answers(
    tmp_path: Path,
) -> None:
    from zeronode.aws.errors import AWSError
    from zeronode.services.s3.segments import open_segments

    async with cluster(tmp_path, 2, replicas=1) as (network, nodes):
        origin, other = nodes
        first, second = data_of(1000, 1), data_of(2000, 2)
        segments = [await origin.put(first), await origin.put(second)]
        await other.blobs.write(chunks_of(first), expected_size=1000, blob_id=segments[0]["blob"])
        await sync(nodes)
        ctx = s3_context(other)
        seen = other.peers.reachable
        other.peers.reachable = lambda: frozenset({other.id})  # membership lags: a hint only
        body = await open_segments(ctx, segments)  # so the holder is tried, and answers
        assert b"".join([block async for block in body]) == first + second
        other.peers.reachable = seen

        network.take_down(origin.id)
        with pytest.raises(AWSError) as caught:
            await open_segments(ctx, segments)  # the first segment is here, the second is not
        assert (caught.value.code, caught.value.status) == ("ServiceUnavailable", 503)
        body = await open_segments(ctx, segments, 10, 1000)  # a range inside the first one
        assert b"".join([block async for block in body]) == first[10:]


async def test_a_many_part_get_checks_its_holders_in_a_worker_thread_too(tmp_path: Path) -> None:
    from zeronode.aws.errors import AWSError
    from zeronode.services.s3.segments import open_segments

    async with cluster(tmp_path, 2, replicas=1) as (network, nodes):
        origin, other = nodes
        parts = [data_of(100, seed) for seed in range(20)]
        segments = [await origin.put(part) for part in parts]
        for part, segment in zip(parts[:19], segments):  # all but the last are copied here
            await other.blobs.write(chunks_of(part), expected_size=100, blob_id=segment["blob"])
        await sync(nodes)
        ctx = s3_context(other)
        body = await open_segments(ctx, segments)
        assert b"".join([block async for block in body]) == b"".join(parts)

        network.take_down(origin.id)
        with pytest.raises(AWSError) as caught:
            await open_segments(ctx, segments)
        assert caught.value.status == 503
        body = await open_segments(ctx, segments, 0, 1900)  # the first 19 parts are here
        assert b"".join([block async for block in body]) == b"".join(parts[:19])
