"""Scalar values as they appear on the wire, shared by every protocol.

Services hand the serializers plain Python values (``datetime``, ``bytes``, ``bool``...). This
module turns one scalar into the text (or JSON number) a protocol sends, in the forms AWS
itself sends:

- timestamps: ``iso8601`` as ``2026-11-24T10:00:00.000Z`` (milliseconds, UTC, ``Z``),
  ``unixTimestamp`` as epoch seconds with millisecond precision, ``rfc822`` as the HTTP date
  of RFC 7231 (``Tue, 24 Nov 2026 10:00:00 GMT``, whole seconds). Which format applies is the
  member's or shape's ``timestampFormat`` trait, else the protocol's default for the location.
- blobs: base64 (standard alphabet, padded) wherever they are not the raw HTTP body.
- booleans: ``true``/``false``.

Timestamps are accepted as aware or naive ``datetime`` (naive means UTC), epoch numbers, or
strings botocore can parse; precision beyond milliseconds is truncated, as AWS does.
"""

from __future__ import annotations

import base64
import calendar
import datetime as _dt
import json
import math
from typing import Any

from botocore.utils import parse_timestamp

_UTC = _dt.timezone.utc
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def to_utc(value: Any) -> _dt.datetime:
    """The instant ``value`` names, as an aware UTC datetime."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dt.datetime(1970, 1, 1, tzinfo=_UTC) + _dt.timedelta(seconds=value)
    if isinstance(value, str):
        return to_utc(parse_timestamp(value))
    raise TypeError(f"not a timestamp: {value!r}")


def iso8601(value: Any) -> str:
    """``2026-11-24T10:00:00.000Z``: what AWS sends in XML and ISO-formatted JSON members."""
    t = to_utc(value)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond // 1000:03d}Z"
    )


def rfc822(value: Any) -> str:
    """The HTTP date (RFC 7231 IMF-fixdate), whole seconds: S3's ``Last-Modified``."""
    t = to_utc(value)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


def epoch_seconds(value: Any) -> int | float:
    """Epoch seconds, millisecond precision; an int when there is no fraction."""
    t = to_utc(value)
    whole = calendar.timegm(t.utctimetuple())
    millis = t.microsecond // 1000
    if millis == 0:
        return whole
    return whole + millis / 1000


def timestamp(value: Any, fmt: str) -> str | int | float:
    """``value`` in a ``timestampFormat``: ``iso8601``, ``rfc822`` or ``unixTimestamp``."""
    fmt = fmt.lower()
    if fmt == "iso8601":
        return iso8601(value)
    if fmt == "rfc822":
        return rfc822(value)
    if fmt == "unixtimestamp":
        return epoch_seconds(value)
    raise ValueError(f"unknown timestampFormat {fmt!r}")


def timestamp_format(shape: Any, default: str) -> str:
    """The member's (or its shape's) ``timestampFormat`` trait, else ``default``.

    botocore merges member-level traits into the member shape's ``serialization``, so the
    member trait wins over the target shape's, as Smithy specifies.
    """
    return shape.serialization.get("timestampFormat") or default


def blob_bytes(value: Any) -> bytes:
    """A blob value as bytes: ``bytes``-like as is, ``str`` as UTF-8."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"not a blob: {type(value).__name__}")


def base64_text(value: Any) -> str:
    return base64.b64encode(blob_bytes(value)).decode("ascii")


def boolean_text(value: Any) -> str:
    return "true" if value else "false"


def float_text(value: float) -> str:
    """A float for XML and headers; non-finite values use Smithy's ``NaN``/``Infinity`` spelling."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def number_text(shape: Any, value: Any) -> str:
    """An integer/long/float/double member as text (XML element or header)."""
    if shape.type_name in ("float", "double"):
        return float_text(value)
    return str(int(value))


def jsonvalue_header(value: Any) -> str:
    """A ``jsonvalue`` header member: compact JSON, base64-encoded (botocore decodes both)."""
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")
