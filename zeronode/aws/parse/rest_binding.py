"""The HTTP bindings shared by the REST protocols (rest-xml for S3, rest-json for Lambda).

A REST operation's input members are bound to the URI (``location: uri``), the query string
(``querystring``), single headers (``header``), a header prefix (``headers``: S3's
``x-amz-meta-*`` user metadata), or the body. :func:`parse_bindings` reads every member that
is not in the body; the protocol modules read the body.

Inverse of botocore's ``BaseRestSerializer``:

* URI labels and query values: booleans ``true``/``false``, timestamps ISO 8601 unless the
  shape says otherwise, floats as Python prints them.
* Headers: timestamps RFC 822 (``Tue, 29 Apr 2014 18:30:38 GMT``) unless the shape says
  otherwise; ``jsonvalue`` strings are base64 of compact JSON; lists are comma-separated,
  with items holding ``,`` or ``"`` double-quoted and ``\\"``-escaped.
* A query-string map takes every query parameter no other member claims, except the
  operation's literal markers (``?uploads``) and ``x-id``, which newer SDKs add to S3 URIs.
* A header-prefix map's keys come back lower-case: HTTP header names are case-insensitive,
  so the case a client used is not part of the request (S3 lower-cases them too).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from botocore.model import OperationModel, Shape

from zeronode.aws.http import Headers
from zeronode.aws.parse.scalars import (
    ISO8601,
    RFC822,
    BadValue,
    parse_text_scalar,
    parse_timestamp,
    timestamp_format,
)

__all__ = ["body_members", "literal_query_names", "parse_bindings", "split_header_list"]

LOCATIONS = ("uri", "querystring", "header", "headers")


def body_members(input_shape: Shape) -> dict[str, Shape]:
    """The input members that travel in the body (no HTTP location)."""
    return {
        name: member
        for name, member in input_shape.members.items()
        if member.serialization.get("location") not in LOCATIONS
    }


def literal_query_names(operation_model: OperationModel) -> set[str]:
    """Query names fixed by the operation's ``requestUri`` (``uploads``, ``list-type``)."""
    uri = operation_model.http.get("requestUri", "")
    _, _, literal = uri.partition("?")
    return {part.partition("=")[0] for part in literal.split("&") if part}


def parse_bindings(
    operation_model: OperationModel,
    headers: Headers,
    query: list[tuple[str, str]],
    uri_labels: dict[str, str],
) -> dict[str, Any]:
    """Every input member bound to the URI, query string or headers, by member name."""
    shape = operation_model.input_shape
    result: dict[str, Any] = {}
    if shape is None:
        return result
    query_values: dict[str, list[str]] = {}
    for name, value in query:
        query_values.setdefault(name, []).append(value)
    claimed = literal_query_names(operation_model) | {"x-id"}
    query_map: tuple[str, Shape] | None = None
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            if wire_name in uri_labels:
                result[name] = parse_text_scalar(member, uri_labels[wire_name], wire_name, ISO8601)
        elif location == "querystring":
            if member.type_name == "map":
                query_map = (name, member)
                continue
            claimed.add(wire_name)
            values = query_values.get(wire_name)
            if values is None:
                continue
            if member.type_name == "list":
                result[name] = [
                    parse_text_scalar(member.member, v, wire_name, ISO8601) for v in values
                ]
            else:
                result[name] = parse_text_scalar(member, values[0], wire_name, ISO8601)
        elif location == "header":
            value = headers.get(wire_name)
            if value is not None:
                result[name] = _parse_header(member, value, wire_name)
        elif location == "headers":
            prefix = wire_name.lower()
            found = {
                key[len(prefix) :]: value
                for key, value in headers.items()
                if key.startswith(prefix) and len(key) > len(prefix)
            }
            if found:
                result[name] = found
    if query_map is not None:
        name, member = query_map
        found_map = _query_map(member, query_values, claimed)
        if found_map:
            result[name] = found_map
    return result


def _query_map(
    member: Shape, query_values: dict[str, list[str]], claimed: set[str]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, values in query_values.items():
        if key in claimed:
            continue
        if member.value.type_name == "list":
            found[key] = [
                parse_text_scalar(member.value.member, v, key, ISO8601) for v in values
            ]
        else:
            found[key] = parse_text_scalar(member.value, values[0], key, ISO8601)
    return found


def _parse_header(member: Shape, value: str, where: str) -> Any:
    kind = member.type_name
    if kind == "string" and (
        member.serialization.get("jsonvalue") or member.metadata.get("jsonvalue")
    ):
        try:
            return json.loads(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadValue(where, value, "base64-encoded JSON") from exc
    if kind == "list":
        item = member.member
        if item.type_name == "timestamp" and timestamp_format(item, RFC822) == RFC822:
            dates = _split_http_dates(value)
            return [parse_timestamp(d, RFC822, where) for d in dates]
        return [_parse_header(item, part, where) for part in split_header_list(value)]
    if kind == "string":
        return value
    return parse_text_scalar(member, value.strip(), where, RFC822)


def split_header_list(value: str) -> list[str]:
    """Split a comma-separated header into items, honouring ``"quoted, items"``."""
    items: list[str] = []
    i, n = 0, len(value)
    while i <= n:
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            i += 1  # closing quote
            items.append("".join(chars))
            while i < n and value[i] != ",":
                i += 1
        else:
            end = value.find(",", i)
            end = n if end < 0 else end
            items.append(value[i:end].strip())
            i = end
        i += 1
    return items


_HTTP_DATE = re.compile(r"[A-Za-z]{3},\s*[^,]+")


def _split_http_dates(value: str) -> list[str]:
    # HTTP dates hold a comma themselves ("Tue, 29 Apr 2014 18:30:38 GMT"): a list of them
    # splits on every second comma.
    return [m.group(0).strip() for m in _HTTP_DATE.finditer(value)]
