"""Which service and which operation a request is for, as AWS endpoints decide it.

One port serves every service, so the service comes first (:func:`service_for`): the SigV4
credential scope names it (``.../us-east-1/dynamodb/aws4_request``); failing that, the JSON
protocols' ``X-Amz-Target`` prefix does; an anonymous request is S3's.

The operation then comes from what each protocol puts on the wire:

* REST (S3, Lambda) -- method, path and query string, matched against every operation's
  ``requestUri`` template (:func:`match_rest_operation`); the body is not needed.
* JSON (DynamoDB, SQS) -- the ``X-Amz-Target`` header (:func:`json_operation`).
* query / EC2 (ELBv2, EC2, legacy SQS) -- the ``Action`` parameter, from the query string or
  the form body (:func:`query_params`, :func:`query_operation`); the caller reads the body
  first, bounded by :func:`zeronode.aws.parse.body_limit`.

REST matching
-------------
A template such as ``/{Bucket}/{Key+}?uploads`` has literal path segments, labels (one
segment; ``+`` labels are greedy and keep every ``/``), and literal query markers: a bare
name (``?uploads``) must be present, ``name=value`` (``?list-type=2``) must be present with
that value. S3 puts many operations on one path and method, so every candidate that fits is
ranked, most specific first, by

1. literal path segments matched (``/WriteGetObjectResponse`` beats ``/{Bucket}``);
2. literal query markers matched (ListObjectsV2's ``list-type=2`` beats ListObjects);
3. required query/header members present minus those missing (``x-amz-copy-source`` makes a
   PUT a CopyObject, ``uploadId`` and ``partNumber`` an UploadPart, both an UploadPartCopy);
4. other query members of the operation present (``max-directory-buckets`` picks
   ListDirectoryBuckets over ListBuckets);
5. not deprecated (GetBucketLifecycle and GetBucketLifecycleConfiguration share a wire form;
   the current one wins), then :data:`PREFERRED_ON_TIE`.

Newer SDKs (not botocore 1.44) add ``x-id=PutObject`` to S3 URIs: when present and naming a
candidate, it decides.

Labels are cut from the *raw* path and then percent-decoded, so an encoded ``%2F`` inside a
label is data, not a separator; ``+`` stays a plus. S3 keys are never normalised: leading,
doubled and trailing slashes and ``..`` segments are part of the key.

Virtual-hosted S3 (``bucket.<domain>``) is mapped to the path-style path by
:func:`s3_path_style`, which leaves the request itself untouched: SigV4 is checked against
the raw path the client signed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from botocore.model import OperationModel, ServiceModel

from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers, HttpRequest
from zeronode.aws.models import SIGNING_NAMES

__all__ = [
    "PREFERRED_ON_TIE",
    "json_operation",
    "match_rest_operation",
    "query_operation",
    "query_params",
    "s3_path_style",
    "service_for",
    "unknown_operation",
]

#: X-Amz-Target prefixes of the JSON services.
TARGET_PREFIXES: dict[str, str] = {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs"}

#: Operations that share a wire form with another one and win when nothing tells them apart.
#: ListDirectoryBuckets is S3 Express's listing on its own regional endpoint; on one
#: endpoint a bare ``GET /`` is ListBuckets.
PREFERRED_ON_TIE: frozenset[str] = frozenset({"ListBuckets"})


# -- service -------------------------------------------------------------------------------


def service_for(req: HttpRequest, scope_service: str | None) -> str:
    """The model name (``s3``, ``dynamodb``, ``sqs``, ``lambda``, ``elbv2``, ``ec2``).

    ``scope_service`` is the service of the request's SigV4 credential scope, or None for an
    unsigned request. A scope naming a service zeronode does not serve is refused.
    """
    if scope_service is not None:
        service = SIGNING_NAMES.get(scope_service)
        if service is None:
            raise AWSError(
                "UnrecognizedClientException",
                f"The security token included in the request is for a service this endpoint "
                f"does not serve: {scope_service}",
                400,
            )
        return service
    target = req.headers.get("x-amz-target")
    if target:
        prefix = target.partition(".")[0]
        if prefix in TARGET_PREFIXES:
            return TARGET_PREFIXES[prefix]
    return "s3"


# -- JSON ----------------------------------------------------------------------------------


def json_operation(service_model: ServiceModel, headers: Headers) -> OperationModel:
    """The operation named by ``X-Amz-Target: <targetPrefix>.<Operation>``."""
    target = headers.get("x-amz-target") or ""
    prefix, _, name = target.partition(".")
    if prefix == service_model.metadata.get("targetPrefix") and name in _operation_names(
        service_model
    ):
        return service_model.operation_model(name)
    raise unknown_operation()


def unknown_operation() -> AWSError:
    return AWSError("UnknownOperationException", "Unknown operation exception", 400)


# -- query / EC2 ---------------------------------------------------------------------------


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def query_params(req: HttpRequest, body: bytes) -> list[tuple[str, str]]:
    """The request's parameters: the query string, then the form body's fields (if any).

    The body counts only when it is declared a form (``application/x-www-form-urlencoded``),
    as the AWS query endpoints require. Form fields are ``+``-for-space encoded.
    """
    params = list(req.query)
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if body and content_type == FORM_CONTENT_TYPE:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AWSError("MalformedQueryString", "The form body is not UTF-8.", 400) from exc
        params.extend(parse_qsl(text, keep_blank_values=True))
    return params


def query_operation(service_model: ServiceModel, params: list[tuple[str, str]]) -> OperationModel:
    """The operation named by the ``Action`` parameter."""
    action = next((value for key, value in params if key == "Action"), None)
    if not action:
        raise AWSError(
            "MissingAction", "The request must contain the parameter Action.", 400
        )
    if action not in _operation_names(service_model):
        raise AWSError(
            "InvalidAction", f"The action {action} is not valid for this web service.", 400
        )
    return service_model.operation_model(action)


@functools.cache
def _operation_names(service_model: ServiceModel) -> frozenset[str]:
    return frozenset(service_model.operation_names)


# -- REST ----------------------------------------------------------------------------------


def s3_path_style(req: HttpRequest, virtual_host_domain: str | None) -> str:
    """The raw path as path-style S3 would spell it.

    With ``virtual_host_domain="s3.example"``, a request to ``Host: photos.s3.example:9000``
    for ``/2024/a.jpg`` is ``/photos/2024/a.jpg``; ``/`` is the bucket itself. Any other host
    (an IP, the domain itself) is already path style.
    """
    raw_path = req.raw_path or "/"
    if not virtual_host_domain:
        return raw_path
    host = _hostname(req.host).lower()
    suffix = "." + virtual_host_domain.lower().strip(".")
    if not host.endswith(suffix) or len(host) == len(suffix):
        return raw_path
    bucket = host[: -len(suffix)]
    return "/" + bucket if raw_path == "/" else "/" + bucket + raw_path


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class _Template:
    operation: str
    method: str
    pattern: re.Pattern[str]
    labels: tuple[str, ...]
    literal_segments: int
    markers: tuple[tuple[str, str], ...]
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]
    optional_query: frozenset[str]
    deprecated: bool


def match_rest_operation(
    service_model: ServiceModel,
    method: str,
    raw_path: str,
    query: Iterable[tuple[str, str]],
    headers: Headers | None = None,
) -> tuple[OperationModel, dict[str, str]]:
    """The operation for a REST request and its URI labels, percent-decoded.

    ``raw_path`` is the path as sent (still percent-encoded; for S3 after
    :func:`s3_path_style`), ``query`` the decoded query pairs. ``headers`` let required
    headers pick between operations that share a path (CopyObject vs PutObject); without
    them such requests resolve to the operation that needs fewer headers.
    Raises the service's "no such operation" error when nothing matches.
    """
    raw_path = raw_path or "/"
    query = list(query)
    present = {key for key, _ in query}
    values: dict[str, str] = {}
    for key, value in query:
        values.setdefault(key, value)
    method = method.upper()
    ranked: list[tuple[tuple[int, ...], _Template, re.Match[str]]] = []
    for template in _templates_by_method(service_model).get(method, ()):
        match = template.pattern.fullmatch(raw_path)
        if match is None:
            continue
        if any(
            key not in present or (want and values[key] != want)
            for key, want in template.markers
        ):
            continue
        required = sum(1 for q in template.required_query if q in present)
        required -= len(template.required_query) - required
        if headers is not None:
            have = sum(1 for h in template.required_headers if h in headers)
            required += have - (len(template.required_headers) - have)
        score = (
            template.literal_segments,
            len(template.markers),
            required,
            len(template.optional_query & present),
            0 if template.deprecated else 1,
            1 if template.operation in PREFERRED_ON_TIE else 0,
        )
        ranked.append((score, template, match))
    if not ranked:
        path_matched = any(t.pattern.fullmatch(raw_path) for t in _templates(service_model))
        raise _no_route(service_model, method, raw_path, path_matched)
    x_id = values.get("x-id")
    if x_id and any(t.operation == x_id for _, t, _ in ranked):
        ranked = [r for r in ranked if r[1].operation == x_id]
    ranked.sort(key=lambda r: r[0], reverse=True)
    _, template, match = ranked[0]
    labels: dict[str, str] = {}
    for group, label in enumerate(template.labels, 1):
        try:
            labels[label] = unquote(match.group(group), errors="strict")
        except UnicodeDecodeError as exc:
            raise _bad_uri(service_model) from exc
    return service_model.operation_model(template.operation), labels


@functools.cache
def _templates(service_model: ServiceModel) -> tuple[_Template, ...]:
    return tuple(
        _compile(service_model.operation_model(name)) for name in service_model.operation_names
    )


@functools.cache
def _templates_by_method(service_model: ServiceModel) -> dict[str, tuple[_Template, ...]]:
    """The templates grouped by HTTP method: a request is matched only against its own
    method's (S3 has ~100 operations; trying every path pattern was a per-request cost)."""
    grouped: dict[str, list[_Template]] = {}
    for template in _templates(service_model):
        grouped.setdefault(template.method, []).append(template)
    return {method: tuple(templates) for method, templates in grouped.items()}


def _compile(op: OperationModel) -> _Template:
    uri = op.http.get("requestUri", "/")
    path, _, literal_query = uri.partition("?")
    regex: list[str] = []
    labels: list[str] = []
    literal_segments = 0
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{"):
            name = piece[1:-1]
            if name.endswith("+"):
                labels.append(name[:-1])
                regex.append("(.+)")
            else:
                labels.append(name)
                regex.append("([^/]+)")
        elif piece:
            literal_segments += len([s for s in piece.split("/") if s])
            regex.append(re.escape(piece))
    pattern = "".join(regex)
    if not path.endswith("+}") and pattern != "/":
        pattern += "/?"  # "/bucket/" is the bucket: an empty key is no key
    markers = tuple(parse_qsl(literal_query, keep_blank_values=True))
    required_query: list[str] = []
    required_headers: list[str] = []
    optional_query: set[str] = set()
    shape = op.input_shape
    if shape is not None:
        required = set(shape.required_members)
        for member_name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", member_name)
            if location == "querystring" and member.type_name != "map":
                if member_name in required:
                    required_query.append(wire)
                else:
                    optional_query.add(wire)
            elif location == "header" and member_name in required:
                required_headers.append(wire)
    return _Template(
        operation=op.name,
        method=op.http.get("method", "POST").upper(),
        pattern=re.compile(pattern, re.DOTALL),
        labels=tuple(labels),
        literal_segments=literal_segments,
        markers=markers,
        required_query=tuple(required_query),
        required_headers=tuple(required_headers),
        optional_query=frozenset(optional_query),
        deprecated=bool(op.deprecated),
    )


def _no_route(service_model: ServiceModel, method: str, raw_path: str, path_matched: bool) -> AWSError:
    if service_model.service_name == "s3":
        bucket, _, key = raw_path[1:].partition("/")
        resource = "OBJECT" if key else "BUCKET" if bucket else "SERVICE"
        return AWSError(
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            405,
            extra={"Method": method, "ResourceType": resource},
        )
    if path_matched:
        return AWSError(
            "MethodNotAllowedException", f"The method {method} is not allowed on {raw_path}", 405
        )
    return AWSError("UnknownOperationException", f"Unknown operation: {method} {raw_path}", 404)


def _bad_uri(service_model: ServiceModel) -> AWSError:
    if service_model.service_name == "s3":
        return AWSError("InvalidURI", "Couldn't parse the specified URI.", 400)
    return AWSError("ValidationException", "The request path is not valid UTF-8.", 400)
