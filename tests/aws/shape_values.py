"""Deterministic values for any botocore shape, for round-trip tests of the wire codecs.

``generate(shape, seed)`` returns a value that botocore's own serializers accept for ``shape``
and that survives every AWS wire format unchanged, so a test can compare what went in with
what came out without normalising:

* strings respect ``min``/``max`` length and enums; ``pattern`` is honoured loosely (a few
  simple candidates are tried against it, otherwise the string is used as is); text never
  holds surrogates or control characters other than tab and newline (XML cannot carry them,
  and an XML parser turns ``\\r`` into ``\\n``);
* numbers respect ``min``/``max``; floats are multiples of 1/8, exact in binary and in text;
* timestamps are timezone-aware UTC datetimes at whole seconds (the wire formats differ in
  sub-second precision, and RFC 822 header dates have none);
* blobs are bytes; lists and maps are never empty (the query protocols and XML flattening
  cannot tell an empty list from a missing one), and hold at most a few elements;
* tagged unions get exactly one member; document types get small JSON values.

``location_safe=True`` (the default) shapes values bound to an HTTP location so HTTP itself
does not alter them: header values are printable ASCII without leading or trailing blanks,
header-map keys (``x-amz-meta-*``) are lower-case tokens, URI labels are non-empty and host
labels are DNS-safe. With ``location_safe=False`` header-bound strings are drawn from the
same alphabet as body strings.

Recursive shapes (DynamoDB's ``AttributeValue``) are cut at ``max_depth``: deeper optional
members are left out. ``required_only=True`` gives the smallest valid input.
"""

from __future__ import annotations

import datetime
import functools
import random
import re
import string
from typing import Any

from botocore.model import Shape

__all__ = ["generate"]

# Body text: ASCII letters and punctuation that every codec must escape somewhere (XML's
# ``<&>"'``, URL reserved characters, JSON's backslash and quote), plus non-ASCII text,
# including a character outside the Basic Multilingual Plane.
_TEXT = string.ascii_letters + string.digits + " -_./:~!$&'()*+,;=@%?#[]\"<>{}|\\^`\t\néü中😀"
_HEADER_TEXT = string.ascii_letters + string.digits + " -_./:~!$&'()*+,;=@%?#[]\"<>{}|\\^`"
_TOKEN = string.ascii_lowercase + string.digits
_HOST_LABEL = string.ascii_lowercase + string.digits + "-"
_EPOCH_2000 = 946684800
_EPOCH_2050 = 2524608000
_UTC = datetime.timezone.utc

# Only the location kinds that restrict values; anything else is body.
_HEADER, _HEADER_MAP_KEY, _URI, _HOST = "header", "header-map-key", "uri", "host"


def generate(
    shape: Shape,
    seed: int,
    *,
    location_safe: bool = True,
    required_only: bool = False,
    max_depth: int = 6,
) -> Any:
    """A valid value for ``shape``; the same ``seed`` always gives the same value."""
    gen = _Generator(random.Random(seed), location_safe, required_only, max_depth)
    return gen.value(shape, depth=0, where=None)


class _Generator:
    def __init__(
        self, rng: random.Random, location_safe: bool, required_only: bool, max_depth: int
    ) -> None:
        self.rng = rng
        self.location_safe = location_safe
        self.required_only = required_only
        self.max_depth = max_depth

    def value(self, shape: Shape, depth: int, where: str | None) -> Any:
        if depth > self.max_depth * 3:
            raise RecursionError(f"shape {shape.name} recurses through required members")
        return getattr(self, f"_{shape.type_name}")(shape, depth, where)

    # -- containers ----------------------------------------------------------------------

    def _structure(self, shape: Shape, depth: int, where: str | None) -> Any:
        if shape.is_document_type:
            return self._document(depth)
        members = shape.members
        if shape.is_tagged_union:
            names = list(members)
            if depth >= self.max_depth:
                scalar = [n for n in names if members[n].type_name not in _CONTAINERS]
                names = scalar or names
            name = self.rng.choice(names)
            return {name: self.value(members[name], depth + 1, None)}
        required = set(shape.required_members)
        result: dict[str, Any] = {}
        for name, member in members.items():
            if member.metadata.get("eventstream") or member.serialization.get("eventstream"):
                continue
            optional = name not in required
            if optional and (self.required_only or depth >= self.max_depth):
                continue
            result[name] = self.value(member, depth + 1, self._location(member, where))
        return result

    def _location(self, member: Shape, inherited: str | None) -> str | None:
        if not self.location_safe:
            return None
        ser = member.serialization
        if ser.get("hostLabel"):
            return _HOST
        location = ser.get("location")
        if location in ("header", "headers"):
            return _HEADER
        if location == "uri":
            return _URI
        return inherited

    def _count(self, shape: Shape, depth: int, limit: int | None = None) -> int:
        low = max(int(shape.metadata.get("min", 1)), 1)
        high = int(shape.metadata.get("max", low + 2))
        if limit is not None:
            high = min(high, limit)
        if depth >= self.max_depth - 2:
            high = min(high, low)
        high = min(high, low + 2)
        return self.rng.randint(min(low, high), high)

    def _list(self, shape: Shape, depth: int, where: str | None) -> list[Any]:
        return [self.value(shape.member, depth + 1, where) for _ in range(self._count(shape, depth))]

    def _map(self, shape: Shape, depth: int, where: str | None) -> dict[Any, Any]:
        enum = shape.key.enum
        count = self._count(shape, depth, len(enum) if enum else None)
        key_where = _HEADER_MAP_KEY if where == _HEADER else where
        keys: list[Any] = []
        attempts = 0
        while len(keys) < count and attempts < count * 20:
            attempts += 1
            key = self.value(shape.key, depth + 1, key_where)
            if key not in keys:
                keys.append(key)
        return {key: self.value(shape.value, depth + 1, where) for key in keys}

    def _document(self, depth: int) -> Any:
        rng = self.rng
        return {
            "name": self._text(rng.randint(1, 6), _TEXT),
            "count": rng.randint(-5, 500),
            "ratio": rng.randint(-16, 16) / 8,
            "flag": rng.random() < 0.5,
            "items": [self._text(3, _TOKEN), None, rng.randint(0, 9)],
        }

    # -- scalars -------------------------------------------------------------------------

    def _string(self, shape: Shape, depth: int, where: str | None) -> Any:
        if shape.serialization.get("jsonvalue") or shape.metadata.get("jsonvalue"):
            return self._document(depth)
        if shape.enum:
            return self.rng.choice(shape.enum)
        low = int(shape.metadata.get("min", 0))
        high = int(shape.metadata.get("max", low + 12))
        if where in (_URI, _HEADER, _HEADER_MAP_KEY, _HOST):
            low = max(low, 1)
        high = max(low, min(high, low + 12))
        length = self.rng.randint(low, high)
        if where == _HOST:
            return self._text(max(length, 1), _HOST_LABEL)
        if where == _HEADER_MAP_KEY:
            return self._text(length, _TOKEN)
        pattern = shape.metadata.get("pattern")
        if pattern:
            matched = self._for_pattern(pattern, length, low, high)
            if matched is not None:
                return matched
        if where == _HEADER:
            return self._header_text(length)
        return self._text(length, _TEXT)

    def _for_pattern(self, pattern: str, length: int, low: int, high: int) -> str | None:
        """A few simple strings tried against ``pattern``: the pattern read as a literal,
        then lower-case tokens and digit strings of plausible lengths."""
        literal = pattern.strip("^$")
        if _matches(pattern, literal):
            return literal
        lengths = [length] + [n for n in (*range(1, 21), 32, 36, 64) if low <= n <= high]
        for size in lengths:
            for alphabet in (_TOKEN, string.digits, string.ascii_letters):
                candidate = self._text(size, alphabet)
                if _matches(pattern, candidate):
                    return candidate
        return None

    def _header_text(self, length: int) -> str:
        text = self._text(length, _HEADER_TEXT)
        if length and (text[0] == " " or text[-1] == " "):
            text = "h" + text[1:-1] + "h" if length > 1 else "h"
        return text

    def _text(self, length: int, alphabet: str) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def _integer(self, shape: Shape, depth: int, where: str | None) -> int:
        return self._whole(shape, -(2**31), 2**31 - 1)

    def _long(self, shape: Shape, depth: int, where: str | None) -> int:
        return self._whole(shape, -(2**63), 2**63 - 1)

    def _whole(self, shape: Shape, low: int, high: int) -> int:
        low = int(shape.metadata.get("min", low))
        high = int(shape.metadata.get("max", high))
        if self.rng.random() < 0.2:
            return self.rng.choice([low, high]) if abs(low) < 2**53 and abs(high) < 2**53 else low
        return self.rng.randint(max(low, -1000), min(high, max(low, -1000) + 100_000))

    def _float(self, shape: Shape, depth: int, where: str | None) -> float:
        low = float(shape.metadata.get("min", -1e6))
        high = float(shape.metadata.get("max", 1e6))
        eighths = self.rng.randint(int(max(low, -1e6) * 8), int(min(high, 1e6) * 8))
        return eighths / 8

    _double = _float

    def _boolean(self, shape: Shape, depth: int, where: str | None) -> bool:
        return self.rng.random() < 0.5

    def _timestamp(self, shape: Shape, depth: int, where: str | None) -> datetime.datetime:
        seconds = self.rng.randint(_EPOCH_2000, _EPOCH_2050)
        return datetime.datetime.fromtimestamp(seconds, _UTC)

    def _blob(self, shape: Shape, depth: int, where: str | None) -> bytes:
        low = int(shape.metadata.get("min", 0))
        high = int(shape.metadata.get("max", low + 24))
        high = max(low, min(high, low + 24))
        return self.rng.randbytes(self.rng.randint(max(low, 1), max(high, 1)))


_CONTAINERS = ("structure", "list", "map")


def _matches(pattern: str, candidate: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is not None and compiled.fullmatch(candidate) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None
