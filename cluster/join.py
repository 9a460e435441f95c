"""Joining a cluster: the token, the proof, and the four-message exchange that admits a node.

Theory of operation
-------------------
A **join token** (``zn1.<ca fingerprint>.<secret>.<checksum>``, lower-case base32, see
:func:`make_token`) carries two things: the SHA-256 fingerprint of the cluster CA, which lets a
joiner that has nothing else recognise a genuine member, and the cluster's join secret, which
lets a member recognise a joiner the operator invited. The checksum catches a token mangled on
its way through a terminal, a chat window or a config file before any network traffic happens.

The **exchange** runs over TLS 1.3 on a member's cluster port. The joiner has no certificate,
so the member's ``CERT_OPTIONAL`` server context lets it in and the transport hands the stream
to :func:`serve_join` (see ``cluster/pki.py``). The joiner cannot let OpenSSL verify the
member either, since it holds only the CA's *hash*, so it checks the member itself::

    joiner                                         member
    join.hello {version}                    ->
                                            <-     join.challenge {CA certificates, nonce}
    (one CA must hash to the token's fingerprint, and the TLS certificate the member proved it
     holds the key of must be a node certificate issued by that CA: else ForeignCluster, and
     nothing else is sent)
    join.request {node id, CSR, proof}      ->
                                            <-     join.accepted {certificate, CA certificates,
                                                   CA key, evicted node ids}  |  join.refused

``proof = HMAC-SHA256(secret, label || CA fingerprint || nonce || node id || public key)``. The
secret itself never travels, not even inside TLS, so a TLS-level mishap (a member's key stolen,
a debugging proxy) exposes at most one proof, and a proof is single-use: it covers the member's
fresh nonce, so it cannot be replayed to obtain the CA key. The public key binds the proof to
the CSR, whose own signature shows the joiner holds the private key. A man in the middle without
a certificate from the cluster CA fails the joiner's check before the proof is sent. A wrong
proof, an evicted node id or a malformed request gets ``join.refused`` with a reason and a
warning in the member's log; nothing is issued. The member checks the proof before the eviction
list, so an uninvited client learns nothing about which ids were removed.

Why the CA key travels in ``join.accepted``: see "Who holds the CA key" in ``cluster/pki.py``.
Anyone holding the token could become a member, and members hold the key, so sending it over
this channel (server pinned by fingerprint, client proven by the secret) adds no new way in.

Every message is one length-prefixed msgpack frame (``cluster/frames.py``), at most
:data:`JOIN_FRAME_LIMIT` bytes. The pure functions (:func:`make_token`, :func:`parse_token`,
:func:`join_proof`, :func:`admit`, :func:`check_challenge`, :func:`make_request`,
:func:`read_reply`) hold all the decisions; :func:`request_join`, :func:`join_cluster` and
:func:`serve_join` only move frames.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cluster.frames import FrameDecoder, FrameError, encode_frame
from cluster.pki import (
    CertificateAuthority,
    NodeIdentity,
    ca_fingerprint,
    is_node_id,
    node_id_of,
)

__all__ = [
    "JOIN_FRAME_LIMIT",
    "JOIN_TIMEOUT",
    "ForeignCluster",
    "JoinAccepted",
    "JoinChallenge",
    "JoinError",
    "JoinGrant",
    "JoinHello",
    "JoinProtocolError",
    "JoinRefusal",
    "JoinRefused",
    "JoinRequest",
    "JoinToken",
    "TokenError",
    "admit",
    "check_challenge",
    "join_client_context",
    "join_cluster",
    "join_proof",
    "make_challenge",
    "make_request",
    "make_token",
    "parse_token",
    "read_reply",
    "request_join",
    "serve_join",
    "token_for",
]

log = logging.getLogger("cluster.join")

PROTOCOL_VERSION = 1
JOIN_FRAME_LIMIT = 64 * 1024
JOIN_TIMEOUT = 10.0
"""Seconds a join may take, end to end, on either side (a stalled joiner holds no slot long)."""

TOKEN_VERSION = "zn1"
_FINGERPRINT_BYTES = 32
_SECRET_BYTES = 32
_NONCE_BYTES = 32
_CHECKSUM_BYTES = 5  # 40 bits: exactly 8 base32 characters
_PROOF_LABEL = b"zeronode-join-v1\x00"


class JoinError(Exception):
    """A join did not complete."""


class TokenError(JoinError, ValueError):
    """A join token that cannot be read; the message says what to fix."""


class JoinProtocolError(JoinError):
    """The other side broke the join protocol (garbage, wrong message, closed early)."""


class ForeignCluster(JoinError):
    """The member we reached is not in the cluster the token names; nothing was sent to it."""


class JoinRefused(JoinError):
    """The member refused the join; the message is the reason, fit to show either side."""


# -- the token -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinToken:
    ca_fingerprint: bytes
    secret: bytes = field(repr=False)


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _checksum(ca_fingerprint: bytes, secret: bytes) -> bytes:
    digest = hashlib.sha256(TOKEN_VERSION.encode() + ca_fingerprint + secret).digest()
    return digest[:_CHECKSUM_BYTES]


def make_token(ca_fingerprint: bytes, secret: bytes) -> str:
    """``zn1.<fingerprint>.<secret>.<checksum>``: lower-case base32 without padding, so it
    survives shells, URLs and config files unquoted; dots mark where a truncation happened."""
    if len(ca_fingerprint) != _FINGERPRINT_BYTES or len(secret) != _SECRET_BYTES:
        raise ValueError("a token holds a 32-byte CA fingerprint and a 32-byte secret")
    checksum = _checksum(ca_fingerprint, secret)
    return ".".join([TOKEN_VERSION, _b32(ca_fingerprint), _b32(secret), _b32(checksum)])


def _unb32(text: str, size: int, what: str) -> bytes:
    expected = -(-size * 8 // 5)  # base32 characters for `size` bytes, unpadded
    if len(text) != expected:
        raise TokenError(
            f"the token's {what} is {len(text)} characters long, expected {expected}: "
            "was the token cut short or mistyped?"
        )
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except binascii.Error:
        raise TokenError(
            f"the token's {what} holds characters that are not base32 (a-z and 2-7)"
        ) from None


def parse_token(text: str) -> JoinToken:
    """Read a token, ignoring case and any whitespace a terminal may have wrapped into it.

    Raises :class:`TokenError` saying what is wrong: not a token, an unknown version, a part
    missing, a bad character, or a checksum that shows a character was changed.
    """
    compact = "".join(text.split()).lower()
    parts = compact.split(".")
    if not parts[0].startswith("zn"):
        raise TokenError("this is not a zeronode join token (tokens start with 'zn1.')")
    if re.fullmatch(r"zn[0-9]+", parts[0]) and parts[0] != TOKEN_VERSION:
        raise TokenError(
            f"token version {parts[0]!r} is not understood by this node (it reads "
            f"{TOKEN_VERSION!r}): upgrade this node or ask for a token from an older one"
        )
    if len(parts) != 4 or parts[0] != TOKEN_VERSION:
        raise TokenError(
            f"the token has {len(parts)} dot-separated parts, expected 4 starting with "
            f"{TOKEN_VERSION!r}: was it cut short or a dot lost when copied?"
        )
    fingerprint = _unb32(parts[1], _FINGERPRINT_BYTES, "CA fingerprint")
    secret = _unb32(parts[2], _SECRET_BYTES, "secret")
    checksum = _unb32(parts[3], _CHECKSUM_BYTES, "checksum")
    if not hmac.compare_digest(checksum, _checksum(fingerprint, secret)):
        raise TokenError("the token's checksum does not match: a character was changed")
    return JoinToken(fingerprint, secret)


def token_for(identity: NodeIdentity) -> str:
    """The token ``zeronode token`` prints on a member that can admit nodes."""
    if identity.authority is None or identity.join_secret is None:
        raise JoinError("this node holds no cluster CA and join secret: it cannot admit nodes")
    return make_token(identity.authority.fingerprint, identity.join_secret)


def join_proof(
    secret: bytes,
    *,
    ca_fingerprint: bytes,
    nonce: bytes,
    node_id: str,
    public_key: ec.EllipticCurvePublicKey,
) -> bytes:
    """HMAC-SHA256 over the transcript (fixed-size fields, then the variable-size key last,
    so no two transcripts read the same)."""
    if len(ca_fingerprint) != _FINGERPRINT_BYTES or len(nonce) != _NONCE_BYTES:
        raise ValueError("fingerprint and nonce are 32 bytes each")
    if not is_node_id(node_id):
        raise ValueError(f"not a node id: {node_id!r}")
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    transcript = _PROOF_LABEL + ca_fingerprint + nonce + node_id.encode("ascii") + spki
    return hmac.new(secret, transcript, hashlib.sha256).digest()


# -- messages --------------------------------------------------------------------------------

_T = TypeVar("_T")


def _field(message: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = message.get(name)
    if not isinstance(value, kind):
        raise JoinProtocolError(f"{message.get('type')}: field {name!r} missing or mistyped")
    return value


def _bytes_list(message: dict[str, Any], name: str) -> tuple[bytes, ...]:
    values = _field(message, name, list)
    if not values or not all(isinstance(value, bytes) for value in values):
        raise JoinProtocolError(f"{message.get('type')}: field {name!r} must list byte strings")
    return tuple(values)


def _expect(message: object, kind: str) -> dict[str, Any]:
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise JoinProtocolError("expected a join message (a map with a 'type')")
    if message["type"] == "join.refused" and kind != "join.refused":
        raise JoinRefused(str(message.get("reason", "no reason given")))
    if message["type"] != kind:
        raise JoinProtocolError(f"expected {kind}, got {message['type']!r}")
    return message


@dataclass(frozen=True)
class JoinHello:
    version: int = PROTOCOL_VERSION

    def to_wire(self) -> dict[str, Any]:
        return {"type": "join.hello", "version": self.version}

    @classmethod
    def from_wire(cls, message: object) -> JoinHello:
        return cls(_field(_expect(message, "join.hello"), "version", int))


@dataclass(frozen=True)
class JoinChallenge:
    ca_certificates: tuple[bytes, ...]  # DER, every CA the member trusts
    nonce: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "join.challenge",
            "ca_certificates": list(self.ca_certificates),
            "nonce": self.nonce,
        }

    @classmethod
    def from_wire(cls, message: object) -> JoinChallenge:
        body = _expect(message, "join.challenge")
        nonce = _field(body, "nonce", bytes)
        if len(nonce) != _NONCE_BYTES:
            raise JoinProtocolError("join.challenge: the nonce must be 32 bytes")
        return cls(_bytes_list(body, "ca_certificates"), nonce)


@dataclass(frozen=True)
class JoinRequest:
    node_id: str
    csr: bytes  # DER PKCS#10, signed with the joiner's node key
    proof: bytes = field(repr=False)

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "join.request",
            "node_id": self.node_id,
            "csr": self.csr,
            "proof": self.proof,
        }

    @classmethod
    def from_wire(cls, message: object) -> JoinRequest:
        body = _expect(message, "join.request")
        return cls(
            _field(body, "node_id", str), _field(body, "csr", bytes), _field(body, "proof", bytes)
        )


@dataclass(frozen=True)
class JoinAccepted:
    certificate: bytes  # DER
    ca_certificates: tuple[bytes, ...]  # DER
    ca_key: bytes = field(repr=False)  # DER PKCS#8 of the signing CA's key
    evicted: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "join.accepted",
            "certificate": self.certificate,
            "ca_certificates": list(self.ca_certificates),
            "ca_key": self.ca_key,
            "evicted": list(self.evicted),
        }

    @classmethod
    def from_wire(cls, message: object) -> JoinAccepted:
        body = _expect(message, "join.accepted")
        evicted = _field(body, "evicted", list)
        if not all(is_node_id(node_id) for node_id in evicted):
            raise JoinProtocolError("join.accepted: 'evicted' must list node ids")
        return cls(
            _field(body, "certificate", bytes),
            _bytes_list(body, "ca_certificates"),
            _field(body, "ca_key", bytes),
            tuple(evicted),
        )


@dataclass(frozen=True)
class JoinRefusal:
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "join.refused", "reason": self.reason}


# -- the member's side (pure) ----------------------------------------------------------------


def make_challenge(identity: NodeIdentity, nonce: bytes) -> JoinChallenge:
    """The member's first answer: the CAs it trusts (one must match the joiner's token) and a
    fresh nonce that the joiner's proof must cover."""
    der = serialization.Encoding.DER
    return JoinChallenge(tuple(ca.public_bytes(der) for ca in identity.ca_certificates), nonce)


def admit(
    identity: NodeIdentity,
    request: JoinRequest,
    *,
    nonce: bytes,
    now: dt.datetime | None = None,
) -> JoinAccepted:
    """Decide a join request answered to the challenge carrying ``nonce``: a signed
    certificate for the joiner, or :class:`JoinRefused` with a reason the joiner may see."""
    authority, secret = identity.authority, identity.join_secret
    if authority is None or secret is None:
        raise JoinRefused("this member holds no cluster CA: ask another member")
    if not is_node_id(request.node_id):
        raise JoinRefused("the node id is malformed")
    try:
        csr = x509.load_der_x509_csr(request.csr)
        signed = csr.is_signature_valid
        public_key = csr.public_key()
    except (ValueError, TypeError):
        raise JoinRefused("the certificate request is malformed") from None
    if not signed:
        raise JoinRefused("the certificate request's signature is invalid")
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise JoinRefused("node keys must be P-256 EC keys")
    expected = join_proof(
        secret,
        ca_fingerprint=authority.fingerprint,
        nonce=nonce,
        node_id=request.node_id,
        public_key=public_key,
    )
    if not hmac.compare_digest(expected, request.proof):
        raise JoinRefused("wrong join token (or its secret was rotated): ask for a new token")
    if request.node_id in identity.evicted:
        raise JoinRefused(
            f"node {request.node_id} was removed from the cluster; "
            "wipe its state directory to join again under a new node id"
        )
    certificate = authority.issue(request.node_id, public_key, now=now)
    der = serialization.Encoding.DER
    return JoinAccepted(
        certificate.public_bytes(der),
        tuple(ca.public_bytes(der) for ca in identity.ca_certificates),
        authority.key.private_bytes(
            der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        tuple(identity.evicted),
    )


# -- the joiner's side (pure) ----------------------------------------------------------------


def check_challenge(
    challenge: JoinChallenge,
    token: JoinToken,
    server_certificate: bytes | None,
    *,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Return the token's CA if the member is genuine; else :class:`ForeignCluster`.

    ``server_certificate`` is the DER certificate the member presented in the TLS handshake
    (whose private key TLS 1.3 proved it holds): it must be a current node certificate issued
    by the CA whose fingerprint the token carries.
    """
    ca = None
    for der in challenge.ca_certificates:
        if hmac.compare_digest(hashlib.sha256(der).digest(), token.ca_fingerprint):
            ca = x509.load_der_x509_certificate(der)
    if ca is None:
        raise ForeignCluster("the member's cluster CA does not match the token's fingerprint")
    if server_certificate is None:
        raise ForeignCluster("the member presented no TLS certificate")
    try:
        leaf = x509.load_der_x509_certificate(server_certificate)
        leaf.verify_directly_issued_by(ca)
        node_id_of(leaf)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise ForeignCluster(
            f"the member's certificate is not from the token's CA: {error}"
        ) from None
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
        raise ForeignCluster("the member's certificate is expired or not yet valid")
    return ca


def make_request(challenge: JoinChallenge, token: JoinToken, identity: NodeIdentity) -> JoinRequest:
    """The joiner's answer: its node id, a CSR signed by its key, and the proof."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.node_id)]))
        .sign(identity.key, hashes.SHA256())
    )
    proof = join_proof(
        token.secret,
        ca_fingerprint=token.ca_fingerprint,
        nonce=challenge.nonce,
        node_id=identity.node_id,
        public_key=identity.key.public_key(),
    )
    return JoinRequest(identity.node_id, csr.public_bytes(serialization.Encoding.DER), proof)


@dataclass(frozen=True)
class JoinGrant:
    """What a successful join hands the joiner, checked and ready to install."""

    certificate: x509.Certificate
    ca_certificates: list[x509.Certificate]
    authority: CertificateAuthority
    evicted: tuple[str, ...]


def read_reply(message: object, token: JoinToken, identity: NodeIdentity) -> JoinGrant:
    """Check the member's reply: the certificate must be ours and from the token's CA, and the
    CA key must be that CA's. Raises :class:`JoinRefused` on ``join.refused``."""
    accepted = JoinAccepted.from_wire(message)
    try:
        certificate = x509.load_der_x509_certificate(accepted.certificate)
        ca_certificates = [x509.load_der_x509_certificate(d) for d in accepted.ca_certificates]
        ca_key = serialization.load_der_private_key(accepted.ca_key, password=None)
    except ValueError as error:
        raise JoinProtocolError(f"join.accepted: undecodable certificate or key: {error}") from None
    signing = [ca for ca in ca_certificates if ca_fingerprint(ca) == token.ca_fingerprint]
    if not signing or not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise JoinProtocolError("join.accepted: the token's CA or its key is missing")
    if ca_key.public_key() != signing[0].public_key():
        raise JoinProtocolError("join.accepted: the CA key is not the token's CA's")
    if certificate.public_key() != identity.key.public_key():
        raise JoinProtocolError("join.accepted: the certificate is not for our key")
    try:
        certificate.verify_directly_issued_by(signing[0])
        if node_id_of(certificate) != identity.node_id:
            raise ValueError("it names another node")
    except (ValueError, TypeError, InvalidSignature) as error:
        raise JoinProtocolError(f"join.accepted: bad certificate: {error}") from None
    return JoinGrant(
        certificate,
        ca_certificates,
        CertificateAuthority(signing[0], ca_key),
        accepted.evicted,
    )


# -- trio plumbing ---------------------------------------------------------------------------


class _Channel:
    """One join conversation: whole messages out, whole messages in, over frames."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._decoder = FrameDecoder(JOIN_FRAME_LIMIT)
        self._pending: collections.deque[Any] = collections.deque()

    async def send(self, message: Any) -> None:
        frame = encode_frame(message.to_wire(), max_frame=JOIN_FRAME_LIMIT)
        try:
            await self.stream.send_all(frame)
        except trio.BrokenResourceError:
            raise JoinProtocolError("the other side closed the connection mid-join") from None

    async def receive(self, parse: Callable[[object], _T]) -> _T:
        while not self._pending:
            try:
                data = await self.stream.receive_some(JOIN_FRAME_LIMIT)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                raise JoinProtocolError("the other side closed the connection mid-join")
            try:
                self._pending.extend(self._decoder.feed(data))
            except FrameError as error:
                raise JoinProtocolError(str(error)) from None
        return parse(self._pending.popleft())


def join_client_context() -> ssl.SSLContext:
    """TLS 1.3 without a client certificate and without OpenSSL's verification of the member:
    the joiner holds only the CA's fingerprint, so :func:`check_challenge` verifies instead."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def request_join(
    stream: trio.SSLStream[Any],
    identity: NodeIdentity,
    token: JoinToken,
    *,
    now: dt.datetime | None = None,
) -> JoinGrant:
    """Run the joiner's side over ``stream`` (made with :func:`join_client_context`) and
    install the membership it grants. Raises :class:`ForeignCluster`, :class:`JoinRefused`
    or :class:`JoinProtocolError`; on any of them nothing is written."""
    if identity.is_member:
        raise JoinError(f"node {identity.node_id} already belongs to a cluster")
    await stream.do_handshake()
    channel = _Channel(stream)
    await channel.send(JoinHello())
    challenge = await channel.receive(JoinChallenge.from_wire)
    try:
        check_challenge(challenge, token, stream.getpeercert(binary_form=True), now=now)
    except ForeignCluster as error:
        log.warning("join.foreign_cluster reason=%s", error)
        raise
    await channel.send(make_request(challenge, token, identity))
    try:
        grant = await channel.receive(lambda message: read_reply(message, token, identity))
    except JoinRefused as refusal:
        log.warning("join.refused_by_member reason=%s", refusal)
        raise
    await trio.to_thread.run_sync(
        identity.install_membership,
        grant.certificate,
        grant.ca_certificates,
        grant.authority,
        token.secret,
        grant.evicted,
    )
    log.info("join.joined node_id=%s cluster_id=%s", identity.node_id, grant.authority.cluster_id)
    return grant


async def join_cluster(
    host: str, port: int, identity: NodeIdentity, token: JoinToken, *, timeout: float = JOIN_TIMEOUT
) -> JoinGrant:
    """Dial a member's cluster port and join through it (see :func:`request_join`)."""
    with trio.fail_after(timeout):
        tcp = await trio.open_tcp_stream(host, port)
        stream = trio.SSLStream(tcp, join_client_context())
        try:
            return await request_join(stream, identity, token)
        finally:
            await trio.aclose_forcefully(stream)


async def serve_join(
    stream: trio.SSLStream[Any],
    identity: NodeIdentity,
    *,
    peer: str = "unknown",
    timeout: float = JOIN_TIMEOUT,
    now: dt.datetime | None = None,
) -> str | None:
    """Serve one join on a handshaken stream whose client presented no certificate; return the
    admitted node id, or None (refused, timed out, protocol error: each logged). The stream
    carries nothing else, so this closes it."""
    try:
        with trio.move_on_after(timeout):
            return await _serve(_Channel(stream), identity, peer, now)
        log.warning("join.refused peer=%s reason=timeout", peer)
    except JoinError as error:
        log.warning("join.refused peer=%s reason=%s", peer, f"protocol: {error}")
    finally:
        await trio.aclose_forcefully(stream)
    return None


async def _serve(
    channel: _Channel, identity: NodeIdentity, peer: str, now: dt.datetime | None
) -> str | None:
    hello = await channel.receive(JoinHello.from_wire)
    if hello.version != PROTOCOL_VERSION:
        reason = f"join protocol version {hello.version} is not supported (this member speaks 1)"
        await channel.send(JoinRefusal(reason))
        log.warning("join.refused peer=%s reason=%s", peer, reason)
        return None
    nonce = secrets.token_bytes(_NONCE_BYTES)
    await channel.send(make_challenge(identity, nonce))
    request = await channel.receive(JoinRequest.from_wire)
    try:
        accepted = admit(identity, request, nonce=nonce, now=now)
    except JoinRefused as refusal:
        node_id = request.node_id if is_node_id(request.node_id) else "malformed"
        log.warning("join.refused peer=%s node_id=%s reason=%s", peer, node_id, refusal)
        await channel.send(JoinRefusal(str(refusal)))
        return None
    await channel.send(accepted)
    log.info("join.admitted peer=%s node_id=%s", peer, request.node_id)
    return request.node_id
