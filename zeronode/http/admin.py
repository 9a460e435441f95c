"""The agent's own HTTP surface, ``/_zeronode/...``, as a quart-trio app.

Endpoints:

- ``GET /_zeronode/health`` -> 200 ``{"node_id", "version", "uptime_seconds",
  "journal": {"position": {origin: seq, ...}}}``. Unauthenticated: it reveals no data, and a
  load balancer or ``systemctl``-style probe must be able to call it.
- ``GET /_zeronode/status`` -> 200, the cluster status document (:mod:`zeronode.status`):
  every member, its state, journal position, disks, version, clock offset, and the verdict.
  Unauthenticated like ``health``: it shows the fleet's shape (ids, addresses, capacity),
  never data, and the dashboard polls it from a browser.
- ``GET /_zeronode/journal`` -> 200 ``{"node_id", "position": {origin: seq}, "state_hash"}``:
  what this node's journal holds and a digest of everything it shows, so an operator (or a
  test) can see that two nodes converged. Unauthenticated like ``status``: a digest reveals
  no data. The hash is a full scan, computed on a reader thread.
- ``GET /_zeronode/`` -> the fleet dashboard: one HTML page, no external assets, whose
  script polls ``status`` every 2 s.
- ``POST /_zeronode/cluster/remove`` with ``{"node": ID or unique prefix}`` -> 200
  ``{"removed": id}``: evicts the node cluster-wide. It changes the cluster, so it must be
  signed with SigV4 by the node's root key (service name ``zeronode``, any region), exactly
  as an AWS call is; ``zeronode remove`` does that with the keys in the data directory.
  403 ``AccessDenied`` otherwise, 400 ``InvalidRequest`` for an unknown or ambiguous node.

Anything else under ``/_zeronode`` gets a JSON error (404 ``NotFound``, 405
``MethodNotAllowed``...), never Quart's HTML pages.

Quart's defaults are set deliberately (see research/stack-and-cluster.md A2): the admin
surface takes small JSON requests only, so bodies are capped at 1 MiB and must arrive within
10 s; responses get 60 s (a longer stream, such as a future dashboard feed, must set
``response.timeout = None`` itself, or Quart truncates it silently); OPTIONS is not answered
automatically.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from quart import Response, jsonify, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from cluster.node import ClusterError
from zeronode import __version__
from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers, HttpRequest
from zeronode.aws.sigv4 import verify
from zeronode.aws.sigv4_parse import parse_authorization
from zeronode.http.dashboard import DASHBOARD_HTML
from zeronode.node import NodeServices
from zeronode.status import status_document

ADMIN_SETTINGS: dict[str, Any] = {
    "PROVIDE_AUTOMATIC_OPTIONS": False,
    "MAX_CONTENT_LENGTH": 1 << 20,
    "BODY_TIMEOUT": 10,
    "RESPONSE_TIMEOUT": 60,
}


def create_admin_app(node: NodeServices) -> QuartTrio:
    """The admin app for ``node``; mount it under ``/_zeronode`` (see :mod:`.dispatch`)."""
    app = QuartTrio("zeronode.admin")
    # Before any route is added: PROVIDE_AUTOMATIC_OPTIONS is read when a rule is registered.
    app.config.update(ADMIN_SETTINGS)
    app.url_map.strict_slashes = False

    @app.get("/_zeronode/health")
    async def health() -> Any:
        return jsonify(health_document(node))

    @app.get("/_zeronode/status")
    async def status() -> Any:
        return jsonify(status_document(node))

    @app.get("/_zeronode/journal")
    async def journal() -> Any:
        return jsonify({
            "node_id": node.node_id,
            "position": dict(node.journal.position()),
            "state_hash": await node.journal.state_hash(),
        })

    @app.get("/_zeronode/")
    async def dashboard() -> Any:
        return Response(DASHBOARD_HTML, content_type="text/html; charset=utf-8")

    @app.post("/_zeronode/cluster/remove")
    async def remove() -> Any:
        data = await request.get_data(as_text=False)
        body = data if isinstance(data, bytes) else data.encode()
        refusal = _unsigned_by_root(node, body)
        if refusal is not None:
            return _error(403, "AccessDenied", refusal)
        if node.cluster is None:
            return _error(400, "InvalidRequest", "this node runs no cluster")
        try:
            wanted = json.loads(body)["node"]
            if not isinstance(wanted, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _error(400, "InvalidRequest", 'expected a JSON body {"node": NODE_ID}')
        try:
            node_id = node.cluster.resolve(wanted)
            await node.cluster.remove(node_id)
        except ClusterError as error:
            return _error(400, "InvalidRequest", str(error))
        return jsonify({"removed": node_id})

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Any:
        name = (error.name or "Error").replace(" ", "")
        body = {"error": name, "message": error.description or name, "status": error.code}
        return jsonify(body), error.code or 500

    return app


def _error(status: int, code: str, message: str) -> Any:
    return jsonify({"error": code, "message": message, "status": status}), status


def _unsigned_by_root(node: NodeServices, body: bytes) -> str | None:
    """Why the current request is not SigV4-signed by the root key (None if it is)."""
    scope: dict[str, Any] = dict(request.scope)
    raw = scope.get("raw_path") or scope["path"].encode()
    raw_path = raw.decode("latin-1").split("?", 1)[0]
    http = HttpRequest(
        method=scope["method"],
        raw_path=raw_path,
        path=unquote(raw_path),
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=Headers.from_asgi(scope.get("headers", [])),
    )
    try:
        info = parse_authorization(http, "json")
        if info is None:
            return "this call must be signed (SigV4) with the node's root key"
        verify(
            http,
            info,
            secret_for=node.credentials.secret_for,
            payload_hash=hashlib.sha256(body).hexdigest(),
            now=datetime.now(UTC),
            family="json",
        )
    except AWSError as error:
        return f"{error.code}: {error.message}"
    return None


def health_document(node: NodeServices) -> dict[str, Any]:
    """The body of ``GET /_zeronode/health``."""
    return {
        "node_id": node.node_id,
        "version": __version__,
        "uptime_seconds": round(node.uptime_seconds(), 3),
        "journal": {"position": dict(node.journal.position())},
    }
