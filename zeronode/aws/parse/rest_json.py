"""rest-json requests (Lambda): HTTP bindings plus a JSON body.

The inverse of botocore's ``RestJSONSerializer``. The body is, in order of precedence: the
raw bytes of a blob/string ``payload`` member (Lambda ``Invoke``'s ``Payload``: handed over
as bytes, or as the stream when the member is ``streaming``), the JSON of a structure
``payload`` member, or one JSON object holding every member without an HTTP location.
"""

from __future__ import annotations

from typing import Any

from botocore.model import OperationModel

from zeronode.aws.parse import RequestParts
from zeronode.aws.parse.json import decode_members, load_object, malformed_json
from zeronode.aws.parse.rest_binding import body_members, parse_bindings

__all__ = ["parse"]


def parse(operation_model: OperationModel, parts: RequestParts) -> dict[str, Any]:
    shape = operation_model.input_shape
    result = parse_bindings(operation_model, parts.headers, parts.query, parts.uri_labels)
    if shape is None:
        return result
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        if operation_model.has_streaming_input:
            result[payload] = parts.body
        elif member.type_name == "blob":
            if parts.body:
                result[payload] = parts.body
        elif member.type_name == "string":
            if parts.body:
                assert isinstance(parts.body, bytes)
                try:
                    result[payload] = parts.body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise malformed_json(operation_model) from exc
        else:
            assert isinstance(parts.body, bytes)
            document = load_object(operation_model, parts.body)
            if document:
                # botocore sends "{}" when the payload member is absent: an empty
                # payload structure and no payload are the same request.
                result[payload] = decode_members(member.members, document, payload)
        return result
    members = body_members(shape)
    if members:
        assert isinstance(parts.body, bytes)
        result.update(decode_members(members, load_object(operation_model, parts.body), ""))
    return result
