"""Text-to-value conversions shared by every protocol parser, and their error values.

Each protocol writes scalars as text somewhere (a header, a query parameter, an XML element,
a form field) and the conversions are the inverse of botocore's serializers: booleans are
``true``/``false``, floats may be ``NaN``/``Infinity``/``-Infinity``, blobs are base64, and
timestamps come in three formats (ISO 8601, RFC 822 "HTTP date", epoch seconds) chosen by the
shape's ``timestampFormat`` or the location's default. Timestamps always come back as
timezone-aware UTC datetimes.

A value that does not convert raises :class:`BadValue`; each protocol turns it into the error
its service returns for malformed input (S3 ``InvalidArgument``, DynamoDB
``SerializationException``, ...), see :func:`zeronode.aws.parse.malformed_input`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import math
from typing import Any

from botocore.model import Shape

UTC = datetime.timezone.utc

ISO8601 = "iso8601"
RFC822 = "rfc822"
EPOCH = "unixtimestamp"


class BadValue(ValueError):
    """A wire value that does not convert to its shape's type; ``where`` names its path."""

    def __init__(self, where: str, value: object, expected: str) -> None:
        super().__init__(f"{where}: {value!r} is not a valid {expected}")
        self.where = where
        self.value = value
        self.expected = expected


def timestamp_format(shape: Shape, default: str) -> str:
    return str(shape.serialization.get("timestampFormat", default)).lower()


def parse_timestamp(text: str | int | float, fmt: str, where: str) -> datetime.datetime:
    """Parse ``text`` written in ``fmt``; epoch seconds may be fractional."""
    try:
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return _from_epoch(float(text))
        if not isinstance(text, str):
            raise ValueError(text)
        if fmt == EPOCH:
            return _from_epoch(float(text))
        if fmt == RFC822:
            parsed = email.utils.parsedate_to_datetime(text)
        else:
            parsed = datetime.datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, IndexError) as exc:
        raise BadValue(where, text, f"timestamp ({fmt})") from exc


def _from_epoch(seconds: float) -> datetime.datetime:
    if not math.isfinite(seconds):
        raise ValueError(seconds)
    whole = math.floor(seconds)
    micros = round((seconds - whole) * 1_000_000)
    return datetime.datetime.fromtimestamp(whole, UTC) + datetime.timedelta(microseconds=micros)


def parse_boolean(text: str, where: str) -> bool:
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise BadValue(where, text, "boolean")


def parse_integer(text: str, where: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError as exc:
        raise BadValue(where, text, "integer") from exc


def parse_float(text: str, where: str) -> float:
    special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    if text in special:
        return special[text]
    try:
        value = float(text)
    except ValueError as exc:
        raise BadValue(where, text, "number") from exc
    if not math.isfinite(value):
        # Only the spelled-out forms above are part of the wire format; "inf" or "1e999"
        # are not something an SDK sends.
        raise BadValue(where, text, "number")
    return value


def parse_blob(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise BadValue(where, text, "base64 blob") from exc


def parse_text_scalar(shape: Shape, text: str, where: str, timestamp_default: str) -> Any:
    """Convert ``text`` to the Python value for scalar ``shape`` (text-based protocols)."""
    kind = shape.type_name
    if kind == "string":
        return text
    if kind == "boolean":
        return parse_boolean(text, where)
    if kind in ("integer", "long", "short", "byte"):
        return parse_integer(text, where)
    if kind in ("float", "double"):
        return parse_float(text, where)
    if kind == "timestamp":
        return parse_timestamp(text, timestamp_format(shape, timestamp_default), where)
    if kind == "blob":
        return parse_blob(text, where)
    raise BadValue(where, text, kind)
