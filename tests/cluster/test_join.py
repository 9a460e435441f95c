"""Join tokens and the join exchange (cluster/join.py), over real TLS on memory streams."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from cluster import join, pki
from cluster.frames import encode_frame
from tests.cluster.trust_helpers import handshake, make_founder, tls_pair

FINGERPRINT = bytes(range(32))
SECRET = bytes(range(100, 132))


# -- tokens ----------------------------------------------------------------------------------


def test_token_format() -> None:
    token = join.make_token(FINGERPRINT, SECRET)
    version, fingerprint, secret, checksum = token.split(".")
    assert version == "zn1" and len(fingerprint) == len(secret) == 52 and len(checksum) == 8
    assert token == token.lower() and "=" not in token
    assert join.parse_token(token) == join.JoinToken(FINGERPRINT, SECRET)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_tokens_round_trip(fingerprint: bytes, secret: bytes) -> None:
    assert join.parse_token(join.make_token(fingerprint, secret)) == join.JoinToken(
        fingerprint, secret
    )


def test_a_token_wrapped_or_upper_cased_in_transit_still_parses() -> None:
    token = join.make_token(FINGERPRINT, SECRET)
    mangled = f"  {token[:40]}\n{token[40:90].upper()}\r\n  {token[90:]}\n"
    assert join.parse_token(mangled) == join.JoinToken(FINGERPRINT, SECRET)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: "hello world", "not a zeronode join token"),
        (lambda t: "zn2" + t[3:], "version 'zn2' is not understood"),
        (lambda t: t[:60], "4"),
        (lambda t: t[:-3], "checksum is 5 characters long, expected 8"),
        (lambda t: t.replace(".", "", 1), "parts"),
        (lambda t: t[:10] + "0" + t[11:], "not base32"),
        (lambda t: t[:10] + ("b" if t[10] != "b" else "c") + t[11:], "checksum does not match"),
        (lambda t: t.rsplit(".", 1)[0] + ".aaaaaaaa", "checksum does not match"),
    ],
)
def test_mangled_tokens_are_refused_with_a_reason(
    mangle: Callable[[str], str], message: str
) -> None:
    with pytest.raises(join.TokenError, match=message):
        join.parse_token(mangle(join.make_token(FINGERPRINT, SECRET)))


def test_a_token_hides_its_secret_from_repr() -> None:
    token = join.parse_token(join.make_token(FINGERPRINT, SECRET))
    assert SECRET.hex() not in repr(token) and str(SECRET) not in repr(token)


def test_token_for_a_member_names_its_ca(tmp_path: Path) -> None:
    founder = make_founder(tmp_path)
    token = join.parse_token(join.token_for(founder))
    assert founder.authority is not None
    assert token.ca_fingerprint == founder.authority.fingerprint
    assert token.secret == founder.join_secret


# -- the exchange ----------------------------------------------------------------------------


async def run_join(
    member: pki.NodeIdentity, joiner: pki.NodeIdentity, token: str
) -> tuple[str | None, BaseException | None, bytes]:
    """Join ``joiner`` through ``member`` over memory streams. Returns what ``serve_join``
    returned, the joiner's error (if any), and every byte either side put on the wire."""
    server, client = tls_pair(pki.server_context(member), join.join_client_context())
    assert await handshake(server, client) == {"server": None, "client": None}
    assert pki.peer_node_id(server, member) is None  # no certificate: the join path only
    served: list[str | None] = []
    failure: list[BaseException] = []

    async def joiner_side() -> None:
        try:
            await join.request_join(client, joiner, join.parse_token(token))
        except join.JoinError as error:
            failure.append(error)
        finally:
            await trio.aclose_forcefully(client)

    async def member_side() -> None:
        served.append(await join.serve_join(server, member, peer="test"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(joiner_side)
        nursery.start_soon(member_side)
    wire = bytes(server.transport_stream.sent + client.transport_stream.sent)
    return served[0], (failure[0] if failure else None), wire


async def test_a_node_joins_with_the_token_and_talks_mtls_afterwards(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    node_id = joiner.node_id

    served, failure, _ = await run_join(founder, joiner, join.token_for(founder))
    assert failure is None and served == node_id

    reloaded = pki.NodeIdentity.load_or_create(tmp_path / "b")
    assert reloaded.is_member and reloaded.node_id == node_id
    assert reloaded.certificate is not None and pki.node_id_of(reloaded.certificate) == node_id
    assert reloaded.ca_certificates == founder.ca_certificates
    assert reloaded.join_secret == founder.join_secret
    for private in ("node.pem", "ca.pem", "join.secret"):
        assert (tmp_path / "b" / private).stat().st_mode & 0o777 == 0o600

    server, client = tls_pair(pki.server_context(founder), pki.client_context(reloaded))
    assert await handshake(server, client) == {"server": None, "client": None}
    assert pki.peer_node_id(server, founder) == node_id
    assert pki.peer_node_id(client, reloaded, expected=founder.node_id) == founder.node_id


async def test_any_member_can_admit_the_next_node(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    second = pki.NodeIdentity.load_or_create(tmp_path / "b")
    await run_join(founder, second, join.token_for(founder))
    third = pki.NodeIdentity.load_or_create(tmp_path / "c")
    served, failure, _ = await run_join(second, third, join.token_for(founder))
    assert failure is None and served == third.node_id
    assert join.token_for(second) == join.token_for(founder)


async def test_the_secret_never_appears_on_the_wire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    founder = make_founder(tmp_path / "a")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    secret = founder.join_secret
    assert secret is not None
    frames: list[bytes] = []

    def recording_encode(obj: object, **kwargs: int) -> bytes:
        frames.append(encode_frame(obj, **kwargs))
        return frames[-1]

    monkeypatch.setattr("cluster.join.encode_frame", recording_encode)
    _, failure, wire = await run_join(founder, joiner, join.token_for(founder))
    assert failure is None and len(frames) == 4
    forms = [secret, secret.hex().encode(), base64.b32encode(secret).rstrip(b"=").lower()]
    for form in forms:
        assert form not in wire  # the ciphertext ...
        assert not any(form in frame for frame in frames)  # ... and the plaintext inside TLS


async def test_a_wrong_token_is_refused_and_nothing_is_issued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    founder = make_founder(tmp_path / "a")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    assert founder.authority is not None

    def must_not_issue(*args: object, **kwargs: object) -> x509.Certificate:
        raise AssertionError("a certificate was issued")

    monkeypatch.setattr(pki.CertificateAuthority, "issue", must_not_issue)
    wrong = join.make_token(founder.authority.fingerprint, b"\x00" * 32)
    with caplog.at_level(logging.WARNING, logger="cluster.join"):
        served, failure, _ = await run_join(founder, joiner, wrong)
    assert served is None
    assert isinstance(failure, join.JoinRefused) and "wrong join token" in str(failure)
    assert any(
        "join.refused" in r.getMessage() and joiner.node_id in r.getMessage()
        for r in caplog.records
    )
    assert not pki.NodeIdentity.load_or_create(tmp_path / "b").is_member


async def test_a_rotated_secret_invalidates_old_tokens(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    old_token = join.token_for(founder)
    pki.rotate_join_secret(founder)
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    served, failure, _ = await run_join(founder, joiner, old_token)
    assert served is None and isinstance(failure, join.JoinRefused)
    served, failure, _ = await run_join(founder, joiner, join.token_for(founder))
    assert failure is None and served == joiner.node_id


async def test_a_foreign_cluster_is_refused_before_the_proof_is_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours = make_founder(tmp_path / "ours")
    foreign = make_founder(tmp_path / "foreign")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    with caplog.at_level(logging.WARNING, logger="cluster.join"):
        served, failure, _ = await run_join(foreign, joiner, join.token_for(ours))
    assert isinstance(failure, join.ForeignCluster) and "fingerprint" in str(failure)
    assert served is None
    # The member saw the joiner hang up after the challenge: no request ever reached it.
    assert any("closed the connection" in r.getMessage() for r in caplog.records)
    assert not joiner.is_member


async def test_an_evicted_node_id_cannot_join(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    founder.evicted.add([joiner.node_id])
    served, failure, _ = await run_join(founder, joiner, join.token_for(founder))
    assert served is None
    assert isinstance(failure, join.JoinRefused) and "removed from the cluster" in str(failure)


async def test_the_eviction_list_travels_with_the_grant(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    gone = "cd" * 16
    founder.evicted.add([gone])
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    await run_join(founder, joiner, join.token_for(founder))
    assert gone in joiner.evicted
    assert gone in pki.NodeIdentity.load_or_create(tmp_path / "b").evicted


async def test_garbage_from_a_joiner_closes_only_that_join(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    server, client = tls_pair(pki.server_context(founder), join.join_client_context())
    await handshake(server, client)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"\xff\xff\xff\xff garbage")
        assert await join.serve_join(server, founder) is None
    with pytest.raises(trio.BrokenResourceError):  # closed without a TLS goodbye
        await client.receive_some()


async def test_a_silent_joiner_times_out(tmp_path: Path, autojump_clock: object) -> None:
    founder = make_founder(tmp_path / "a")
    server, client = tls_pair(pki.server_context(founder), join.join_client_context())
    await handshake(server, client)
    start = trio.current_time()
    assert await join.serve_join(server, founder, timeout=5) is None
    assert trio.current_time() - start == pytest.approx(5)


async def test_join_over_a_loopback_socket(tmp_path: Path) -> None:
    """The same exchange through join_cluster's real TCP dial."""
    founder = make_founder(tmp_path / "a")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    context = pki.server_context(founder)
    admitted: list[str | None] = []

    async def handle(tcp: trio.SocketStream) -> None:
        stream = trio.SSLStream(tcp, context, server_side=True)
        await stream.do_handshake()
        assert pki.peer_node_id(stream, founder) is None
        admitted.append(await join.serve_join(stream, founder))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        grant = await join.join_cluster(
            "127.0.0.1", port, joiner, join.parse_token(join.token_for(founder))
        )
        nursery.cancel_scope.cancel()
    assert admitted == [joiner.node_id]
    assert pki.node_id_of(grant.certificate) == joiner.node_id and joiner.is_member


# -- the pure core ---------------------------------------------------------------------------


def test_a_leaf_not_issued_by_the_token_ca_is_foreign(tmp_path: Path) -> None:
    """A man in the middle may replay the genuine (public) CA certificate in its challenge,
    but cannot present a TLS certificate that CA issued."""
    ours = make_founder(tmp_path / "ours")
    impostor = make_founder(tmp_path / "impostor")
    token = join.parse_token(join.token_for(ours))
    challenge = join.make_challenge(ours, b"n" * 32)
    assert impostor.certificate is not None and ours.certificate is not None
    impostor_leaf = impostor.certificate.public_bytes(Encoding.DER)
    with pytest.raises(join.ForeignCluster, match="not from the token's CA"):
        join.check_challenge(challenge, token, impostor_leaf)
    genuine = ours.certificate.public_bytes(Encoding.DER)
    assert join.check_challenge(challenge, token, genuine) == ours.ca_certificates[0]


def test_a_proof_is_bound_to_its_nonce_and_key(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    other = pki.NodeIdentity.load_or_create(tmp_path / "c")
    token = join.parse_token(join.token_for(founder))
    challenge = join.make_challenge(founder, b"1" * 32)
    request = join.make_request(challenge, token, joiner)
    with pytest.raises(join.JoinRefused, match="wrong join token"):
        join.admit(founder, request, nonce=b"2" * 32)  # replayed into another exchange
    other_csr = join.make_request(challenge, token, other).csr
    forged = join.JoinRequest(joiner.node_id, other_csr, request.proof)  # proof moved to a key
    with pytest.raises(join.JoinRefused, match="wrong join token"):
        join.admit(founder, forged, nonce=b"1" * 32)
    assert join.admit(founder, request, nonce=b"1" * 32).certificate


def test_a_reply_with_someone_elses_certificate_is_rejected(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    joiner = pki.NodeIdentity.load_or_create(tmp_path / "b")
    other = pki.NodeIdentity.load_or_create(tmp_path / "c")
    token = join.parse_token(join.token_for(founder))
    challenge = join.make_challenge(founder, b"1" * 32)
    accepted = join.admit(founder, join.make_request(challenge, token, other), nonce=b"1" * 32)
    with pytest.raises(join.JoinProtocolError, match="not for our key"):
        join.read_reply(accepted.to_wire(), token, joiner)


@pytest.mark.parametrize(
    "message",
    [
        None,
        [],
        {"type": 1},
        {"type": "join.challenge", "nonce": b"x", "ca_certificates": [b"c"]},
        {"type": "join.challenge", "nonce": b"x" * 32, "ca_certificates": []},
        {"type": "join.challenge", "nonce": "x" * 32, "ca_certificates": [b"c"]},
    ],
)
def test_malformed_messages_are_protocol_errors(message: object) -> None:
    with pytest.raises(join.JoinProtocolError):
        join.JoinChallenge.from_wire(message)


def test_a_refusal_reads_as_join_refused() -> None:
    with pytest.raises(join.JoinRefused, match="because"):
        join.JoinChallenge.from_wire(join.JoinRefusal("because").to_wire())
