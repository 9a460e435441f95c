"""What a service is to the wire layer: named operation handlers over plain dicts.

The wire layer parses a request into the operation's input dict (shapes from botocore's model),
calls ``handler(ctx, params)`` and serializes the returned dict as the operation's output. A
service therefore never sees HTTP, XML or JSON, and an operation the service does not list is
answered with AWS's own error for an unsupported operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zeronode.aws.http import HttpRequest


@dataclass(frozen=True)
class RequestContext:
    """Everything a handler may rely on besides its input.

    ``region`` is the region the client signed for (the credential scope), which is the
    region an AWS endpoint would serve. ``node`` is the agent's ``NodeServices`` (journal,
    settings...). ``http`` is there for the few operations whose semantics live in raw HTTP
    (S3 conditional headers, streaming bodies).
    """

    service: str
    operation: str
    region: str
    account_id: str
    canonical_user_id: str
    access_key_id: str
    request_id: str
    http: HttpRequest
    node: Any


Params = dict[str, Any]
Handler = Callable[[RequestContext, Params], Awaitable[Params]]
#: ``(node, request, routed raw path) -> response headers``; see ``ServiceImpl``.
CorsHook = Callable[[Any, HttpRequest, str], Awaitable[list[tuple[str, str]]]]


@dataclass(frozen=True)
class ServiceImpl:
    """One AWS service: the botocore model it speaks, its handlers and its journal projections.

    A service that answers browsers' cross-origin checks (S3's bucket CORS) sets two hooks,
    which get the node, the request and the raw path it routes on (S3: path style):
    ``preflight`` answers an ``OPTIONS`` request, which browsers never sign, with the headers
    of a 200 (or raises the ``AWSError`` to send); ``cors_headers`` gives the headers to add
    to the response to any other request that carries ``Origin``.
    """

    model_name: str
    handlers: Mapping[str, Handler]
    projections: Sequence[Any] = ()
    preflight: CorsHook | None = None
    cors_headers: CorsHook | None = None
