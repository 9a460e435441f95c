"""rest-json responses (Lambda).

Status, headers and payload come from :mod:`rest_binding`; body members follow the JSON
rules of :mod:`zeronode.aws.serialize.json`. A blob/string payload (``Invoke``'s
``Payload``) is the raw body, an async iterator passed through unread; a structure payload
is the JSON body. An output without body members (``DeleteFunction``'s 204) has an empty
body; one with body members always has a JSON object, ``{}`` if all are unset.
"""

from __future__ import annotations

from typing import Any

from zeronode.aws.http import HttpResponse
from zeronode.aws.serialize import rest_binding
from zeronode.aws.serialize.json import dumps, to_json_value

JSON_CONTENT_TYPE = "application/json"


def serialize_response(
    operation_model: Any, output: dict[str, Any], *, request_id: str
) -> HttpResponse:
    parts = rest_binding.split_output(operation_model, output)
    headers = [("x-amzn-RequestId", request_id)] + parts.headers
    body: Any = b""
    if parts.payload_name is not None:
        payload_shape = parts.payload_shape
        if payload_shape.type_name in ("blob", "string"):
            body = rest_binding.raw_payload(parts.payload_value)
        elif parts.payload_value is not None:
            body = dumps(to_json_value(payload_shape, parts.payload_value))
            headers.append(("Content-Type", JSON_CONTENT_TYPE))
    elif parts.has_body_members:
        body = dumps(to_json_value(operation_model.output_shape, output, body_only=True))
        headers.append(("Content-Type", JSON_CONTENT_TYPE))
    return HttpResponse(status=parts.status, headers=headers, body=body)
