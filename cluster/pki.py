"""Who is in the cluster: node identity, the cluster CA, TLS contexts and the identity pin.

Theory of operation
-------------------
**Identity.** Every node owns a state directory (``<data_dir>/cluster/``, given by the caller).
:meth:`NodeIdentity.load_or_create` creates it on first use with a fresh P-256 key and a random
128-bit node id, and reloads both ever after. The id lives and dies with the directory: a wiped
disk gets a new id, so an id is never reused by a node that lost its state (research, pitfall 4).
The key is written before the id, so a crash during creation leaves no id without its key.

**The cluster CA.** A node that starts alone calls :func:`initialise_cluster`: it creates a
P-256 CA (``BasicConstraints(ca=True, path_length=0)``, ``keyCertSign``, subject
``zeronode cluster <cluster id>``, 10 years), a join secret, and issues its own node
certificate. A node certificate (1 year) names its node id three ways that must agree: the
subject CN, SAN DNS ``<id>.zeronode`` and SAN URI ``zeronode://node/<id>``; its EKU allows both
serverAuth and clientAuth because every node is both. Other nodes get their certificate through
the join exchange (``cluster/join.py``).

**Who holds the CA key (a deliberate choice).** Every member holds the CA key and the join
secret (the key arrives with its certificate, the secret is in its token), so *any* member can
admit a node or renew a certificate, and the cluster keeps admitting nodes when the founder is
gone. The alternative (only the founder signs, other members forward joins to it) makes the
founder a single point of failure for joins and renewals. The cost: a stolen disk of *any*
member yields the CA key, with which a thief can mint certificates for fresh node ids. Evicting
a node therefore guards against a departed or broken node, not against a compromised one; after
a compromise the operator must rotate the CA (below) and the join secret. Key files are mode
0600 in a 0700 directory.

**Files** (each written to a temporary name, fsync'd, renamed, then the directory fsync'd):

- ``node_id`` - the node id, hex.
- ``node.pem`` (0600) - the node's private key, followed by its certificate once it has one.
  Key and certificate share one file so a renewal with a new key swaps both atomically.
- ``ca-bundle.pem`` - every CA this node trusts (two during a CA rotation).
- ``ca.pem`` (0600) - the signing CA: its private key and certificate.
- ``join.secret`` (0600) - the secret that join tokens carry.
- ``evicted`` - node ids removed from the cluster, one per line.

All functions that touch files block: call them through ``trio.to_thread.run_sync``.

**The cluster port** carries both joins and mutual-TLS peer traffic. :func:`server_context`
uses ``CERT_OPTIONAL``: a client that presents a certificate must chain to a trusted CA or the
handshake fails; a client that presents none (a joiner, which has no certificate yet) completes
the handshake. After the handshake the transport calls :func:`peer_node_id`; ``None`` means
"no certificate", and such a connection may carry nothing but the join exchange
(``join.serve_join``). A certificate naming an evicted node, or (with ``expected``) another node
than the one dialled, raises :class:`PeerRefused`; the pin reads the eviction list live, so an
eviction takes effect on the next connection. One port rather than two keeps firewalls and
discovery simple; switching contexts by SNI was rejected because what a mid-handshake context
switch carries over (the verify mode among it) is an OpenSSL internal. :func:`client_context`
requires the server's certificate (TLS 1.3, ``CERT_REQUIRED``) but leaves host-name checking
off: a seed is dialled before its node id is known, so the pin is always :func:`peer_node_id`,
never the host name.

**Rotation.** :func:`needs_renewal` turns true at two thirds of a certificate's life;
:func:`renew_node_certificate` reissues it for the same node id (same key or a new one).
Contexts are snapshots: build new ones after a renewal. A CA rotation would go:
(1) one member creates a new CA and it is added to every member's bundle (both CAs trusted);
(2) every member installs the new CA as its signing CA and renews its certificate with it;
(3) operators hand out new tokens (a token names one CA: a joiner accepts only a server whose
certificate that CA issued); (4) once no certificate signed by the old CA remains, the old CA
leaves the bundles. Steps (1), (2) and (4) are replicated cluster-wide by the caller.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_VALIDITY",
    "NODE_CERT_VALIDITY",
    "CertificateAuthority",
    "EvictionList",
    "IdentityError",
    "NodeIdentity",
    "PeerRefused",
    "ca_fingerprint",
    "client_context",
    "create_certificate_authority",
    "initialise_cluster",
    "is_node_id",
    "needs_renewal",
    "node_id_of",
    "peer_node_id",
    "renew_node_certificate",
    "rotate_join_secret",
    "server_context",
]

log = logging.getLogger("cluster.pki")

CA_VALIDITY = dt.timedelta(days=3650)
NODE_CERT_VALIDITY = dt.timedelta(days=365)
CLOCK_SKEW = dt.timedelta(minutes=5)
"""Certificates start this long before their issue time, so a peer whose clock is slightly
behind does not see a brand-new certificate as not yet valid."""

JOIN_SECRET_BYTES = 32
_NODE_ID = re.compile(r"[0-9a-f]{32}")
_NODE_URI_PREFIX = "zeronode://node/"
_DNS_SUFFIX = ".zeronode"
_CLUSTER_NAME_PREFIX = "zeronode cluster "

NODE_ID_FILE = "node_id"
NODE_FILE = "node.pem"
CA_BUNDLE_FILE = "ca-bundle.pem"
CA_FILE = "ca.pem"
JOIN_SECRET_FILE = "join.secret"
EVICTED_FILE = "evicted"


class IdentityError(Exception):
    """The identity directory is unreadable or inconsistent; the node must not start."""


class PeerRefused(Exception):
    """A peer's certificate was refused by the identity pin (evicted, wrong node, malformed)."""


def is_node_id(text: object) -> bool:
    """True for a well-formed node id: 32 lower-case hex digits (128 random bits)."""
    return isinstance(text, str) and _NODE_ID.fullmatch(text) is not None


def ca_fingerprint(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER encoding: what a join token pins."""
    return certificate.fingerprint(hashes.SHA256())


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def _key_ids(
    public_key: ec.EllipticCurvePublicKey,
) -> tuple[x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier]:
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    return ski, x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


@dataclass(frozen=True, eq=False)
class CertificateAuthority:
    """A cluster CA: its certificate and private key. Holding one means being able to admit."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if self.certificate.public_key() != self.key.public_key():
            raise IdentityError("the CA key does not match the CA certificate")

    @property
    def fingerprint(self) -> bytes:
        return ca_fingerprint(self.certificate)

    @property
    def cluster_id(self) -> str:
        name = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return str(name).removeprefix(_CLUSTER_NAME_PREFIX)

    def issue(
        self,
        node_id: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        now: dt.datetime | None = None,
        validity: dt.timedelta = NODE_CERT_VALIDITY,
    ) -> x509.Certificate:
        """Sign a node certificate for ``node_id`` (never outliving the CA itself)."""
        if not is_node_id(node_id):
            raise ValueError(f"not a node id: {node_id!r}")
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise TypeError("node keys must be P-256 EC keys")
        start = _now(now)
        ski, _ = _key_ids(public_key)
        _, aki = _key_ids(self.key.public_key())
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - CLOCK_SKEW)
            .not_valid_after(min(start + validity, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(node_id + _DNS_SUFFIX),
                        x509.UniformResourceIdentifier(_NODE_URI_PREFIX + node_id),
                    ]
                ),
                critical=False,
            )
            .add_extension(ski, critical=False)
            .add_extension(aki, critical=False)
            .sign(self.key, hashes.SHA256())
        )


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def create_certificate_authority(
    cluster_id: str | None = None, *, now: dt.datetime | None = None
) -> CertificateAuthority:
    """A new self-signed P-256 cluster CA, valid 10 years, naming ``cluster_id`` (random if
    not given; a CA rotation keeps the cluster's id)."""
    cluster_id = cluster_id or secrets.token_hex(16)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zeronode"),
            x509.NameAttribute(NameOID.COMMON_NAME, _CLUSTER_NAME_PREFIX + cluster_id),
        ]
    )
    start = _now(now)
    ski, aki = _key_ids(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(start + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(certificate, key)


def node_id_of(certificate: x509.Certificate) -> str:
    """The node id a node certificate names; ``ValueError`` unless CN, SAN DNS and SAN URI
    all name the same well-formed id (so no name can be read two ways)."""
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as missing:
        raise ValueError(f"not a node certificate: {missing}") from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    dns_names = san.get_values_for_type(x509.DNSName)
    if basic.ca or len(common_names) != 1 or len(uris) != 1 or len(dns_names) != 1:
        raise ValueError("not a node certificate: it must name exactly one node")
    node_id = str(common_names[0].value)
    if (
        not is_node_id(node_id)
        or uris[0] != _NODE_URI_PREFIX + node_id
        or dns_names[0] != node_id + _DNS_SUFFIX
    ):
        raise ValueError(f"node certificate names disagree: CN={node_id!r} URI={uris[0]!r}")
    return node_id


def needs_renewal(certificate: x509.Certificate, now: dt.datetime | None = None) -> bool:
    """True once two thirds of the certificate's validity have passed (or it has expired)."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return _now(now) >= start + (end - start) * 2 / 3


# -- files -----------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, *, private: bool) -> None:
    """Replace ``path`` with ``data``: born with its final mode, fsync'd, renamed, dir fsync'd."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600 if private else 0o644
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as error:
        raise IdentityError(f"cannot write {path}: {error.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise IdentityError(f"cannot read {path}: {error.strerror}") from None


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_certs(certificates: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _load_key_and_certificate(
    data: bytes, path: Path
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate | None]:
    try:
        key = serialization.load_pem_private_key(data, password=None)
        certificates = x509.load_pem_x509_certificates(data) if b"CERTIFICATE" in data else []
    except ValueError as error:
        raise IdentityError(f"{path} is damaged: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{path} does not hold an EC key")
    certificate = certificates[0] if certificates else None
    if certificate is not None and certificate.public_key() != key.public_key():
        raise IdentityError(f"{path}: the certificate does not match the key")
    return key, certificate


class EvictionList:
    """Node ids removed from the cluster, persisted in ``evicted``; consulted by the identity
    pin and by joins. It only grows: a removed id never comes back (a wiped node that rejoins
    does so under a new id)."""

    def __init__(self, path: Path, node_ids: Iterable[str] = ()) -> None:
        self.path = path
        self._node_ids = set(node_ids)

    @classmethod
    def load(cls, path: Path) -> EvictionList:
        data = _read(path)
        node_ids = data.decode("ascii", "replace").split() if data else []
        if not all(is_node_id(node_id) for node_id in node_ids):
            raise IdentityError(f"{path} holds something that is not a node id")
        return cls(path, node_ids)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._node_ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._node_ids))

    def __len__(self) -> int:
        return len(self._node_ids)

    def add(self, node_ids: Iterable[str]) -> bool:
        """Evict ``node_ids`` (persisted before returning); True if any was new."""
        new = set(node_ids) - self._node_ids
        if not new:
            return False
        for node_id in new:
            if not is_node_id(node_id):
                raise ValueError(f"not a node id: {node_id!r}")
        merged = self._node_ids | new
        _write_atomic(self.path, "".join(f"{n}\n" for n in sorted(merged)).encode(), private=False)
        self._node_ids = merged
        log.info("pki.evicted node_ids=%s", ",".join(sorted(new)))
        return True


class NodeIdentity:
    """A node's id, key and (once initialised or joined) certificate, CAs and join secret.

    Attributes are read freely; they change only through :func:`initialise_cluster`,
    :meth:`install_membership`, :func:`renew_node_certificate` and :func:`rotate_join_secret`,
    each of which persists before it updates the object.
    """

    def __init__(
        self,
        directory: Path,
        node_id: str,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate | None,
        ca_certificates: list[x509.Certificate],
        authority: CertificateAuthority | None,
        join_secret: bytes | None,
        evicted: EvictionList,
    ) -> None:
        self.directory = directory
        self.node_id = node_id
        self.key = key
        self.certificate = certificate
        self.ca_certificates = ca_certificates
        self.authority = authority
        self.join_secret = join_secret
        self.evicted = evicted

    def __repr__(self) -> str:
        return f"NodeIdentity(node_id={self.node_id!r}, member={self.is_member})"

    @property
    def is_member(self) -> bool:
        """True once the node holds a certificate (it initialised a cluster or joined one)."""
        return self.certificate is not None

    @property
    def node_file(self) -> Path:
        """The PEM file holding the node key and certificate (for ``load_cert_chain``)."""
        return self.directory / NODE_FILE

    @classmethod
    def load_or_create(cls, directory: Path, node_id: str | None = None) -> NodeIdentity:
        """Load the identity in ``directory``, creating the directory, key and node id if the
        directory holds no node id yet. Raises :class:`IdentityError` if it is inconsistent.

        ``node_id``: the id the node already has elsewhere (the agent passes its journal's, so
        a node has one id everywhere). It is used when the identity is created, and a stored
        id that differs from it is refused: the two were not born together."""
        if node_id is not None and not is_node_id(node_id):
            raise IdentityError(f"not a node id: {node_id!r}")
        directory = Path(directory)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise IdentityError(f"cannot create {directory}: {error.strerror}") from None
        id_data = _read(directory / NODE_ID_FILE)
        if id_data is None:
            return cls._create(directory, node_id)
        stored = id_data.decode("ascii", "replace").strip()
        if not is_node_id(stored):
            raise IdentityError(f"{directory / NODE_ID_FILE} does not hold a node id")
        if node_id is not None and stored != node_id:
            raise IdentityError(
                f"{directory / NODE_ID_FILE} names node {stored}, but this node is {node_id}: "
                "the identity directory belongs to another node"
            )
        node_id = stored
        node_data = _read(directory / NODE_FILE)
        if node_data is None:
            raise IdentityError(f"{directory / NODE_FILE} is missing: the node key is lost")
        key, certificate = _load_key_and_certificate(node_data, directory / NODE_FILE)
        ca_certificates = cls._load_bundle(directory / CA_BUNDLE_FILE)
        authority = None
        ca_data = _read(directory / CA_FILE)
        if ca_data is not None:
            ca_key, ca_certificate = _load_key_and_certificate(ca_data, directory / CA_FILE)
            if ca_certificate is None:
                raise IdentityError(f"{directory / CA_FILE} lacks the CA certificate")
            authority = CertificateAuthority(ca_certificate, ca_key)
        secret = _read(directory / JOIN_SECRET_FILE)
        try:
            join_secret = bytes.fromhex(secret.decode("ascii")) if secret else None
        except ValueError:
            raise IdentityError(f"{directory / JOIN_SECRET_FILE} is damaged") from None
        identity = cls(
            directory,
            node_id,
            key,
            certificate,
            ca_certificates,
            authority,
            join_secret,
            EvictionList.load(directory / EVICTED_FILE),
        )
        identity._check()
        return identity

    @classmethod
    def _create(cls, directory: Path, node_id: str | None) -> NodeIdentity:
        key = ec.generate_private_key(ec.SECP256R1())
        node_id = node_id or secrets.token_hex(16)
        _write_atomic(directory / NODE_FILE, _pem_key(key), private=True)
        _write_atomic(directory / NODE_ID_FILE, f"{node_id}\n".encode(), private=False)
        log.info("pki.identity_created node_id=%s directory=%s", node_id, directory)
        evicted = EvictionList(directory / EVICTED_FILE)
        return cls(directory, node_id, key, None, [], None, None, evicted)

    @staticmethod
    def _load_bundle(path: Path) -> list[x509.Certificate]:
        data = _read(path)
        try:
            return x509.load_pem_x509_certificates(data) if data else []
        except ValueError as error:
            raise IdentityError(f"{path} is damaged: {error}") from None

    def _check(self) -> None:
        """Refuse to start with a certificate that is not ours or not from a trusted CA."""
        if self.certificate is None:
            return
        try:
            if node_id_of(self.certificate) != self.node_id:
                raise ValueError("it names another node")
            if not any(_issued_by(self.certificate, ca) for ca in self.ca_certificates):
                raise ValueError("no trusted CA issued it")
        except ValueError as error:
            raise IdentityError(f"{self.node_file}: bad node certificate: {error}") from None

    def install_membership(
        self,
        certificate: x509.Certificate,
        ca_certificates: list[x509.Certificate],
        authority: CertificateAuthority | None,
        join_secret: bytes,
        evicted: Iterable[str] = (),
    ) -> None:
        """Persist what makes this node a member (certificate last: its presence marks a
        complete membership, so a crash half-way leaves a node that simply joins again)."""
        if certificate.public_key() != self.key.public_key() or node_id_of(certificate) != (
            self.node_id
        ):
            raise IdentityError("the certificate is not this node's")
        if not any(_issued_by(certificate, ca) for ca in ca_certificates):
            raise IdentityError("the certificate was not issued by a CA in the bundle")
        _write_atomic(self.directory / CA_BUNDLE_FILE, _pem_certs(ca_certificates), private=False)
        if authority is not None:
            _write_atomic(
                self.directory / CA_FILE,
                _pem_key(authority.key) + _pem_certs([authority.certificate]),
                private=True,
            )
        _write_atomic(self.directory / JOIN_SECRET_FILE, join_secret.hex().encode(), private=True)
        self.evicted.add(evicted)
        self._write_node(self.key, certificate)
        self.ca_certificates = list(ca_certificates)
        self.authority = authority
        self.join_secret = join_secret

    def forget_membership(self) -> None:
        """Leave the cluster on this disk only, keeping the node's id and key: for a lone
        founder that is told to join another cluster (nobody else holds its CA, so nobody is
        left behind). The certificate goes first: without it the node is simply not a member,
        whatever else a crash half-way leaves."""
        _write_atomic(self.node_file, _pem_key(self.key), private=True)
        for name in (CA_FILE, JOIN_SECRET_FILE, CA_BUNDLE_FILE, EVICTED_FILE):
            try:
                (self.directory / name).unlink(missing_ok=True)
            except OSError as error:
                raise IdentityError(f"cannot remove {self.directory / name}: {error}") from None
        self.certificate, self.ca_certificates, self.authority = None, [], None
        self.join_secret = None
        self.evicted = EvictionList(self.directory / EVICTED_FILE)
        log.info("pki.membership_forgotten node_id=%s", self.node_id)

    def _write_node(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        _write_atomic(self.node_file, _pem_key(key) + _pem_certs([certificate]), private=True)
        self.key, self.certificate = key, certificate


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def initialise_cluster(
    identity: NodeIdentity, *, now: dt.datetime | None = None
) -> CertificateAuthority:
    """Make ``identity`` the founder of a new cluster: a CA, a join secret, its certificate."""
    if identity.is_member:
        raise IdentityError(f"node {identity.node_id} already belongs to a cluster")
    authority = create_certificate_authority(now=now)
    certificate = authority.issue(identity.node_id, identity.key.public_key(), now=now)
    identity.install_membership(
        certificate, [authority.certificate], authority, secrets.token_bytes(JOIN_SECRET_BYTES)
    )
    log.info(
        "pki.cluster_initialised cluster_id=%s node_id=%s fingerprint=%s",
        authority.cluster_id,
        identity.node_id,
        authority.fingerprint.hex(),
    )
    return authority


def rotate_join_secret(identity: NodeIdentity) -> bytes:
    """Replace the join secret (every token issued before stops working) and return it."""
    if identity.join_secret is None:
        raise IdentityError("this node holds no join secret")
    secret = secrets.token_bytes(JOIN_SECRET_BYTES)
    _write_atomic(identity.directory / JOIN_SECRET_FILE, secret.hex().encode(), private=True)
    identity.join_secret = secret
    log.info("pki.join_secret_rotated node_id=%s", identity.node_id)
    return secret


def renew_node_certificate(
    identity: NodeIdentity,
    ca: CertificateAuthority,
    *,
    new_key: bool = False,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Issue ``identity`` a fresh certificate from ``ca`` for the same node id, with the same
    key or (``new_key``) a new one; key and certificate are replaced in one atomic rename."""
    if not any(ca.certificate == trusted for trusted in identity.ca_certificates):
        raise IdentityError("renewal must use a CA this node trusts")
    key = ec.generate_private_key(ec.SECP256R1()) if new_key else identity.key
    certificate = ca.issue(identity.node_id, key.public_key(), now=now)
    identity._write_node(key, certificate)
    log.info(
        "pki.certificate_renewed node_id=%s not_after=%s new_key=%s",
        identity.node_id,
        certificate.not_valid_after_utc.isoformat(),
        new_key,
    )
    return certificate


# -- TLS -------------------------------------------------------------------------------------


def _context(purpose: int, identity: NodeIdentity) -> ssl.SSLContext:
    if identity.certificate is None or not identity.ca_certificates:
        raise IdentityError(f"node {identity.node_id} has no certificate yet: join first")
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(identity.node_file)
    context.load_verify_locations(cadata=_pem_certs(identity.ca_certificates).decode("ascii"))
    return context


def server_context(identity: NodeIdentity) -> ssl.SSLContext:
    """The cluster port's context: TLS 1.3, our certificate, client certificates optional but
    verified against the trusted CAs when presented (see the module docstring)."""
    context = _context(ssl.PROTOCOL_TLS_SERVER, identity)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_context(identity: NodeIdentity) -> ssl.SSLContext:
    """The context for dialling a member: TLS 1.3, our certificate, the server's certificate
    required and verified; identity is then pinned with :func:`peer_node_id`."""
    context = _context(ssl.PROTOCOL_TLS_CLIENT, identity)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def peer_node_id(
    stream: trio.SSLStream[Any],
    identity: NodeIdentity,
    *,
    expected: str | None = None,
) -> str | None:
    """The identity pin: the node id the peer's (already verified) certificate names.

    Call it after ``await stream.do_handshake()``. Returns ``None`` when the peer presented no
    certificate, which only a server-side stream can see: such a connection may carry the
    join exchange and nothing else. Raises :class:`PeerRefused` (and logs) when the
    certificate names an evicted node, is not a node certificate, or names another node than
    ``expected``; with ``expected`` set, a missing certificate is refused too.
    """
    der = stream.getpeercert(binary_form=True)
    try:
        if der is None:
            if expected is not None:
                raise PeerRefused("the peer presented no certificate")
            return None
        try:
            node_id = node_id_of(x509.load_der_x509_certificate(der))
        except ValueError as error:
            raise PeerRefused(str(error)) from None
        if node_id in identity.evicted:
            raise PeerRefused(f"node {node_id} was evicted from the cluster")
        if expected is not None and node_id != expected:
            raise PeerRefused(f"expected node {expected}, the certificate names {node_id}")
        return node_id
    except PeerRefused as refusal:
        log.warning("pki.peer_refused expected=%s reason=%s", expected, refusal)
        raise
