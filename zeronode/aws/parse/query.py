"""Query-protocol requests (ELBv2, legacy SQS) and EC2's variant of it.

Both send flat ``name=value`` pairs (a form body, or the query string): ``Action``,
``Version``, then the input with dotted paths. The inverse of botocore's ``QuerySerializer``
and ``EC2Serializer``:

=================  =====================================  ==================================
                   query                                  ec2
=================  =====================================  ==================================
member name        ``locationName``, else member name     ``queryName``, else capitalised
                                                          ``locationName``, else member name
list               ``Name.member.1`` (member name from    ``Name.1`` always
                   the model, else ``member``);
                   flattened: ``Name.1``, or
                   ``MemberName.1`` if the member is
                   named; empty list: ``Name=``
map                ``Name.entry.1.key`` / ``.value``      (as query)
                   (names from the model); flattened:
                   ``Name.1.key``
=================  =====================================  ==================================

Scalars are text: ``true``/``false``, ISO 8601 timestamps unless the shape says otherwise,
base64 blobs. Parameters the model does not know are ignored. Indices need not be
contiguous or ordered: items come back in index order.

The pairs are first gathered into a tree keyed by the dot-separated path segments, so each
lookup is a dictionary access whatever the number of parameters.
"""

from __future__ import annotations

from typing import Any

from botocore.model import OperationModel, Shape

from zeronode.aws.parse import RequestParts
from zeronode.aws.parse.scalars import ISO8601, parse_text_scalar

__all__ = ["ParamTree", "QueryDecoder", "parse"]

_ENVELOPE = ("Action", "Version")


class ParamTree:
    """One node per dotted-path prefix; ``value`` is set where a parameter ends."""

    __slots__ = ("value", "children")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, ParamTree] = {}

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> "ParamTree":
        root = cls()
        for key, value in pairs:
            if key in _ENVELOPE:
                continue
            node = root
            for segment in key.split("."):
                node = node.children.setdefault(segment, cls())
            if node.value is None:
                node.value = value
        return root

    def indexed(self) -> list["ParamTree"]:
        """Children named ``1``, ``2``, ... in numeric order."""
        numbered = [(int(k), v) for k, v in self.children.items() if k.isdigit()]
        return [node for _, node in sorted(numbered, key=lambda kv: kv[0])]


def parse(operation_model: OperationModel, parts: RequestParts) -> dict[str, Any]:
    shape = operation_model.input_shape
    if shape is None:
        return {}
    return QueryDecoder().structure(shape, ParamTree.from_pairs(parts.query), "")


class QueryDecoder:
    """Decodes a :class:`ParamTree` by shape; :mod:`.ec2` overrides the naming and lists."""

    #: EC2 writes every list as ``Name.N`` and never sends empty lists.
    ec2 = False

    def wire_name(self, member: Shape, default: str) -> str:
        return str(member.serialization.get("name", default))

    def structure(self, shape: Shape, node: ParamTree, where: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = self.wire_name(member, name)
            path = f"{where}.{name}" if where else name
            if member.type_name == "list":
                found = self.list_in(member, node, wire, path)
                if found is not None:
                    result[name] = found
                continue
            child = node.children.get(wire)
            if child is None:
                continue
            result[name] = self.value(member, child, path)
        return result

    def value(self, shape: Shape, node: ParamTree, where: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, node, where)
        if kind == "map":
            return self.map(shape, node, where)
        if kind == "list":
            # A list directly inside a list: its items hang below the outer item's node.
            if self.ec2 or shape.serialization.get("flattened"):
                items = node.indexed()
            else:
                item_node = node.children.get(shape.member.serialization.get("name", "member"))
                items = item_node.indexed() if item_node is not None else []
            return [self.value(shape.member, n, f"{where}.{i}") for i, n in enumerate(items, 1)]
        return parse_text_scalar(shape, node.value or "", where, ISO8601)

    def list_in(self, shape: Shape, parent: ParamTree, wire: str, where: str) -> list[Any] | None:
        """The list ``wire`` of ``parent``; None if absent, [] if sent as ``Name=``."""
        own = parent.children.get(wire)
        if self.ec2:
            holder = own
        elif shape.serialization.get("flattened"):
            renamed = shape.member.serialization.get("name")
            holder = parent.children.get(renamed) if renamed else own
        else:
            item_name = shape.member.serialization.get("name", "member")
            holder = own.children.get(item_name) if own is not None else None
        if holder is None:
            if own is not None and own.value == "" and not self.ec2:
                return []
            return None
        items = holder.indexed()
        return [self.value(shape.member, n, f"{where}.{i}") for i, n in enumerate(items, 1)]

    def map(self, shape: Shape, node: ParamTree, where: str) -> dict[Any, Any]:
        entries_node = node if shape.serialization.get("flattened") else node.children.get("entry")
        if entries_node is None:
            return {}
        key_name = self.wire_name(shape.key, "key")
        value_name = self.wire_name(shape.value, "value")
        result: dict[Any, Any] = {}
        for entry in entries_node.indexed():
            key_node = entry.children.get(key_name)
            value_node = entry.children.get(value_name)
            if key_node is None or value_node is None:
                continue
            key = self.value(shape.key, key_node, where)
            result[key] = self.value(shape.value, value_node, f"{where}.{key}")
        return result
