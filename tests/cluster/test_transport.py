"""The transport over real loopback sockets with mutual TLS (certificates from cluster.pki).

Timeouts here are short real ones: trio's MockClock (autojump) would jump while the tasks wait
on real socket I/O and fire them spuriously. Each timeout test waits on a handler that never
answers, so a slow machine can only make it pass later, never fail.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from cluster.frames import FrameDecoder, encode_frame
from cluster.transport import (
    BulkStream,
    IdentityMismatch,
    PeerUnreachable,
    RemoteError,
    RequestTimeout,
    Transport,
)
from tests.cluster.tls_fixtures import NodeTLS, anonymous_client_context, make_cluster

LOCALHOST = "127.0.0.1"
Address = tuple[str, int]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> list[NodeTLS]:
    return make_cluster(tmp_path_factory.mktemp("pki"), 3)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> NodeTLS:
    return make_cluster(tmp_path_factory.mktemp("foreign"), 1)[0]


def transport_for(node: NodeTLS, **options: Any) -> Transport:
    options.setdefault("connect_timeout", 5.0)
    options.setdefault("request_timeout", 10.0)
    return Transport(
        node.node_id, node.server_context, node.client_context, node.peer_id_of, **options
    )


@asynccontextmanager
async def running(
    node: NodeTLS, port: int = 0, **options: Any
) -> AsyncIterator[tuple[Transport, Address]]:
    transport = transport_for(node, **options)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, LOCALHOST, port)
        try:
            yield transport, (LOCALHOST, bound)
        finally:
            await transport.aclose()


async def echo(peer_id: str | None, payload: Any) -> Any:
    return {"from": peer_id, "echo": payload}


async def raw_tls_client(address: Address, node: NodeTLS) -> trio.SSLStream:
    """A hand-driven client: TLS with ``node``'s certificate, then a control hello."""
    stream = trio.SSLStream(
        await trio.open_tcp_stream(*address), node.client_context, server_hostname=LOCALHOST
    )
    await stream.do_handshake()
    await stream.send_all(encode_frame({"t": "hello", "c": "control"}))
    return stream


async def receive_messages(stream: trio.SSLStream, count: int) -> list[Any]:
    decoder, messages = FrameDecoder(), []
    while len(messages) < count:
        data = await stream.receive_some(65536)
        assert data, "connection closed early"
        messages += decoder.feed(data)
    return messages


async def closed_by_peer(stream: trio.SSLStream) -> bool:
    """True once the peer closes the stream (EOF or a broken TLS session)."""
    with trio.fail_after(5):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
    return True


# -- request / response ----------------------------------------------------------------------


async def test_request_response_names_the_caller(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    async with running(a) as (server, address), running(b) as (client, _):
        server.on("echo", echo)
        answer = await client.request(a.node_id, address, "echo", {"n": 1, "b": b"\x00"})
        assert answer == {"from": b.node_id, "echo": {"n": 1, "b": b"\x00"}}
        assert await client.request(a.node_id, address, "echo", None) == {
            "from": b.node_id,
            "echo": None,
        }


async def test_seed_dial_learns_the_node_id(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    async with running(a) as (server, address), running(b) as (client, _):
        server.on("echo", echo)
        assert await client.connect(address) == a.node_id
        assert (await client.request(a.node_id, address, "echo", 1))["echo"] == 1
        assert len(server._connections) == 1  # the seed connection was reused


async def test_thousand_concurrent_requests_multiplex_one_connection(
    nodes: list[NodeTLS],
) -> None:
    a, b = nodes[0], nodes[1]
    in_flight, all_arrived = 0, trio.Event()

    async def gather(peer_id: str | None, payload: Any) -> Any:
        nonlocal in_flight
        in_flight += 1
        if in_flight == 1000:
            all_arrived.set()
        await all_arrived.wait()  # answers only once all 1,000 are in flight together
        return payload * 2

    async with running(a) as (server, address), running(b) as (client, _):
        server.on("double", gather)
        results: dict[int, int] = {}

        async def call(n: int) -> None:
            results[n] = await client.request(a.node_id, address, "double", n)

        async with trio.open_nursery() as nursery:
            for n in range(1000):
                nursery.start_soon(call, n)
        assert results == {n: 2 * n for n in range(1000)}
        assert len(server._connections) == 1


async def test_notify_is_one_way(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    received: trio.MemorySendChannel[Any]
    received, arrivals = trio.open_memory_channel[Any](10)

    async def note(peer_id: str | None, payload: Any) -> None:
        await received.send((peer_id, payload))

    async with running(a) as (server, address), running(b) as (client, _):
        server.on("gossip", note)
        await client.notify(a.node_id, address, "gossip", {"alive": [1, 2]})  # dials in background
        with trio.fail_after(5):
            assert await arrivals.receive() == (b.node_id, {"alive": [1, 2]})


async def test_handler_errors_and_unknown_methods_are_remote_errors(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]

    async def broken(peer_id: str | None, payload: Any) -> Any:
        raise ValueError("no such thing")

    async with running(a) as (server, address), running(b) as (client, _):
        server.on("broken", broken)
        with pytest.raises(RemoteError) as failure:
            await client.request(a.node_id, address, "broken", None)
        assert failure.value.code == "HandlerFailed"
        with pytest.raises(RemoteError) as failure:
            await client.request(a.node_id, address, "missing", None)
        assert failure.value.code == "UnknownMethod"
        server.on("echo", echo)
        assert (await client.request(a.node_id, address, "echo", 3))["echo"] == 3


async def test_past_max_handlers_requests_are_refused_not_queued(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    release = trio.Event()

    async def blocked(peer_id: str | None, payload: Any) -> Any:
        await release.wait()
        return payload

    async with running(a, max_handlers=2) as (server, address), running(b) as (client, _):
        server.on("blocked", blocked)
        async with trio.open_nursery() as nursery:
            for n in range(2):
                nursery.start_soon(client.request, a.node_id, address, "blocked", n)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(RemoteError) as failure:
                await client.request(a.node_id, address, "blocked", 3)
            assert failure.value.code == "Overloaded"
            release.set()


# -- connections come and go -----------------------------------------------------------------


async def test_reconnects_after_the_peer_restarts(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    async with running(b) as (client, _):
        async with running(a) as (server, address):
            server.on("echo", echo)
            assert (await client.request(a.node_id, address, "echo", 1))["echo"] == 1
        with pytest.raises(PeerUnreachable):
            await client.request(a.node_id, address, "echo", 2)
        async with running(a, port=address[1]) as (server, _):
            server.on("echo", echo)
            assert (await client.request(a.node_id, address, "echo", 3))["echo"] == 3


async def test_requests_in_flight_fail_when_the_peer_goes_away(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]

    async def never(peer_id: str | None, payload: Any) -> Any:
        await trio.sleep_forever()

    async with running(b) as (client, _):
        async with running(a) as (server, address):
            server.on("never", never)
            async with trio.open_nursery() as nursery:
                failures: list[BaseException] = []

                async def call() -> None:
                    try:
                        await client.request(a.node_id, address, "never", None)
                    except PeerUnreachable as error:
                        failures.append(error)

                nursery.start_soon(call)
                await trio.testing.wait_all_tasks_blocked()
                await server.aclose()
        assert len(failures) == 1


async def test_identity_pin_refuses_another_node(nodes: list[NodeTLS]) -> None:
    a, b, c = nodes
    async with running(a) as (server, address), running(b) as (client, _):
        server.on("echo", echo)
        with pytest.raises(IdentityMismatch):
            await client.request(c.node_id, address, "echo", 1)  # a answers at c's address
        assert not client._outbound
        assert (await client.request(a.node_id, address, "echo", 2))["echo"] == 2


async def test_a_foreign_cluster_cannot_connect(nodes: list[NodeTLS], foreign: NodeTLS) -> None:
    a = nodes[0]
    async with running(a) as (server, address), running(foreign) as (stranger, _):
        server.on("echo", echo)
        with pytest.raises(PeerUnreachable):
            await stranger.request(a.node_id, address, "echo", 1)


async def test_callers_without_a_certificate_go_to_the_join_handler_only(
    nodes: list[NodeTLS],
) -> None:
    a = nodes[0]
    seen: list[str] = []

    async def one_frame_echo(stream: trio.SSLStream, peer: str) -> None:
        seen.append(peer)
        [message] = await receive_messages(stream, 1)
        await stream.send_all(encode_frame({"joined": message}))

    async with running(a) as (server, address):
        server.on("echo", echo)
        anonymous = anonymous_client_context(a)
        stream = trio.SSLStream(
            await trio.open_tcp_stream(*address), anonymous, server_hostname=LOCALHOST
        )
        await stream.do_handshake()
        await stream.send_all(encode_frame({"t": "hello", "c": "control"}))
        assert await closed_by_peer(stream)  # no join handler yet: closed at once

        server.on_unauthenticated(one_frame_echo)
        stream = trio.SSLStream(
            await trio.open_tcp_stream(*address), anonymous, server_hostname=LOCALHOST
        )
        await stream.do_handshake()
        await stream.send_all(encode_frame({"t": "req", "id": 1, "m": "echo", "p": 1}))
        assert await receive_messages(stream, 1) == [
            {"joined": {"t": "req", "id": 1, "m": "echo", "p": 1}}
        ]
        assert await closed_by_peer(stream)  # the handler returned: the stream is closed
        assert seen and seen[0].startswith("127.0.0.1:")
        assert not server._connections


async def test_a_node_joins_through_the_transport_listener(
    nodes: list[NodeTLS], tmp_path: Path
) -> None:
    join = pytest.importorskip("cluster.join")
    from cluster import pki

    a = nodes[0]
    async with running(a) as (server, address):
        server.on("echo", echo)
        server.on_unauthenticated(
            lambda stream, peer: join.serve_join(stream, a.identity, peer=peer)
        )
        newcomer = pki.NodeIdentity.load_or_create(tmp_path / "newcomer")
        token = join.parse_token(join.token_for(a.identity))
        await join.join_cluster(*address, newcomer, token)
        assert newcomer.is_member
        joined = NodeTLS(
            newcomer.node_id,
            newcomer,
            pki.server_context(newcomer),
            pki.client_context(newcomer),
            nodes[1].peer_id_of,
        )
        async with running(joined) as (client, _):
            answer = await client.request(a.node_id, address, "echo", 1)
    assert answer == {"from": newcomer.node_id, "echo": 1}


async def test_aclose_stops_the_listener(nodes: list[NodeTLS]) -> None:
    a = nodes[0]
    async with running(a) as (_, address):
        pass
    with pytest.raises(OSError):
        await trio.open_tcp_stream(*address)


# -- hostile bytes close only their own connection -------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(struct.pack(">I", 2**20 + 1), id="oversized-length"),
        pytest.param(struct.pack(">I", 1) + b"\xc1", id="undecodable-body"),
        pytest.param(encode_frame(["not", "a", "message"]), id="not-a-message"),
        pytest.param(encode_frame({"t": "res"}) + b"\x00" * 64, id="garbage-after-frame"),
    ],
)
async def test_bad_frames_close_only_their_connection(nodes: list[NodeTLS], junk: bytes) -> None:
    a, b, c = nodes
    async with running(a, max_frame=2**20) as (server, address), running(b) as (client, _):
        server.on("echo", echo)
        assert (await client.request(a.node_id, address, "echo", 1))["echo"] == 1
        rogue = await raw_tls_client(address, c)  # a member's certificate, then junk
        assert await receive_messages(rogue, 1) == [{"t": "welcome"}]
        await rogue.send_all(junk)
        assert await closed_by_peer(rogue)
        assert (await client.request(a.node_id, address, "echo", 2))["echo"] == 2
        assert len(server._connections) == 1  # the good one, never reconnected


async def test_plain_tcp_garbage_does_not_disturb_the_listener(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    async with running(a) as (server, address), running(b) as (client, _):
        server.on("echo", echo)
        junk = await trio.open_tcp_stream(*address)
        await junk.send_all(b"GET / HTTP/1.1\r\n\r\n" + bytes(range(256)))
        with trio.fail_after(5):  # a TLS alert perhaps, then the server hangs up
            while await junk.receive_some(65536):
                pass
        await junk.aclose()
        assert (await client.request(a.node_id, address, "echo", 1))["echo"] == 1


# -- timeouts --------------------------------------------------------------------------------


async def test_request_timeout_leaves_the_connection_usable(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    answer = trio.Event()

    async def slow(peer_id: str | None, payload: Any) -> Any:
        await answer.wait()
        return "late"

    async with running(a) as (server, address), running(b) as (client, _):
        server.on("slow", slow)
        server.on("echo", echo)
        with pytest.raises(RequestTimeout):
            await client.request(a.node_id, address, "slow", None, timeout=0.2)
        answer.set()  # the late answer arrives and is ignored
        assert (await client.request(a.node_id, address, "echo", 1))["echo"] == 1


async def test_connect_timeout_is_peer_unreachable(nodes: list[NodeTLS]) -> None:
    b = nodes[1]
    silent = (await trio.open_tcp_listeners(0, host=LOCALHOST))[0]  # accepts, never speaks TLS
    port = silent.socket.getsockname()[1]
    async with running(b, connect_timeout=0.2) as (client, _):
        with pytest.raises(PeerUnreachable, match="timed out"):
            await client.request(nodes[0].node_id, (LOCALHOST, port), "echo", 1)
    await silent.aclose()


async def test_refused_port_is_peer_unreachable(nodes: list[NodeTLS]) -> None:
    b = nodes[1]
    closed = (await trio.open_tcp_listeners(0, host=LOCALHOST))[0]
    port = closed.socket.getsockname()[1]
    await closed.aclose()
    async with running(b) as (client, _):
        with pytest.raises(PeerUnreachable):
            await client.request(nodes[0].node_id, (LOCALHOST, port), "echo", 1)


# -- bulk ------------------------------------------------------------------------------------


async def digest_sink(peer_id: str, header: Any, bulk: BulkStream) -> None:
    digest, size = hashlib.sha256(), 0
    async for chunk in bulk:
        digest.update(chunk)
        size += len(chunk)
    await bulk.send(header["reply"] + digest.digest() + size.to_bytes(8, "big"))


async def test_bulk_round_trip_and_errors(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]

    async def refuse(peer_id: str, header: Any, bulk: BulkStream) -> None:
        raise PermissionError("nope")

    async with running(a) as (server, address), running(b) as (client, _):
        server.on_bulk("sink", digest_sink)
        server.on_bulk("refuse", refuse)
        body = random.Random(1).randbytes(700_000)
        async with client.open_bulk(a.node_id, address, "sink", {"reply": b"ok:"}) as bulk:
            await bulk.send(body)
            await bulk.send_eof()
            reply = b"".join([chunk async for chunk in bulk])
        assert reply == b"ok:" + hashlib.sha256(body).digest() + len(body).to_bytes(8, "big")

        async with client.open_bulk(a.node_id, address, "refuse", None) as bulk:
            with pytest.raises(RemoteError, match="PermissionError"):
                await bulk.receive()
        with pytest.raises(RemoteError, match="UnknownMethod"):
            async with client.open_bulk(a.node_id, address, "missing", None):
                pass
        with pytest.raises(IdentityMismatch):
            async with client.open_bulk(nodes[2].node_id, address, "sink", None):
                pass


async def test_pings_stay_fast_during_a_64_mib_bulk_transfer(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    size, piece = 64 * 2**20, random.Random(2).randbytes(2**20)
    latencies: list[float] = []
    async with running(a) as (server, address), running(b) as (client, _):
        server.on_bulk("sink", digest_sink)
        server.on("ping", echo)
        await client.request(a.node_id, address, "ping", 0)
        done = trio.Event()

        async def pinger() -> None:
            while not done.is_set():
                start = trio.current_time()
                await client.request(a.node_id, address, "ping", 0, timeout=10)
                latencies.append(trio.current_time() - start)
                await trio.sleep(0.005)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pinger)
            transfer_start = trio.current_time()
            async with client.open_bulk(a.node_id, address, "sink", {"reply": b""}) as bulk:
                for _ in range(size // len(piece)):
                    await bulk.send(piece)
                await bulk.send_eof()
                reply = b"".join([chunk async for chunk in bulk])
            transfer_time = trio.current_time() - transfer_start
            done.set()
        assert int.from_bytes(reply[32:], "big") == size
        assert len(server._connections) == 1  # the bulk body never touched the control link
    assert len(latencies) >= 3, f"only {len(latencies)} pings during {transfer_time:.2f}s"
    # Generous: a ping waits for at most a few 256 KiB chunks, never for the whole body.
    assert max(latencies) < max(0.5, transfer_time / 4), (max(latencies), transfer_time)


# -- fault injection -------------------------------------------------------------------------


async def test_partition_drops_both_ways_and_heal_restores(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    notes: list[Any] = []

    async def note(peer_id: str | None, payload: Any) -> None:
        notes.append((peer_id, payload))

    async with running(a) as (server, a_address), running(b) as (client, b_address):
        for transport in (server, client):
            transport.on("echo", echo)
            transport.on("note", note)
        await client.request(a.node_id, a_address, "echo", 0)
        await server.request(b.node_id, b_address, "echo", 0)

        server.faults.partition([a.node_id], [b.node_id])  # only a knows about it
        for caller, peer, address in ((client, a, a_address), (server, b, b_address)):
            with pytest.raises(RequestTimeout):
                await caller.request(peer.node_id, address, "echo", 1, timeout=0.2)
            await caller.notify(peer.node_id, address, "note", 1)
        client.faults.partition([b.node_id], [a.node_id])
        client._outbound.clear()  # forget the live connection: a new dial must fail at once
        with pytest.raises(PeerUnreachable, match="partitioned"):
            await client.request(a.node_id, a_address, "echo", 1)

        server.faults.heal()
        client.faults.heal()
        assert (await client.request(a.node_id, a_address, "echo", 2))["echo"] == 2
        assert (await server.request(b.node_id, b_address, "echo", 3))["echo"] == 3
        assert notes == []


async def test_inbound_connection_from_a_partitioned_peer_is_closed(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    async with running(a) as (server, address), running(b) as (client, _):
        server.on("echo", echo)
        server.faults.partition([a.node_id], [b.node_id])
        with pytest.raises(PeerUnreachable):
            await client.request(a.node_id, address, "echo", 1)


async def test_drop_probability_is_deterministic_by_seed(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    seed, count, probability = 7, 200, 0.3
    draws = random.Random(seed)
    expected = [n for n in range(count) if not draws.random() < probability]
    received: list[int] = []

    async def note(peer_id: str | None, payload: Any) -> None:
        received.append(payload)

    async with running(a) as (server, address), running(b) as (client, _):
        server.on("note", note)
        await client.connect(address, a.node_id)
        client.faults.reseed(seed)
        client.faults.drop_probability = probability
        for n in range(count):
            await client.notify(a.node_id, address, "note", n)
        with trio.fail_after(5):
            while len(received) < len(expected):
                await trio.sleep(0.01)
        assert sorted(received) == expected


async def test_delay_holds_messages_in_order(nodes: list[NodeTLS]) -> None:
    a, b = nodes[0], nodes[1]
    received: list[int] = []

    async def note(peer_id: str | None, payload: Any) -> None:
        received.append(payload)

    async with running(a) as (server, address), running(b) as (client, _):
        server.on("echo", echo)
        server.on("note", note)
        await client.connect(address, a.node_id)
        client.faults.delay = (0.1, 0.2)
        start = trio.current_time()
        assert (await client.request(a.node_id, address, "echo", 1))["echo"] == 1
        assert trio.current_time() - start >= 0.1
