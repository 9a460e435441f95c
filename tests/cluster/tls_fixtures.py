"""Certificates and TLS contexts for transport tests, made with ``cluster.pki``.

A cluster of node identities (one founder, the rest admitted by its CA), plus a node of a
foreign cluster, each with the server and client contexts and the identity pin the transport
is given in production.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
from cryptography.hazmat.primitives.serialization import Encoding

from cluster import pki


@dataclass(frozen=True)
class NodeTLS:
    """What a ``Transport`` needs to be one node."""

    node_id: str
    identity: pki.NodeIdentity
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    peer_id_of: Callable[[trio.SSLStream], str | None]


def _node_tls(identity: pki.NodeIdentity) -> NodeTLS:
    return NodeTLS(
        identity.node_id,
        identity,
        pki.server_context(identity),
        pki.client_context(identity),
        partial(pki.peer_node_id, identity=identity),
    )


def make_cluster(directory: Path, size: int) -> list[NodeTLS]:
    """``size`` members of one new cluster, identities kept under ``directory``."""
    founder = pki.NodeIdentity.load_or_create(directory / "node0")
    authority = pki.initialise_cluster(founder)
    nodes = [founder]
    for index in range(1, size):
        identity = pki.NodeIdentity.load_or_create(directory / f"node{index}")
        certificate = authority.issue(identity.node_id, identity.key.public_key())
        identity.install_membership(
            certificate, [authority.certificate], None, founder.join_secret or b""
        )
        nodes.append(identity)
    return [_node_tls(identity) for identity in nodes]


def anonymous_client_context(cluster: NodeTLS) -> ssl.SSLContext:
    """A client that trusts the cluster's CA but has no certificate (a joiner's position)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    for certificate in cluster.identity.ca_certificates:
        context.load_verify_locations(cadata=certificate.public_bytes(Encoding.PEM).decode())
    return context
