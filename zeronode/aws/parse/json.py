"""JSON requests (DynamoDB, SQS): ``POST /`` with ``X-Amz-Target`` and a JSON object body.

The inverse of botocore's ``JSONSerializer``, also used for rest-json bodies (Lambda).
Members are keyed by their ``locationName`` when the model gives one, else by member name;
blobs are base64 strings; timestamps are epoch seconds (possibly fractional) unless the
shape says ``iso8601``; floats may be the strings ``NaN``/``Infinity``/``-Infinity``; a
document type is returned as the JSON value itself. ``null`` members count as absent, and
members the model does not know are ignored, as AWS does.

An empty body is an empty input (some clients send none for operations without members).
A body that is not JSON, or JSON of the wrong type for a member, is the service's
``SerializationException`` (see :func:`zeronode.aws.parse.malformed_input`).
"""

from __future__ import annotations

import json as stdlib_json
import math
from typing import Any

from botocore.model import OperationModel, Shape

from zeronode.aws.errors import AWSError
from zeronode.aws.parse import RequestParts
from zeronode.aws.parse.scalars import (
    EPOCH,
    BadValue,
    parse_blob,
    parse_float,
    parse_timestamp,
    timestamp_format,
)

__all__ = ["decode_members", "load_object", "malformed_json", "parse"]


def malformed_json(operation_model: OperationModel) -> AWSError:
    """The error for a body that is not a JSON object, per service."""
    service = operation_model.service_model.service_name
    if service == "lambda":
        return AWSError(
            "InvalidRequestContentException", "Could not parse request body into json", 400
        )
    if service == "sqs":
        return AWSError(
            "InvalidParameterValue", "The request body could not be parsed as JSON.", 400
        )
    return AWSError(
        "SerializationException", "Start of structure or map found where not expected.", 400
    )


def load_object(operation_model: OperationModel, body: bytes) -> dict[str, Any]:
    """The body as a JSON object; empty means ``{}``."""
    if not body.strip():
        return {}
    try:
        document = stdlib_json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed_json(operation_model) from exc
    if not isinstance(document, dict):
        raise malformed_json(operation_model)
    return document


def parse(operation_model: OperationModel, parts: RequestParts) -> dict[str, Any]:
    shape = operation_model.input_shape
    assert isinstance(parts.body, bytes)
    document = load_object(operation_model, parts.body)
    if shape is None:
        return {}
    return decode_members(shape.members, document, "")


def decode_members(
    members: dict[str, Shape], document: dict[str, Any], where: str
) -> dict[str, Any]:
    """Members of a JSON object by shape (keys: ``locationName`` or member name)."""
    result: dict[str, Any] = {}
    for name, member in members.items():
        value = document.get(member.serialization.get("name", name))
        if value is None:
            continue
        result[name] = _decode(member, value, f"{where}.{name}" if where else name)
    return result


def _decode(shape: Shape, value: Any, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        if not isinstance(value, dict):
            raise BadValue(where, value, "structure")
        return decode_members(shape.members, value, where)
    if kind == "list":
        if not isinstance(value, list):
            raise BadValue(where, value, "list")
        return [_decode(shape.member, item, f"{where}.{i}") for i, item in enumerate(value, 1)]
    if kind == "map":
        if not isinstance(value, dict):
            raise BadValue(where, value, "map")
        return {
            key: _decode(shape.value, item, f"{where}.{key}")
            for key, item in value.items()
            if item is not None
        }
    if kind == "string":
        if not isinstance(value, str):
            raise BadValue(where, value, "string")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise BadValue(where, value, "boolean")
        return value
    if kind in ("integer", "long", "short", "byte"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(where, value, "integer")
        return value
    if kind in ("float", "double"):
        if isinstance(value, str):
            # Only the non-finite values travel as strings.
            if value not in ("NaN", "Infinity", "-Infinity"):
                raise BadValue(where, value, "number")
            return parse_float(value, where)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue(where, value, "number")
        return float(value)
    if kind == "timestamp":
        if isinstance(value, bool):
            raise BadValue(where, value, "timestamp")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadValue(where, value, "timestamp")
        return parse_timestamp(value, timestamp_format(shape, EPOCH), where)
    if kind == "blob":
        if not isinstance(value, str):
            raise BadValue(where, value, "blob")
        return parse_blob(value, where)
    raise BadValue(where, value, kind)

