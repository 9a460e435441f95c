"""Request parsers: an HTTP request in, the operation's input as botocore's params dict out.

Theory of operation
-------------------
botocore's client serializers (``botocore/serialize.py``) turn an input dict into an HTTP
request following the operation's model; each parser here is the exact inverse for one
protocol, so ``parse_request(op, parts_of(serialize(params, op))) == params``. The test
``tests/aws/test_parse_roundtrip.py`` checks that for every operation of the six services.

The request reaches a parser in three steps, none of which does I/O:

1. :mod:`zeronode.aws.routing` picks the service and the operation. REST protocols (S3,
   Lambda) and JSON (DynamoDB, SQS) are routed from the method, path, query string and
   headers alone; the query protocols (ELBv2, EC2, legacy SQS) may carry ``Action`` in a
   form body, which the caller reads first (bounded by :func:`body_limit`).
2. The caller builds :class:`RequestParts`. The body is either bytes, read whole up to
   :func:`body_limit` bytes, or, when :func:`has_streaming_body` is true (S3 PutObject,
   UploadPart, WriteGetObjectResponse...), the request's async byte stream, not read at all.
3. ``parse_request(op, parts)`` returns the input dict. A streaming payload member (``Body``)
   holds the very stream that was passed in: the service consumes it. Any other raw payload
   (Lambda ``Invoke``'s ``Payload``, S3 ``PutBucketPolicy``'s ``Policy``) is bytes/str.

Scalars convert as botocore's response parsers would hand them to a user: ints, floats,
bools, ``bytes`` for blobs, aware UTC datetimes for timestamps. Malformed input raises the
:class:`~zeronode.aws.errors.AWSError` the service returns for it (``MalformedXML``,
``SerializationException``, ``InvalidArgument``, ...). Values are checked against the model's
constraints separately, by :mod:`zeronode.aws.validate`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from botocore.model import OperationModel

from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers
from zeronode.aws.parse.scalars import BadValue

__all__ = [
    "RequestParts",
    "body_limit",
    "has_streaming_body",
    "malformed_input",
    "parse_request",
]

Body = bytes | AsyncIterator[bytes]

#: Bounds for bodies read whole, by protocol. S3's XML documents are small (a
#: DeleteObjects of 1000 keys is ~100 KiB); DynamoDB items are at most 400 KB but a
#: BatchWriteItem carries 25 of them as JSON; SQS sends up to 1 MiB per batch, which the
#: form encoding can triple; Lambda's synchronous payload is at most 6 MB.
BODY_LIMITS: dict[str, int] = {
    "rest-xml": 1 << 20,
    "json": 16 << 20,
    "rest-json": 16 << 20,
    "query": 4 << 20,
    "ec2": 4 << 20,
}


@dataclass(frozen=True)
class RequestParts:
    """What a parser needs of a request, already routed.

    ``query`` is the decoded query string in order (``HttpRequest.query``); for the query
    protocols it also holds the form body's fields (see
    :func:`zeronode.aws.routing.query_params`). ``uri_labels`` maps each label of the
    operation's ``requestUri`` (``Bucket``, ``Key``) to its percent-decoded value, as
    :func:`zeronode.aws.routing.match_rest_operation` returns them.
    """

    headers: Headers = field(default_factory=Headers)
    query: list[tuple[str, str]] = field(default_factory=list)
    uri_labels: dict[str, str] = field(default_factory=dict)
    body: Body = b""


def protocol_of(operation_model: OperationModel) -> str:
    return str(operation_model.metadata["protocol"])


def has_streaming_body(operation_model: OperationModel) -> bool:
    """True when the input's payload is a stream: pass the body iterator, do not read it."""
    return operation_model.has_streaming_input


def body_limit(operation_model: OperationModel) -> int:
    """How many bytes the caller may read for a non-streaming body of this operation."""
    return BODY_LIMITS[protocol_of(operation_model)]


def parse_request(operation_model: OperationModel, parts: RequestParts) -> dict[str, Any]:
    """The operation's input as a botocore params dict (the inverse of its serializer)."""
    protocol = protocol_of(operation_model)
    if not has_streaming_body(operation_model) and not isinstance(parts.body, bytes):
        raise TypeError(f"{operation_model.name} needs the body read (bytes), not a stream")
    try:
        if protocol == "rest-xml":
            from zeronode.aws.parse import rest_xml

            return rest_xml.parse(operation_model, parts)
        if protocol == "rest-json":
            from zeronode.aws.parse import rest_json

            return rest_json.parse(operation_model, parts)
        if protocol == "json":
            from zeronode.aws.parse import json

            return json.parse(operation_model, parts)
        if protocol == "query":
            from zeronode.aws.parse import query

            return query.parse(operation_model, parts)
        if protocol == "ec2":
            from zeronode.aws.parse import ec2

            return ec2.parse(operation_model, parts)
    except BadValue as exc:
        raise malformed_input(operation_model, exc) from exc
    raise ValueError(f"no parser for protocol {protocol!r}")


def malformed_input(operation_model: OperationModel, problem: BadValue) -> AWSError:
    """The error a service returns for a value of the wrong type (``max-keys=ten``)."""
    service = operation_model.service_model.service_name
    protocol = protocol_of(operation_model)
    if service == "s3":
        return AWSError(
            "InvalidArgument",
            f"Invalid value {_shown(problem.value)} for {problem.where}",
            400,
            extra={"ArgumentName": problem.where, "ArgumentValue": _shown(problem.value)},
        )
    if protocol == "json" and service == "dynamodb":
        return AWSError("SerializationException", _type_message(problem), 400)
    if protocol == "json":
        # SQS's JSON protocol answers type errors with the query-compatible code.
        return AWSError("InvalidParameterValue", _type_message(problem), 400)
    if protocol == "rest-json":
        return AWSError("InvalidParameterValueException", _type_message(problem), 400)
    if service == "elbv2":
        return AWSError("ValidationError", _type_message(problem), 400)
    return AWSError("InvalidParameterValue", _type_message(problem), 400)


def _type_message(problem: BadValue) -> str:
    return f"Value {_shown(problem.value)} at '{problem.where}' is not a valid {problem.expected}"


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 64 else text[:61] + "..."
