"""Snapshot transfer between two journals over real mutual-TLS transports on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio

from cluster.snapshots import SNAPSHOT_METHOD, fetch_snapshot, serve_snapshots
from cluster.transport import BulkHandler, BulkStream, Handler, Transport
from tests.cluster.test_transport import running
from tests.cluster.tls_fixtures import NodeTLS, make_cluster
from tests.journal.toy import KV, kv_projections, put, rows
from zeronode.journal import Change, Event, Journal, SnapshotRejected, open_journal
from zeronode.journal.hlc import pack

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> list[NodeTLS]:
    return make_cluster(tmp_path_factory.mktemp("pki"), 2)


class TransportPeers:
    """``Peers`` over a running transport and a fixed address book."""

    def __init__(self, transport: Transport, addresses: dict[str, tuple[str, int]]) -> None:
        self._transport = transport
        self._addresses = addresses

    @property
    def node_id(self) -> str:
        return self._transport.node_id

    def voters(self) -> frozenset[str]:
        return frozenset(self._addresses) | {self.node_id}

    def reachable(self) -> frozenset[str]:
        return frozenset(self._addresses)

    async def request(
        self, peer: str, method: str, payload: Any, *, timeout: float | None = None
    ) -> Any:
        return await self._transport.request(
            peer, self._addresses[peer], method, payload, timeout=timeout
        )

    def open_bulk(
        self, peer: str, method: str, header: Any
    ) -> AbstractAsyncContextManager[BulkStream]:
        return self._transport.open_bulk(peer, self._addresses[peer], method, header)

    def on(self, method: str, handler: Handler) -> None:
        self._transport.on(method, handler)

    def on_bulk(self, method: str, handler: BulkHandler) -> None:
        self._transport.on_bulk(method, handler)


@dataclass(frozen=True)
class Pair:
    """Two journals, A serving and B fetching, each behind its own transport."""

    a: Journal
    b: Journal
    server: TransportPeers
    client: TransportPeers


@pytest.fixture
async def pair(tmp_path: Path, nodes: list[NodeTLS]) -> AsyncIterator[Pair]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        open_journal(tmp_path / "a" / "journal.db", kv_projections()) as a,
        open_journal(tmp_path / "b" / "journal.db", kv_projections()) as b,
        running(nodes[0]) as (transport_a, address_a),
        running(nodes[1]) as (transport_b, address_b),
    ):
        server = TransportPeers(transport_a, {nodes[1].node_id: address_b})
        client = TransportPeers(transport_b, {nodes[0].node_id: address_a})
        yield Pair(a, b, server, client)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "journal.db" not in p.name)


async def test_a_node_fetches_and_installs_a_peers_snapshot(pair: Pair, tmp_path: Path) -> None:
    a, b = pair.a, pair.b
    serve_snapshots(pair.server, a)
    [mine] = await b.submit(put("b/own", 1))
    value = "x" * 500
    for start in range(0, 3000, 500):  # well over a megabyte: many chunks
        await a.submit(
            lambda db, start=start: [
                Change(f"a/{i}", KV, {"v": value, "i": i}) for i in range(start, start + 500)
            ]
        )
    await a.submit(put("a/0", "overwritten"))
    await a.compact(a.position(), now_ms=T0)
    fetch_dir = tmp_path / "fetch"
    fetch_dir.mkdir()

    info = await fetch_snapshot(pair.client, pair.server.node_id, b, fetch_dir)

    assert info.path == b.path and info.node_id == pair.server.node_id
    assert info.position == a.position() and info.size > 1 << 20
    assert b.position() == {**a.position(), b.node_id: 1}
    assert b.floor() == a.floor()
    await a.ingest([mine])
    assert await b.state_hash() == await a.state_hash()
    assert (await b.read(rows))["a/0"] == {"v": "overwritten"}
    assert leftovers(fetch_dir) == [] and leftovers(tmp_path / "a") == []
    await b.submit(put("b/after", 2))  # B carries on as itself


async def test_a_snapshot_the_fetcher_cannot_take_changes_nothing(
    pair: Pair, tmp_path: Path
) -> None:
    serve_snapshots(pair.server, pair.a, tmp_dir=tmp_path)
    await pair.a.submit(put("a", 1))
    other = "c" * 32
    await pair.b.ingest([Event(other, 1, pack(T0), "o", KV, msgpack.packb({"v": 1}))])
    before = await pair.b.state_hash()
    with pytest.raises(SnapshotRejected, match="lacks events"):
        await fetch_snapshot(pair.client, pair.server.node_id, pair.b, tmp_path)
    assert await pair.b.state_hash() == before and pair.b.position() == {other: 1}
    assert leftovers(tmp_path) == ["a", "b"]  # no snapshot left on either side


@pytest.mark.parametrize(
    ("lie", "error"),
    [
        ("short", "ended at"),
        ("long", "exceeds"),
        ("hash", "SHA-256"),
        ("header", "malformed snapshot header"),
    ],
)
async def test_a_body_that_does_not_match_its_header_is_refused(
    pair: Pair, tmp_path: Path, lie: str, error: str
) -> None:
    snapshot = await pair.a.snapshot(tmp_path / "real.db")
    body = snapshot.path.read_bytes()

    async def lying_server(peer_id: str, header: Any, bulk: BulkStream) -> None:
        claimed = {
            "sha256": "0" * 64 if lie == "hash" else snapshot.sha256,
            "size": len(body) + {"short": 1, "long": -1}.get(lie, 0),
            "position": snapshot.position,
        }
        await bulk.send(msgpack.packb(claimed if lie != "header" else [claimed]))
        await bulk.send(body)

    pair.server.on_bulk(SNAPSHOT_METHOD, lying_server)
    fetch_dir = tmp_path / "fetch"
    fetch_dir.mkdir()
    before = await pair.b.state_hash()
    with pytest.raises(SnapshotRejected, match=error):
        with trio.fail_after(10):
            await fetch_snapshot(pair.client, pair.server.node_id, pair.b, fetch_dir)
    assert await pair.b.state_hash() == before
    assert leftovers(fetch_dir) == []
