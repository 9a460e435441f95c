"""Check a parsed input against its model, and word the failure as the service does.

:func:`check_input` walks the input shape and returns every :class:`Problem`: a required
member missing, a value of the wrong type, a length or value out of the model's
``min``/``max``, a value outside an ``enum``, a string not matching its ``pattern``. Which of
those a service enforces, and how it reports them, differs:

* DynamoDB, Lambda (Coral services): ``ValidationException``, every problem in one message,
  ``2 validation errors detected: Value null at 'tableName' failed to satisfy constraint:
  Member must not be null; Value 'x' at 'limit' ...``. Paths are camel-cased member names,
  list items ``keySchema.1.member.attributeName``. Enums and patterns are enforced.
* ELBv2 (query): the same message with code ``ValidationError``.
* SQS (JSON and query): the first problem only, ``MissingParameter`` "The request must
  contain the parameter QueueUrl." or ``InvalidParameterValue``; enums and patterns are the
  service's business (SQS checks attribute names itself, with its own messages).
* EC2: ``MissingParameter`` / ``InvalidParameterValue`` for the first problem, named by the
  wire parameter (``InstanceId``); EC2 does not reject unknown enum values generically.
* S3 has no generic validation error; :func:`validation_error` returns None and the S3
  service maps the problems it cares about to its own codes (``InvalidArgument``...).

Streaming members (async byte streams) are not inspected.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel, Shape

from zeronode.aws.errors import AWSError

__all__ = ["Problem", "check_input", "validate", "validation_error"]

#: Services that reject values outside a model enum / not matching a model pattern.
ENFORCES_ENUMS = frozenset({"dynamodb", "lambda", "elbv2"})
ENFORCES_PATTERNS = frozenset({"dynamodb", "lambda"})


@dataclass(frozen=True)
class Problem:
    """One constraint an input value breaks.

    ``path`` is AWS's Coral-style path (``keySchema.1.member.attributeName``); ``wire`` the
    parameter as the protocol names it (``KeySchema.1.AttributeName`` for the query
    protocols, the member path otherwise); ``kind`` one of ``required``, ``type``,
    ``length``, ``range``, ``enum``, ``pattern``; ``constraint`` AWS's wording.
    """

    path: str
    wire: str
    value: Any
    kind: str
    constraint: str

    def coral(self) -> str:
        return f"Value {render(self.value)} at '{self.path}' failed to satisfy constraint: {self.constraint}"


def check_input(operation_model: OperationModel, params: dict[str, Any]) -> list[Problem]:
    """Every problem of ``params`` against the operation's input shape, in member order."""
    shape = operation_model.input_shape
    if shape is None:
        return []
    service = operation_model.service_model.service_name
    walker = _Walker(
        enums=service in ENFORCES_ENUMS,
        patterns=service in ENFORCES_PATTERNS,
        protocol=str(operation_model.metadata["protocol"]),
    )
    walker.structure(shape, params, "", "")
    return walker.problems


def validation_error(operation_model: OperationModel, problems: list[Problem]) -> AWSError | None:
    """The error the service returns for ``problems``; None if none, or for S3."""
    if not problems:
        return None
    service = operation_model.service_model.service_name
    if service == "s3":
        return None
    if service in ("sqs", "ec2"):
        first = problems[0]
        if first.kind == "required":
            return AWSError(
                "MissingParameter", f"The request must contain the parameter {first.wire}.", 400
            )
        if service == "ec2":
            message = f"Value ({_plain(first.value)}) for parameter {first.wire} is invalid. {first.constraint}"
        else:
            message = (
                f"Value {_plain(first.value)} for parameter {first.wire} is invalid. "
                f"Reason: {first.constraint}."
            )
        return AWSError("InvalidParameterValue", message, 400)
    count = len(problems)
    message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(
        p.coral() for p in problems
    )
    code = "ValidationError" if service == "elbv2" else "ValidationException"
    return AWSError(code, message, 400)


def validate(operation_model: OperationModel, params: dict[str, Any]) -> list[Problem]:
    """Raise the service's validation error for ``params``; return the problems otherwise.

    For every service but S3 a non-empty result is impossible (it raised); S3 callers get the
    problems back to map to S3's own error codes.
    """
    problems = check_input(operation_model, params)
    error = validation_error(operation_model, problems)
    if error is not None:
        raise error
    return problems


def render(value: Any) -> str:
    """A value as Coral prints it in messages: ``null``, or quoted Java-ish text."""
    if value is None:
        return "null"
    return f"'{_plain(value)}'"


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_plain(k)}={_plain(v)}" for k, v in value.items()) + "}"
    return str(value)


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (float, int),
    "double": (float, int),
    "timestamp": (datetime.datetime,),
    "blob": (bytes, bytearray),
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
}


class _Walker:
    def __init__(self, *, enums: bool, patterns: bool, protocol: str) -> None:
        self.enums = enums
        self.patterns = patterns
        self.protocol = protocol
        self.problems: list[Problem] = []

    def add(self, path: str, wire: str, value: Any, kind: str, constraint: str) -> None:
        self.problems.append(Problem(path or "input", wire or "input", value, kind, constraint))

    def wire_name(self, member: Shape, name: str) -> str:
        ser = member.serialization
        if self.protocol == "ec2":
            if "queryName" in ser:
                return str(ser["queryName"])
            if "name" in ser:
                return str(ser["name"])[0].upper() + str(ser["name"])[1:]
        if self.protocol == "query":
            return str(ser.get("name", name))
        return name

    def structure(self, shape: Shape, value: dict[str, Any], path: str, wire: str) -> None:
        if shape.is_document_type:
            return
        required = shape.required_members
        for name, member in shape.members.items():
            member_path = _join(path, name[:1].lower() + name[1:])
            member_wire = _join(wire, self.wire_name(member, name))
            item = value.get(name)
            if item is None:
                if name in required:
                    self.add(member_path, member_wire, None, "required", "Member must not be null")
                continue
            self.value(member, item, member_path, member_wire)

    def value(self, shape: Shape, value: Any, path: str, wire: str) -> None:
        kind = shape.type_name
        if kind == "blob" and shape.serialization.get("streaming"):
            return
        expected = _PYTHON_TYPES.get(kind)
        if expected is not None and (
            not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool))
        ):
            self.add(path, wire, value, "type", f"Member must be of type {kind}")
            return
        if kind == "structure":
            self.structure(shape, value, path, wire)
        elif kind == "list":
            self.length(shape, value, len(value), path, wire)
            for i, item in enumerate(value, 1):
                item_path, item_wire = f"{path}.{i}.member", f"{wire}.{i}"
                if item is None:
                    continue
                self.value(shape.member, item, item_path, item_wire)
        elif kind == "map":
            self.length(shape, value, len(value), path, wire)
            for key, item in value.items():
                self.value(shape.key, key, f"{path}.{key}", f"{wire}.{key}")
                if item is not None:
                    self.value(shape.value, item, f"{path}.{key}.member", f"{wire}.{key}")
        elif kind == "string":
            self.string(shape, value, path, wire)
        elif kind == "blob":
            self.length(shape, value, len(value), path, wire)
        elif kind in ("integer", "long", "float", "double"):
            self.range(shape, value, path, wire)

    def string(self, shape: Shape, value: str, path: str, wire: str) -> None:
        if shape.enum:
            if self.enums and value not in shape.enum:
                self.add(
                    path, wire, value, "enum",
                    "Member must satisfy enum value set: [" + ", ".join(shape.enum) + "]",
                )
            return
        self.length(shape, value, len(value), path, wire)
        pattern = shape.metadata.get("pattern")
        if self.patterns and pattern:
            compiled = _compile(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                self.add(
                    path, wire, value, "pattern",
                    f"Member must satisfy regular expression pattern: {pattern}",
                )

    def length(self, shape: Shape, value: Any, size: int, path: str, wire: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.add(path, wire, value, "length", f"Member must have length greater than or equal to {low}")
        elif high is not None and size > high:
            self.add(path, wire, value, "length", f"Member must have length less than or equal to {high}")

    def range(self, shape: Shape, value: float, path: str, wire: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.add(path, wire, value, "range", f"Member must have value greater than or equal to {low}")
        elif high is not None and value > high:
            self.add(path, wire, value, "range", f"Member must have value less than or equal to {high}")


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str] | None:
    """The model's (Java) regex, when Python's ``re`` reads it the same way; else None."""
    try:
        return re.compile(pattern)
    except re.error:
        return None
