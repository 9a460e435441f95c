"""The HTTP bindings of rest-xml and rest-json outputs: status code, headers, payload.

In the two rest protocols an output member may live outside the body:

- ``location: statusCode`` is the HTTP status (Lambda ``Invoke``'s ``StatusCode``);
  otherwise the status is the operation's ``http.responseCode`` (S3 ``DeleteObject`` 204,
  Lambda ``CreateFunction`` 201), else 200;
- ``location: header`` is one header, named by ``locationName``; timestamps default to the
  HTTP date (``rfc822``), ``jsonvalue`` strings are base64 JSON, lists are comma-joined;
- ``location: headers`` is a map spread over headers sharing a prefix (S3's
  ``x-amz-meta-``);
- the output's ``payload`` names the one member that *is* the body: a blob or string
  (streaming or not) is the raw body, a structure is serialized as the whole document.

Header values must be printable ASCII on the wire. A value that is not (S3 user metadata in
any script, for instance) is sent as an RFC 2047 encoded word, ``=?UTF-8?B?...?=``, which is
what S3 does with non-ASCII metadata; CR and LF can therefore never reach the wire.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from zeronode.aws.serialize import values

_PRINTABLE_ASCII = frozenset(range(0x20, 0x7F)) | {0x09}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass
class RestParts:
    """An output split by binding; the protocol module renders ``body_members``/``payload``."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload_name: str | None = None
    payload_shape: Any = None
    payload_value: Any = None
    has_body_members: bool = False


def split_output(operation_model: Any, output: dict[str, Any]) -> RestParts:
    """Status, headers and payload of ``output`` per the operation's output shape."""
    shape = operation_model.output_shape
    parts = RestParts(status=int(operation_model.http.get("responseCode", 200)))
    if shape is None:
        return parts
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        value = output.get(name)
        if location is None:
            parts.has_body_members = True
            continue
        if value is None:
            continue
        if location == "statusCode":
            parts.status = int(value)
        elif location == "header":
            header = member.serialization.get("name", name)
            parts.headers.append((header, header_value(member, value)))
        elif location == "headers":
            prefix = member.serialization.get("name", "")
            for key, item in value.items():
                if item is not None:
                    parts.headers.append((header_name(prefix + key), header_text(str(item))))
    payload = shape.serialization.get("payload")
    if payload is not None:
        parts.payload_name = payload
        parts.payload_shape = shape.members[payload]
        parts.payload_value = output.get(payload)
        parts.has_body_members = False
    return parts


def header_value(shape: Any, value: Any) -> str:
    """One header-bound member as the header's text."""
    kind = shape.type_name
    if kind == "string":
        if shape.serialization.get("jsonvalue"):
            return values.jsonvalue_header(value)
        return header_text(value if isinstance(value, str) else str(value))
    if kind == "timestamp":
        return str(values.timestamp(value, values.timestamp_format(shape, "rfc822")))
    if kind == "boolean":
        return values.boolean_text(value)
    if kind == "blob":
        return values.base64_text(value)
    if kind == "list":
        return ", ".join(header_value(shape.member, item) for item in value if item is not None)
    if kind in ("integer", "long", "float", "double"):
        return values.number_text(shape, value)
    return header_text(str(value))


def header_name(name: str) -> str:
    """``name`` if it is an HTTP field name (RFC 9110 token); anything else is a service bug.

    Header-map keys (S3 metadata names) arrived as header names themselves, so this never
    rejects a value a client could have stored.
    """
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"not an HTTP header name: {name!r}")
    return name


def header_text(text: str) -> str:
    """``text`` if it may go on the wire as is, else its RFC 2047 UTF-8 encoded word."""
    if all(ord(ch) in _PRINTABLE_ASCII for ch in text):
        return text
    encoded = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"=?UTF-8?B?{encoded}?="


def raw_payload(value: Any) -> bytes | AsyncIterator[bytes]:
    """A blob/string payload as the HTTP body: async iterators pass through untouched."""
    if value is None:
        return b""
    if hasattr(value, "__aiter__"):
        return value
    return values.blob_bytes(value)
