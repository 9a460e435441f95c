"""Node identity, the cluster CA, TLS contexts and the identity pin (cluster/pki.py)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster import pki
from cluster.join import join_client_context
from tests.cluster.trust_helpers import handshake, make_founder, make_member, tls_pair


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- identity on disk ------------------------------------------------------------------------


def test_identity_is_created_once_and_reloaded(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "cluster"
    created = pki.NodeIdentity.load_or_create(directory)
    assert pki.is_node_id(created.node_id)
    assert not created.is_member
    assert mode(directory) == 0o700
    assert mode(directory / "node.pem") == 0o600

    reloaded = pki.NodeIdentity.load_or_create(directory)
    assert reloaded.node_id == created.node_id
    assert reloaded.key.public_key() == created.key.public_key()
    assert not list(directory.glob(".*.tmp"))


def test_wiped_directory_gets_a_new_node_id(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    first = pki.NodeIdentity.load_or_create(directory).node_id
    shutil.rmtree(directory)
    second = pki.NodeIdentity.load_or_create(directory).node_id
    assert second != first


def test_node_id_without_its_key_refuses_to_start(tmp_path: Path) -> None:
    identity = pki.NodeIdentity.load_or_create(tmp_path)
    identity.node_file.unlink()
    with pytest.raises(pki.IdentityError, match="key is lost"):
        pki.NodeIdentity.load_or_create(tmp_path)


def test_damaged_key_file_refuses_to_start(tmp_path: Path) -> None:
    identity = pki.NodeIdentity.load_or_create(tmp_path)
    identity.node_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    with pytest.raises(pki.IdentityError, match="damaged"):
        pki.NodeIdentity.load_or_create(tmp_path)


# -- the cluster CA and node certificates ----------------------------------------------------


def test_initialise_cluster_makes_a_ca_and_a_node_certificate(tmp_path: Path) -> None:
    founder = make_founder(tmp_path)
    authority = founder.authority
    assert authority is not None and founder.certificate is not None
    ca = authority.certificate
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert authority.cluster_id in str(
        ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    )
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=3640)

    node = founder.certificate
    assert pki.node_id_of(node) == founder.node_id
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [f"{founder.node_id}.zeronode"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"zeronode://node/{founder.node_id}"
    ]
    eku = node.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert dt.timedelta(days=364) < node.not_valid_after_utc - node.not_valid_before_utc

    for private in ("node.pem", "ca.pem", "join.secret"):
        assert mode(tmp_path / private) == 0o600, private
    assert founder.join_secret is not None and len(founder.join_secret) == 32


def test_certificates_pass_a_strict_rfc5280_verifier(tmp_path: Path) -> None:
    """cryptography's webpki-style verifier is stricter than OpenSSL 3.0; passing it keeps
    the profile valid under future OpenSSL/Python defaults (VERIFY_X509_STRICT and beyond)."""
    founder = make_founder(tmp_path)
    assert founder.authority is not None and founder.certificate is not None
    builder = verification.PolicyBuilder().store(verification.Store(founder.ca_certificates))
    server = builder.build_server_verifier(x509.DNSName(f"{founder.node_id}.zeronode"))
    assert server.verify(founder.certificate, [])[-1] == founder.authority.certificate
    client = builder.build_client_verifier().verify(founder.certificate, [])
    assert client.chain[-1] == founder.authority.certificate


def test_membership_survives_a_restart(tmp_path: Path) -> None:
    founder = make_founder(tmp_path)
    reloaded = pki.NodeIdentity.load_or_create(tmp_path)
    assert reloaded.is_member
    assert reloaded.certificate == founder.certificate
    assert reloaded.ca_certificates == founder.ca_certificates
    assert reloaded.authority is not None and founder.authority is not None
    assert reloaded.authority.certificate == founder.authority.certificate
    assert reloaded.authority.key.public_key() == founder.authority.key.public_key()
    assert reloaded.join_secret == founder.join_secret


def test_a_certificate_naming_another_node_is_refused_at_load(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    other = pki.NodeIdentity.load_or_create(tmp_path / "b")
    assert founder.authority is not None
    wrong = founder.authority.issue(other.node_id, founder.key.public_key())
    with pytest.raises(pki.IdentityError, match="not this node's"):
        founder.install_membership(wrong, founder.ca_certificates, None, b"s" * 32)


def test_node_id_of_rejects_certificates_that_are_not_node_certificates(tmp_path: Path) -> None:
    founder = make_founder(tmp_path)
    assert founder.authority is not None
    with pytest.raises(ValueError):
        pki.node_id_of(founder.authority.certificate)


def test_join_secret_rotation_persists(tmp_path: Path) -> None:
    founder = make_founder(tmp_path)
    old = founder.join_secret
    new = pki.rotate_join_secret(founder)
    assert new != old and founder.join_secret == new
    assert pki.NodeIdentity.load_or_create(tmp_path).join_secret == new
    assert mode(tmp_path / "join.secret") == 0o600


def test_eviction_list_persists_and_rejects_non_ids(tmp_path: Path) -> None:
    founder = make_founder(tmp_path)
    gone = "ab" * 16
    assert founder.evicted.add([gone])
    assert not founder.evicted.add([gone])
    assert gone in pki.NodeIdentity.load_or_create(tmp_path).evicted
    with pytest.raises(ValueError):
        founder.evicted.add(["../etc/passwd"])


# -- renewal ---------------------------------------------------------------------------------


def test_renewal_keeps_the_node_id(tmp_path: Path) -> None:
    founder = make_founder(tmp_path)
    assert founder.authority is not None and founder.certificate is not None
    old = founder.certificate
    issued = old.not_valid_before_utc + pki.CLOCK_SKEW
    assert not pki.needs_renewal(old, issued + dt.timedelta(days=200))
    assert pki.needs_renewal(old, issued + dt.timedelta(days=250))

    later = issued + dt.timedelta(days=250)
    renewed = pki.renew_node_certificate(founder, founder.authority, new_key=True, now=later)
    assert pki.node_id_of(renewed) == founder.node_id
    assert renewed.serial_number != old.serial_number
    assert renewed.public_key() != old.public_key()
    reloaded = pki.NodeIdentity.load_or_create(tmp_path)
    assert reloaded.node_id == founder.node_id
    assert reloaded.certificate == renewed
    assert reloaded.key.public_key() == renewed.public_key()
    assert mode(tmp_path / "node.pem") == 0o600


def test_renewal_needs_a_trusted_ca(tmp_path: Path) -> None:
    founder = make_founder(tmp_path / "a")
    stranger = pki.create_certificate_authority()
    with pytest.raises(pki.IdentityError, match="trusts"):
        pki.renew_node_certificate(founder, stranger)


# -- TLS and the identity pin ----------------------------------------------------------------


async def test_two_members_complete_mutual_tls_and_pin_each_other(tmp_path: Path) -> None:
    a = make_founder(tmp_path / "a")
    b = make_member(tmp_path / "b", a)
    server, client = tls_pair(pki.server_context(a), pki.client_context(b))
    assert await handshake(server, client) == {"server": None, "client": None}
    assert server.cipher()[1] == "TLSv1.3"
    assert pki.peer_node_id(server, a) == b.node_id
    assert pki.peer_node_id(client, b, expected=a.node_id) == a.node_id
    await client.send_all(b"ping")
    assert await server.receive_some() == b"ping"


async def test_a_node_of_a_self_made_ca_is_refused_at_handshake(tmp_path: Path) -> None:
    a = make_founder(tmp_path / "a")
    rogue = make_founder(tmp_path / "rogue")  # a CA of its own: chains to nothing a trusts
    rogue_client = pki.client_context(rogue)
    rogue_client.load_verify_locations(cadata=pem(a.ca_certificates[0]))  # CA certs are public
    server, client = tls_pair(pki.server_context(a), rogue_client)
    outcome = await handshake(server, client)
    assert "CERTIFICATE_VERIFY_FAILED" in repr(outcome["server"] and outcome["server"].__cause__)

    # ... and a member dialling the rogue refuses its server certificate.
    server, client = tls_pair(pki.server_context(rogue), pki.client_context(a))
    outcome = await handshake(server, client)
    assert "CERTIFICATE_VERIFY_FAILED" in repr(outcome["client"] and outcome["client"].__cause__)


async def test_a_certificate_naming_another_node_is_refused_by_the_pin(tmp_path: Path) -> None:
    a = make_founder(tmp_path / "a")
    b = make_member(tmp_path / "b", a)
    c = make_member(tmp_path / "c", a)
    server, client = tls_pair(pki.server_context(b), pki.client_context(a))
    assert await handshake(server, client) == {"server": None, "client": None}
    with pytest.raises(pki.PeerRefused, match="expected node"):
        pki.peer_node_id(client, a, expected=c.node_id)  # dialled c, b answered


async def test_an_evicted_node_is_refused(tmp_path: Path) -> None:
    a = make_founder(tmp_path / "a")
    b = make_member(tmp_path / "b", a)
    a.evicted.add([b.node_id])

    server, client = tls_pair(pki.server_context(a), pki.client_context(b))  # b dials a
    assert await handshake(server, client) == {"server": None, "client": None}
    with pytest.raises(pki.PeerRefused, match="evicted"):
        pki.peer_node_id(server, a)

    server, client = tls_pair(pki.server_context(b), pki.client_context(a))  # a dials b
    assert await handshake(server, client) == {"server": None, "client": None}
    with pytest.raises(pki.PeerRefused, match="evicted"):
        pki.peer_node_id(client, a, expected=b.node_id)


async def test_a_client_without_a_certificate_is_marked_join_only(tmp_path: Path) -> None:
    a = make_founder(tmp_path / "a")
    server, client = tls_pair(pki.server_context(a), join_client_context())
    assert await handshake(server, client) == {"server": None, "client": None}
    assert pki.peer_node_id(server, a) is None
    with pytest.raises(pki.PeerRefused, match="no certificate"):
        pki.peer_node_id(server, a, expected="ab" * 16)


async def test_a_renewed_certificate_with_a_new_key_still_connects(tmp_path: Path) -> None:
    a = make_founder(tmp_path / "a")
    b = make_member(tmp_path / "b", a)
    assert b.authority is not None
    pki.renew_node_certificate(b, b.authority, new_key=True)
    server, client = tls_pair(pki.server_context(a), pki.client_context(b))
    assert await handshake(server, client) == {"server": None, "client": None}
    assert pki.peer_node_id(server, a) == b.node_id


async def test_a_two_ca_bundle_trusts_both_during_a_ca_rotation(tmp_path: Path) -> None:
    a = make_founder(tmp_path / "a")
    assert a.authority is not None and a.join_secret is not None
    new_ca = pki.create_certificate_authority(a.authority.cluster_id)
    bundle = [a.authority.certificate, new_ca.certificate]
    b = pki.NodeIdentity.load_or_create(tmp_path / "b")
    b.install_membership(new_ca.issue(b.node_id, b.key.public_key()), bundle, new_ca, a.join_secret)
    assert a.certificate is not None
    a.install_membership(a.certificate, bundle, a.authority, a.join_secret)
    for server_side, client_side in ((a, b), (b, a)):
        server, client = tls_pair(pki.server_context(server_side), pki.client_context(client_side))
        assert await handshake(server, client) == {"server": None, "client": None}
        assert pki.peer_node_id(server, server_side) == client_side.node_id
    assert new_ca.cluster_id == a.authority.cluster_id


def test_contexts_need_a_certificate(tmp_path: Path) -> None:
    fresh = pki.NodeIdentity.load_or_create(tmp_path)
    with pytest.raises(pki.IdentityError, match="join first"):
        pki.server_context(fresh)


def test_file_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        make_founder(tmp_path)
    finally:
        os.umask(previous)
    assert mode(tmp_path / "node.pem") == 0o600
    assert mode(tmp_path / "ca.pem") == 0o600
    assert mode(tmp_path / "join.secret") == 0o600
