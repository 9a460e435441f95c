"""The ``Range`` header of GetObject, as S3 reads it (pure).

S3 serves one byte range per request (https://www.rfc-editor.org/rfc/rfc9110#section-14):

- ``bytes=a-b`` (``b`` capped at the last byte), ``bytes=a-`` (open-ended) and ``bytes=-n``
  (the last ``n`` bytes; more than the object is the whole object) answer 206 with
  ``Content-Range: bytes a-b/size``;
- a range starting at or past the end, or a suffix of zero bytes, is unsatisfiable: 416
  ``InvalidRange`` with ``ActualObjectSize`` (an empty object satisfies no range at all);
- anything S3 does not understand — another unit, ``b < a``, garbage, or several ranges,
  which S3 does not serve — is ignored and the whole object is answered with 200.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zeronode.aws.errors import AWSError

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``[start, end)`` of an object of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def invalid_range(header: str, size: int) -> AWSError:
    return AWSError("InvalidRange", "The requested range is not satisfiable", 416,
                    extra={"RangeRequested": header, "ActualObjectSize": str(size)},
                    headers={"Content-Range": f"bytes */{size}"})


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve, None for the whole object; ``InvalidRange`` if unsatisfiable."""
    if header is None:
        return None
    match = _SINGLE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise invalid_range(header, size)
        return ByteRange(max(0, size - suffix), size, size)
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise invalid_range(header, size)
    end = size if last == "" else min(int(last) + 1, size)
    return ByteRange(start, end, size)
