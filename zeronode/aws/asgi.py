"""The AWS app: one raw-ASGI callable that serves every AWS API of the node.

The pipeline for each request, in order (each step is a sans-I/O module; this file only
strings them together and owns the few awaits):

1. parse the SigV4 credentials (no secret needed) to learn the signed service (S3 also
   takes SigV2, :mod:`zeronode.aws.sigv2`, which boto3 still presigns URLs with);
2. route to the service's model and the operation, without reading a streaming body;
3. read a small body whole, under the protocol's bound;
4. verify the signature (the payload hash is the body's for JSON/query services and the
   ``x-amz-content-sha256`` value for S3, whose body is then checked as it is decoded, or,
   for PutObject and UploadPart, by the blob store in its worker threads);
5. parse the input with the protocol's parser, check it against the model;
6. call the service's handler, or answer AWS's error for an unsupported operation;
7. serialize the output, or the ``AWSError`` in the protocol's error format.

A service with CORS hooks (S3's bucket CORS) answers ``OPTIONS`` preflights itself, before
any authentication (browsers never sign them), and adds its CORS headers to every response
to a request carrying ``Origin``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

from botocore.model import ServiceModel

from cluster.replication import QuorumUnavailable
from zeronode.aws import models, routing, sigv2
from zeronode.aws.asgi_io import (
    ClientDisconnected,
    Receive,
    Send,
    request_from_scope,
    send_response,
    unread_body,
)
from zeronode.aws.chunked import ChunkedDecoder, decode_stream, decoder_for
from zeronode.aws.errors import AWSError, internal_error
from zeronode.aws.http import BodyTooLarge, HttpRequest, HttpResponse, read_body
from zeronode.aws.parse import BODY_LIMITS, RequestParts, body_limit, has_streaming_body, parse_request
from zeronode.aws.serialize import not_implemented, serialize_error, serialize_response
from zeronode.aws.serialize.rest_xml import request_id_headers
from zeronode.aws.service import RequestContext, ServiceImpl
from zeronode.aws.sigv4 import (
    AuthContext,
    PayloadHashCheck,
    SignedStream,
    family_for_service,
    missing_authentication,
    parse_authorization,
    s3_payload_hash,
    verify,
)
from zeronode.aws.validate import validate

log = logging.getLogger("zeronode.aws")

QUERY_PROTOCOLS = ("query", "ec2")


def account_ids(access_key_id: str) -> tuple[str, str]:
    """A stable 12-digit account id and 64-hex S3 canonical user id for a root key."""
    digest = hashlib.sha256(f"zeronode-account:{access_key_id}".encode()).hexdigest()
    return str(int(digest[:16], 16) % 10**12).zfill(12), digest


class AwsApp:
    """Serves the six AWS APIs; ``services`` maps a model name to its implementation."""

    def __init__(self, node: Any, services: Mapping[str, ServiceImpl]) -> None:
        self.node = node
        self.services = services
        self.account_id, self.canonical_user_id = account_ids(node.credentials.access_key_id)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        req = request_from_scope(scope, receive)
        response = await self.handle(req)
        if unread_body(req):
            response.headers.append(("Connection", "close"))
        await send_response(send, response, head=req.method == "HEAD")

    async def handle(self, req: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        error_form: ServiceModel | str = "rest-xml"  # S3's, until the service is known
        impl: ServiceImpl | None = None
        path = req.raw_path
        try:
            info = sigv2.parse_sigv2(req) or parse_authorization(req)
            service = routing.service_for(req, info.service if info else None)
            model = self._model(service, req)
            error_form = model
            impl, path = self.services.get(service), self._route_path(service, req)
            if req.method == "OPTIONS" and impl is not None and impl.preflight is not None:
                headers = await impl.preflight(self.node, req, path)
                response = HttpResponse(200, request_id_headers(model, request_id) + headers)
            elif info is None:
                raise missing_authentication(family_for_service(service), service)
            else:
                response = await self._serve(req, request_id, service, model, info, path)
        except Exception as exc:
            err = _aws_error(exc, error_form, request_id)
            response = serialize_error(
                error_form, err, request_id=request_id, resource=req.path, method=req.method
            )
        if impl is not None and impl.cors_headers is not None and req.method != "OPTIONS" \
                and "origin" in req.headers:
            response.headers.extend(await impl.cors_headers(self.node, req, path))
        return response

    def _route_path(self, service: str, req: HttpRequest) -> str:
        """The raw path the service routes on: S3's virtual-hosted requests in path style."""
        if service == "s3":
            return routing.s3_path_style(req, self.node.settings.domain)
        return req.raw_path

    def _model(self, service: str, req: HttpRequest) -> ServiceModel:
        # SQS speaks JSON to current SDKs and the query protocol to older ones.
        if service == "sqs" and "x-amz-target" not in req.headers:
            return models.sqs_query_model()
        return models.service_model(service)

    async def _serve(
        self, req: HttpRequest, request_id: str, service: str, model: ServiceModel, info: Any,
        path: str,
    ) -> HttpResponse:
        protocol = model.metadata["protocol"]
        labels: dict[str, str] = {}
        query = req.query
        body: bytes | AsyncIterator[bytes] = b""
        if protocol in QUERY_PROTOCOLS:
            body = await read_body(req.body, BODY_LIMITS[protocol])
            query = routing.query_params(req, body)
            op = routing.query_operation(model, query)
        else:
            if protocol == "json":
                op = routing.json_operation(model, req.headers)
            else:
                op, labels = routing.match_rest_operation(
                    model, req.method, path, query, req.headers
                )
            if not has_streaming_body(op):
                body = await read_body(req.body, body_limit(op))

        now = datetime.now(timezone.utc)
        if isinstance(info, sigv2.SigV2Info):
            auth = sigv2.verify(
                req, info, secret_for=self.node.credentials.secret_for,
                path=path, now=now, region=self.node.settings.region,
            )
        else:
            if service == "s3":
                payload_hash = s3_payload_hash(req, info)
            else:
                assert isinstance(body, bytes)
                payload_hash = hashlib.sha256(body).hexdigest()
            auth = verify(
                req, info, secret_for=self.node.credentials.secret_for,
                payload_hash=payload_hash, now=now, family=family_for_service(service),
            )
        if service == "s3":
            body = await _s3_body(req, auth, body, streaming=has_streaming_body(op))
        elif has_streaming_body(op):
            body = req.body

        params = parse_request(op, RequestParts(req.headers, query, labels, body))
        if service != "s3":
            # S3 has no generic validation error; its handlers raise S3's specific codes.
            validate(op, params)
        impl = self.services.get(service)
        handler = impl.handlers.get(op.name) if impl else None
        if handler is None:
            raise not_implemented(service, op.name)
        ctx = RequestContext(
            service=service, operation=op.name, region=auth.region, account_id=self.account_id,
            canonical_user_id=self.canonical_user_id, access_key_id=auth.access_key_id,
            request_id=request_id, http=req, node=self.node,
        )
        await self.node.barrier()
        output = await handler(ctx, params)
        return serialize_response(op, output, request_id=request_id)


async def _s3_body(
    req: HttpRequest, auth: AuthContext, body: bytes | AsyncIterator[bytes], *, streaming: bool
) -> bytes | AsyncIterator[bytes]:
    """S3's body as the operation should see it: aws-chunked decoded, its hash checked.

    A streaming body stays a stream whose checks fire as it is consumed (the consumer commits
    only once the stream ended cleanly); a signed one is a :class:`SignedStream`, whose
    consumer may check the hash off the loop (the blob store does). A small body is checked
    here, whole.
    """
    decoder = decoder_for(req, auth)
    if streaming:
        stream = req.body if decoder is None else decode_stream(req.body, decoder)
        return SignedStream(stream, auth.payload_hash) if auth.payload_signed else stream
    assert isinstance(body, bytes)
    if decoder is not None:
        return _decode_whole(decoder, body)
    if auth.payload_signed:
        check = PayloadHashCheck(auth.payload_hash)
        check.update(body)
        check.finish()
    return body


def _decode_whole(decoder: ChunkedDecoder, body: bytes) -> bytes:
    out = b"".join(decoder.feed(body))
    decoder.end()
    return out


def _aws_error(exc: Exception, error_form: ServiceModel | str, request_id: str) -> AWSError:
    """What the client is told about ``exc``; anything unexpected is logged, once."""
    if isinstance(exc, AWSError):
        return exc
    if isinstance(exc, BodyTooLarge):
        return _too_large(error_form, exc.limit)
    if isinstance(exc, QuorumUnavailable):
        return AWSError(
            "ServiceUnavailable", f"Service is unable to handle request: {exc}", 503,
            sender_fault=False,
        )
    if isinstance(exc, ClientDisconnected):
        return AWSError("IncompleteBody", "The request body terminated unexpectedly", 400)
    log.exception("event=aws.request_failed request_id=%s", request_id)
    return internal_error()


def _too_large(error_form: ServiceModel | str, limit: int) -> AWSError:
    if error_form == "rest-xml" or getattr(error_form, "service_name", "") == "s3":
        return AWSError(
            "MaxMessageLengthExceeded", "Your request was too big.", 400,
            extra={"MaxMessageLengthBytes": str(limit)},
        )
    return AWSError("RequestEntityTooLarge", f"Request body must be at most {limit} bytes", 413)
