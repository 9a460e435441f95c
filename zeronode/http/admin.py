"""The agent's own HTTP surface, ``/_zeronode/...``, as a quart-trio app.

Endpoints:

- ``GET /_zeronode/health`` -> 200 ``{"node_id", "version", "uptime_seconds",
  "journal": {"position": {origin: seq, ...}}}``. Unauthenticated: it reveals no data, and a
  load balancer or ``systemctl``-style probe must be able to call it.

Anything else under ``/_zeronode`` gets a JSON error (404 ``NotFound``, 405
``MethodNotAllowed``...), never Quart's HTML pages.

Quart's defaults are set deliberately (see research/stack-and-cluster.md A2): the admin
surface takes small JSON requests only, so bodies are capped at 1 MiB and must arrive within
10 s; responses get 60 s (a longer stream, such as a future dashboard feed, must set
``response.timeout = None`` itself, or Quart truncates it silently); OPTIONS is not answered
automatically.
"""

from __future__ import annotations

from typing import Any

from quart import jsonify
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from zeronode import __version__
from zeronode.node import NodeServices

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

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Any:
        name = (error.name or "Error").replace(" ", "")
        body = {"error": name, "message": error.description or name, "status": error.code}
        return jsonify(body), error.code or 500

    return app


def health_document(node: NodeServices) -> dict[str, Any]:
    """The body of ``GET /_zeronode/health``."""
    return {
        "node_id": node.node_id,
        "version": __version__,
        "uptime_seconds": round(node.uptime_seconds(), 3),
        "journal": {"position": dict(node.journal.position())},
    }
