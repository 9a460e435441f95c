"""Shapes to XML text, the body format shared by rest-xml, query and ec2.

The three XML protocols agree on how a value of a shape becomes elements; they differ only
in the envelope (a root named for the operation, a ``Result`` wrapper, where the request id
goes), which each protocol module adds. The rules, read from the model exactly as botocore's
parser reads them back:

- a member's element is its ``locationName`` or else its member name;
- a structure writes its members in model order; ``xmlAttribute`` members become attributes
  of the structure's own element (``xsi:type`` on S3's ``Grantee``), and a structure whose
  shape carries an ``xmlNamespace`` declares it on its element;
- a list is ``<Name><member>..</member></Name>`` with the list member's ``locationName``
  (``item`` in EC2) or ``member``; a *flattened* list repeats the item element itself in the
  parent, named by the list member's ``locationName`` or else the member's name;
- a map is ``<Name><entry><key>..</key><value>..</value></entry></Name>`` (key/value names
  from their ``locationName``); a flattened map repeats ``<Name><key/><value/></Name>``;
- scalars are text: timestamps ISO 8601 with milliseconds (unless ``timestampFormat`` says
  otherwise), blobs base64, booleans ``true``/``false``.

``None`` members are omitted, as AWS omits unset members.

Escaping. ``& < >`` become entities and ``\\r`` becomes ``&#xD;`` (a literal CR would be
normalised to LF by every XML parser). Characters XML 1.0 cannot carry at all (C0 controls
other than TAB/LF/CR, U+FFFE/U+FFFF, lone surrogates) are written as numeric character
references such as ``&#x1;``, which is what S3 sends for such object keys; a strict XML 1.0
parser (expat, hence botocore) refuses them, which is why clients ask S3 for
``EncodingType=url`` listings, where such keys are percent-encoded before they get here.
"""

from __future__ import annotations

import re
from typing import Any

from zeronode.aws.serialize import values

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR_SPECIAL = re.compile('[&<>"\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_NUMBERS = ("integer", "long", "short", "byte", "float", "double", "bigdecimal", "biginteger")
_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "\r": "&#xD;",
    "\n": "&#xA;",
    "\t": "&#x9;",
}


def _entity(match: re.Match[str]) -> str:
    ch = match.group()
    return _ENTITIES.get(ch) or f"&#x{ord(ch):X};"


def escape_text(text: str) -> str:
    """Element content, safe for any Python string (see the module docstring)."""
    if _TEXT_SPECIAL.search(text) is None:
        return text
    return _TEXT_SPECIAL.sub(_entity, text)


def escape_attr(text: str) -> str:
    """A double-quoted attribute value; whitespace is kept as references so it survives."""
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return _ATTR_SPECIAL.sub(_entity, text)


def has_forbidden_chars(text: str) -> bool:
    """True when ``text`` holds characters XML 1.0 cannot carry."""
    return _FORBIDDEN.search(text) is not None


class XmlBodyWriter:
    """Writes values of botocore shapes as XML elements into a list of string parts.

    ``default_namespace`` is the namespace declared on the document root; a structure whose
    ``xmlNamespace`` names the same URI does not declare it again.
    """

    def __init__(self, default_namespace: str | None = None) -> None:
        self.default_namespace = default_namespace

    def element(self, parts: list[str], name: str, shape: Any, value: Any) -> None:
        """Append the element ``name`` holding ``value`` (not for flattened collections)."""
        kind = shape.type_name
        if kind == "structure":
            self._structure(parts, name, shape, value)
        elif kind == "list":
            self._open(parts, name)
            item_shape = shape.member
            item_name = item_shape.serialization.get("name", "member")
            for item in value:
                if item is not None:
                    self.element(parts, item_name, item_shape, item)
            parts.append(f"</{name}>")
        elif kind == "map":
            self._open(parts, name)
            for key, item in value.items():
                if item is not None:
                    parts.append("<entry>")
                    self._map_pair(parts, shape, key, item)
                    parts.append("</entry>")
            parts.append(f"</{name}>")
        else:
            parts.append(f"<{name}>{escape_text(self.scalar_text(shape, value))}</{name}>")

    def members(
        self, parts: list[str], shape: Any, value: dict[str, Any], *, body_only: bool = False
    ) -> None:
        """Append the member elements of structure ``shape`` (no enclosing element).

        ``body_only`` skips members bound elsewhere (``header``, ``headers``, ``statusCode``
        in the rest protocols) and attribute members, which the caller places.
        """
        for member_name, member_shape in shape.members.items():
            member_value = value.get(member_name)
            if member_value is None:
                continue
            ser = member_shape.serialization
            if ser.get("xmlAttribute") or (body_only and ser.get("location")):
                continue
            self.member(parts, member_name, member_shape, member_value)

    def member(self, parts: list[str], member_name: str, shape: Any, value: Any) -> None:
        """Append one structure member, honouring ``flattened`` lists and maps."""
        name = shape.serialization.get("name", member_name)
        if shape.type_name == "list" and shape.serialization.get("flattened"):
            item_shape = shape.member
            item_name = item_shape.serialization.get("name", name)
            for item in value:
                if item is not None:
                    self.element(parts, item_name, item_shape, item)
        elif shape.type_name == "map" and shape.serialization.get("flattened"):
            for key, item in value.items():
                if item is not None:
                    parts.append(f"<{name}>")
                    self._map_pair(parts, shape, key, item)
                    parts.append(f"</{name}>")
        else:
            self.element(parts, name, shape, value)

    def scalar_text(self, shape: Any, value: Any) -> str:
        kind = shape.type_name
        if kind == "string":
            return value if isinstance(value, str) else str(value)
        if kind == "boolean":
            return values.boolean_text(value)
        if kind == "timestamp":
            return str(values.timestamp(value, values.timestamp_format(shape, "iso8601")))
        if kind == "blob":
            return values.base64_text(value)
        if kind in _NUMBERS:
            return values.number_text(shape, value)
        return str(value)

    def _structure(self, parts: list[str], name: str, shape: Any, value: dict[str, Any]) -> None:
        attrs = self.namespace_attrs(shape)
        for member_name, member_shape in shape.members.items():
            ser = member_shape.serialization
            member_value = value.get(member_name)
            if ser.get("xmlAttribute") and member_value is not None:
                attr_name = ser.get("name", member_name)
                text = escape_attr(self.scalar_text(member_shape, member_value))
                attrs += f' {attr_name}="{text}"'
        parts.append(f"<{name}{attrs}>")
        self.members(parts, shape, value)
        parts.append(f"</{name}>")

    def namespace_attrs(self, shape: Any) -> str:
        ns = shape.serialization.get("xmlNamespace")
        if not ns:
            return ""
        if isinstance(ns, str):
            ns = {"uri": ns}
        uri = ns.get("uri", "")
        prefix = ns.get("prefix")
        if prefix:
            return f' xmlns:{prefix}="{escape_attr(uri)}"'
        if uri and uri != self.default_namespace:
            return f' xmlns="{escape_attr(uri)}"'
        return ""

    def _map_pair(self, parts: list[str], shape: Any, key: Any, item: Any) -> None:
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        self.element(parts, key_name, shape.key, key)
        self.element(parts, value_name, shape.value, item)

    def _open(self, parts: list[str], name: str) -> None:
        parts.append(f"<{name}>")


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def document(parts: list[str]) -> bytes:
    """The UTF-8 bytes of a document made of ``parts``, with the XML declaration AWS sends.

    Lone surrogates were already turned into references by :func:`escape_text`, so the
    encoding cannot fail.
    """
    return (XML_DECLARATION + "".join(parts)).encode("utf-8")
