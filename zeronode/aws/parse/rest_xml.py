"""rest-xml requests (S3): HTTP bindings plus an XML document as the payload.

The inverse of botocore's ``RestXMLSerializer``. The XML payload is either the one member
named by the input's ``payload`` trait (every S3 operation with a body does this: the root
element is that member's ``locationName``, e.g. ``<CreateBucketConfiguration>``) or the
input's body members under the input shape's own root name.

XML is read namespace-blind: S3 documents carry ``xmlns="http://s3.amazonaws.com/doc/
2006-03-01/"`` or none, and the Grantee's ``xsi:type`` attribute arrives as
``{http://www.w3.org/2001/XMLSchema-instance}type``, so elements and attributes are matched
by local name. Lists are wrapped (``<Tags><Tag/>...</Tags>``, member name from the model, or
``member``) or ``flattened`` (``<Rule/><Rule/>`` directly in the parent); maps are
``<entry><key/><value/></entry>``, or flattened.

Parsing is safe against hostile documents: :func:`parse_xml` refuses any DOCTYPE, so there
are no entity declarations to expand (billion laughs) and no external entities to fetch;
the body is bounded by the caller before it gets here.
"""

from __future__ import annotations

import xml.parsers.expat
from typing import Any

from botocore.model import OperationModel, Shape

from zeronode.aws.errors import AWSError
from zeronode.aws.parse import RequestParts
from zeronode.aws.parse.rest_binding import body_members, parse_bindings
from zeronode.aws.parse.scalars import ISO8601, parse_text_scalar

__all__ = ["MALFORMED_XML", "XmlElement", "malformed_xml", "parse", "parse_xml"]

MALFORMED_XML = (
    "The XML you provided was not well-formed or did not validate against our published schema"
)


def malformed_xml() -> AWSError:
    return AWSError("MalformedXML", MALFORMED_XML, 400)


class XmlElement:
    """A parsed element: local ``name``, ``attrib`` by local name, ``text``, ``children``."""

    __slots__ = ("name", "attrib", "text", "children")

    def __init__(self, name: str, attrib: dict[str, str]) -> None:
        self.name = name
        self.attrib = attrib
        self.text = ""
        self.children: list[XmlElement] = []

    def by_name(self) -> dict[str, list["XmlElement"]]:
        grouped: dict[str, list[XmlElement]] = {}
        for child in self.children:
            grouped.setdefault(child.name, []).append(child)
        return grouped


def _local(name: str) -> str:
    return name.rpartition("}")[2]


class _Refused(Exception):
    pass


def parse_xml(data: bytes) -> XmlElement:
    """Parse a whole document; raises ``MalformedXML`` on bad XML or any DOCTYPE."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    stack: list[XmlElement] = []
    root: list[XmlElement] = []
    text_parts: list[list[str]] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        element = XmlElement(_local(name), {_local(k): v for k, v in attrs.items()})
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)
        text_parts.append([])

    def end(name: str) -> None:
        element = stack.pop()
        element.text = "".join(text_parts.pop())

    def chars(data: str) -> None:
        if text_parts:
            text_parts[-1].append(data)

    def refuse(*args: object) -> None:
        raise _Refused()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except (xml.parsers.expat.ExpatError, _Refused, UnicodeError) as exc:
        raise malformed_xml() from exc
    if not root:
        raise malformed_xml()
    return root[0]


def parse(operation_model: OperationModel, parts: RequestParts) -> dict[str, Any]:
    shape = operation_model.input_shape
    result = parse_bindings(operation_model, parts.headers, parts.query, parts.uri_labels)
    if shape is None:
        return result
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            result[payload] = _raw_payload(operation_model, member, parts.body)
        elif parts.body:
            assert isinstance(parts.body, bytes)
            root = parse_xml(parts.body)
            if root.name != member.serialization.get("name", payload):
                raise malformed_xml()
            result[payload] = _structure(member, root, payload)
        return result
    members = body_members(shape)
    if members and parts.body:
        assert isinstance(parts.body, bytes)
        root = parse_xml(parts.body)
        result.update(_members(members, root, ""))
    return result


def _raw_payload(operation_model: OperationModel, member: Shape, body: Any) -> Any:
    """A streaming member gets the stream itself; a small raw payload its bytes or text."""
    if operation_model.has_streaming_input:
        return body
    if member.type_name == "string":
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise malformed_xml() from exc
    return body


def _value(shape: Shape, element: XmlElement, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, element, where)
    if kind == "list":
        # A wrapped list: the items are the children named after the list's member.
        item_name = shape.member.serialization.get("name", "member")
        items = [c for c in element.children if c.name == item_name]
        return [_value(shape.member, item, f"{where}.{i}") for i, item in enumerate(items, 1)]
    if kind == "map":
        return _map_entries(shape, [c for c in element.children if c.name == "entry"], where)
    return parse_text_scalar(shape, element.text, where, ISO8601)


def _structure(shape: Shape, element: XmlElement, where: str) -> dict[str, Any]:
    return _members(shape.members, element, where)


def _members(members: dict[str, Shape], element: XmlElement, where: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    children = element.by_name()
    for name, member in members.items():
        wire_name = member.serialization.get("name", name)
        path = f"{where}.{name}" if where else name
        if member.serialization.get("xmlAttribute"):
            value = element.attrib.get(_local(wire_name.replace(":", "}")))
            if value is not None:
                result[name] = parse_text_scalar(member, value, path, ISO8601)
            continue
        found = children.get(wire_name)
        if not found:
            continue
        if member.type_name == "list" and member.serialization.get("flattened"):
            result[name] = [_value(member.member, e, f"{path}.{i}") for i, e in enumerate(found, 1)]
        elif member.type_name == "map" and member.serialization.get("flattened"):
            result[name] = _map_entries(member, found, path)
        else:
            result[name] = _value(member, found[0], path)
    return result


def _map_entries(shape: Shape, entries: list[XmlElement], where: str) -> dict[Any, Any]:
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    result: dict[Any, Any] = {}
    for entry in entries:
        parts = entry.by_name()
        keys, values = parts.get(key_name), parts.get(value_name)
        if not keys or not values:
            raise malformed_xml()
        key = _value(shape.key, keys[0], where)
        result[key] = _value(shape.value, values[0], f"{where}.{key}")
    return result
