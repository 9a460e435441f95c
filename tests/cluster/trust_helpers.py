"""Helpers for the trust tests: members made directly with a CA, and TLS over memory streams.

TLS here is real (OpenSSL through ``trio.SSLStream``); only the sockets are replaced by
``trio.testing.memory_stream_pair``, optionally tapped so a test can read every byte sent.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trio
import trio.testing

from cluster import pki


def make_member(directory: Path, founder: pki.NodeIdentity) -> pki.NodeIdentity:
    """A node admitted by ``founder``'s CA without the join exchange (for pki-only tests)."""
    assert founder.authority is not None and founder.join_secret is not None
    identity = pki.NodeIdentity.load_or_create(directory)
    certificate = founder.authority.issue(identity.node_id, identity.key.public_key())
    identity.install_membership(
        certificate, founder.ca_certificates, founder.authority, founder.join_secret
    )
    return identity


def make_founder(directory: Path) -> pki.NodeIdentity:
    identity = pki.NodeIdentity.load_or_create(directory)
    pki.initialise_cluster(identity)
    return identity


class Tap(trio.abc.Stream):
    """A stream that records every byte sent through it into ``sent``."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sent = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += data
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


def tls_pair(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> tuple[trio.SSLStream[Tap], trio.SSLStream[Tap]]:
    """(server, client) TLS streams joined by tapped memory streams; no handshake yet."""
    server_end, client_end = trio.testing.memory_stream_pair()
    server = trio.SSLStream(Tap(server_end), server_context, server_side=True)
    client = trio.SSLStream(Tap(client_end), client_context)
    return server, client


async def handshake(
    server: trio.SSLStream[Tap], client: trio.SSLStream[Tap]
) -> dict[str, BaseException | None]:
    """Run both handshakes; return each side's failure (None if it succeeded).

    A side that fails closes its stream so the other is not left waiting. With TLS 1.3 a
    client whose certificate the server rejects may still *complete* its handshake: the
    refusal reaches it only on its first read (research A5), so tests look at the server.
    """
    outcome: dict[str, BaseException | None] = {}

    async def run(name: str, stream: trio.SSLStream[Tap]) -> None:
        try:
            await stream.do_handshake()
            outcome[name] = None
        except trio.BrokenResourceError as error:
            outcome[name] = error
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "server", server)
        nursery.start_soon(run, "client", client)
    return outcome
