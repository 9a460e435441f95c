"""json 1.0/1.1 responses (DynamoDB, SQS) and the JSON value rules rest-json shares.

The body is the output structure as one JSON object: members under their ``locationName``
(else their name), ``None`` members omitted, blobs base64, timestamps epoch seconds with
millisecond precision unless ``timestampFormat`` says otherwise, non-finite floats as the
strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` (the Smithy rule), document-typed members
as given. ``Content-Type`` is ``application/x-amz-json-<jsonVersion>``; an operation without
an output still answers ``{}``, as AWS does.

Headers: ``x-amzn-RequestId``. DynamoDB also sends ``x-amz-crc32``, the CRC32 of the body
bytes in decimal; botocore *verifies* it when present (a mismatch is retried, then fails), so
it is computed over exactly the bytes sent.
"""

from __future__ import annotations

import json as _json
import math
import zlib
from typing import Any

from zeronode.aws.http import HttpResponse
from zeronode.aws.serialize import values


def to_json_value(shape: Any, value: Any, *, body_only: bool = False) -> Any:
    """``value`` of ``shape`` as plain JSON-ready data.

    ``body_only`` (rest-json, top level only) leaves out members bound to the status line or
    headers.
    """
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is None:
                continue
            if body_only and member.serialization.get("location"):
                continue
            result[member.serialization.get("name", name)] = to_json_value(member, item)
        return result
    if kind == "list":
        return [None if item is None else to_json_value(shape.member, item) for item in value]
    if kind == "map":
        return {
            str(key): to_json_value(shape.value, item)
            for key, item in value.items()
            if item is not None
        }
    if kind == "blob":
        return values.base64_text(value)
    if kind == "timestamp":
        return values.timestamp(value, values.timestamp_format(shape, "unixTimestamp"))
    if kind in ("float", "double"):
        number = float(value)
        return values.float_text(number) if not math.isfinite(number) else number
    if kind in ("integer", "long"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    return value


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON; falls back to ``\\u`` escapes for text UTF-8 cannot encode."""
    text = _json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: only the escaped form is valid JSON text
        return _json.dumps(data, separators=(",", ":")).encode("ascii")


def content_type(service_model: Any) -> str:
    return f"application/x-amz-json-{service_model.metadata.get('jsonVersion', '1.0')}"


def finish_headers(
    service_model: Any, headers: list[tuple[str, str]], body: bytes
) -> list[tuple[str, str]]:
    """Add DynamoDB's ``x-amz-crc32`` over ``body`` (also used for error bodies)."""
    if service_model.metadata.get("endpointPrefix") == "dynamodb":
        headers.append(("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF)))
    return headers


def serialize_response(
    operation_model: Any, output: dict[str, Any], *, request_id: str
) -> HttpResponse:
    service_model = operation_model.service_model
    shape = operation_model.output_shape
    data = {} if shape is None else to_json_value(shape, output)
    body = dumps(data)
    headers = [("x-amzn-RequestId", request_id), ("Content-Type", content_type(service_model))]
    finish_headers(service_model, headers, body)
    return HttpResponse(status=200, headers=headers, body=body)
