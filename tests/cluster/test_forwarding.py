"""Forwarding a request to another node and streaming its answer back (``cluster.forwarding``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from cluster.forwarding import ForwardedError, forward, serve_forwarded
from cluster.transport import PeerUnreachable, RemoteError, TransportError
from tests.cluster.sim_network import SimNetwork, SimPeers


class CodedError(Exception):
    """Shaped like an ``AWSError``: the forwarding layer carries code, message and status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[SimNetwork, SimPeers, SimPeers]]:
    network = SimNetwork()
    async with network.running():
        yield network, network.peers("a"), network.peers("b")


async def read_all(reply: Any) -> bytes:
    return b"".join([chunk async for chunk in reply])


async def test_header_and_body_both_ways() -> None:
    seen: list[Any] = []

    async def echo(peer: str, header: Any, body: AsyncIterator[bytes]) -> tuple[Any, Any]:
        data = b"".join([chunk async for chunk in body])
        seen.append((peer, header))

        async def reply_body() -> AsyncIterator[bytes]:
            yield data.upper()
            yield b"!"

        return {"length": len(data)}, reply_body()

    async with two_nodes() as (_, a, b):
        serve_forwarded(b, "echo", echo)

        async def body() -> AsyncIterator[bytes]:
            yield b"hello "
            yield b"world"

        async with forward(a, "b", "echo", {"queue": "q1"}, body()) as reply:
            assert reply.header == {"length": 11}
            assert await read_all(reply) == b"HELLO WORLD!"
        assert seen == [("a", {"queue": "q1"})]


async def test_large_bodies_stream_in_bounded_chunks() -> None:
    size = 5 * 1024 * 1024 + 3
    biggest: list[int] = []

    async def count(peer: str, header: Any, body: AsyncIterator[bytes]) -> tuple[Any, Any]:
        total = 0
        async for chunk in body:
            biggest.append(len(chunk))
            total += len(chunk)

        async def zeros() -> AsyncIterator[bytes]:
            for _ in range(header["blocks"]):
                yield bytes(1024 * 1024)

        return {"received": total}, zeros()

    async with two_nodes() as (_, a, b):
        serve_forwarded(b, "count", count)
        async with forward(a, "b", "count", {"blocks": 6}, bytes(size)) as reply:
            assert reply.header == {"received": size}
            received = 0
            async for chunk in reply:
                assert len(chunk) <= 256 * 1024
                received += len(chunk)
        assert received == 6 * 1024 * 1024
        assert max(biggest) <= 256 * 1024


async def test_unread_request_body_is_drained_before_the_reply() -> None:
    """The caller sends everything before it reads: an unread body must not deadlock."""

    async def ignore(peer: str, header: Any, body: AsyncIterator[bytes]) -> tuple[Any, Any]:
        return "ok", None

    async with two_nodes() as (_, a, b):
        serve_forwarded(b, "ignore", ignore)
        with trio.fail_after(5):
            async with forward(a, "b", "ignore", None, bytes(3 * 1024 * 1024)) as reply:
                assert reply.header == "ok"
                assert await read_all(reply) == b""


async def test_handler_error_travels_back_with_its_code() -> None:
    async def refuse(peer: str, header: Any, body: AsyncIterator[bytes]) -> tuple[Any, Any]:
        raise CodedError("QueueDoesNotExist", "The specified queue does not exist.", 400)

    async def plain(peer: str, header: Any, body: AsyncIterator[bytes]) -> tuple[Any, Any]:
        raise KeyError("oops")

    async with two_nodes() as (_, a, b):
        serve_forwarded(b, "refuse", refuse)
        serve_forwarded(b, "plain", plain)
        with pytest.raises(ForwardedError) as caught:
            async with forward(a, "b", "refuse", {}):
                pass
        assert (caught.value.code, caught.value.status) == ("QueueDoesNotExist", 400)
        assert caught.value.message == "The specified queue does not exist."
        assert isinstance(caught.value, TransportError)
        with pytest.raises(ForwardedError) as caught:
            async with forward(a, "b", "plain", {}):
                pass
        assert caught.value.code == "HandlerFailed"
        assert "oops" in caught.value.message


async def test_error_part_way_through_the_reply_body() -> None:
    async def failing(peer: str, header: Any, body: AsyncIterator[bytes]) -> tuple[Any, Any]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            raise CodedError("InternalError", "disk went away", 500)

        return {}, chunks()

    async with two_nodes() as (_, a, b):
        serve_forwarded(b, "failing", failing)
        got: list[bytes] = []
        with pytest.raises(ForwardedError) as caught:
            async with forward(a, "b", "failing", {}) as reply:
                async for chunk in reply:
                    got.append(chunk)
        assert got == [b"first"]
        assert caught.value.code == "InternalError"


async def test_unreachable_peer_and_unknown_method() -> None:
    async with two_nodes() as (network, a, b):
        with pytest.raises(RemoteError) as caught:
            async with forward(a, "b", "nothing", {}):
                pass
        assert caught.value.code == "UnknownMethod"
        network.take_down("b")
        with pytest.raises(PeerUnreachable):
            async with forward(a, "b", "nothing", {}):
                pass
