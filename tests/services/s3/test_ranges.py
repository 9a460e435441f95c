"""Range header parsing as S3 reads it (pure)."""

from __future__ import annotations

import pytest

from zeronode.aws.errors import AWSError
from zeronode.services.s3.ranges import ByteRange, parse_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-4", 10, (0, 5)),
        ("bytes=2-2", 10, (2, 3)),
        ("bytes=5-100", 10, (5, 10)),  # last byte capped
        ("bytes=3-", 10, (3, 10)),  # open-ended
        ("bytes=-3", 10, (7, 10)),  # suffix
        ("bytes=-30", 10, (0, 10)),  # suffix longer than the object
        ("Bytes = 1 - 2", 10, (1, 3)),  # S3 tolerates case and spaces
    ],
)
def test_satisfiable_ranges(header: str, size: int, expected: tuple[int, int]) -> None:
    span = parse_range(header, size)
    assert span is not None
    assert (span.start, span.end) == expected
    assert span.content_range == f"bytes {expected[0]}-{expected[1] - 1}/{size}"


@pytest.mark.parametrize(
    "header",
    [None, "bytes=0-1,3-4", "items=0-1", "bytes=5-2", "bytes=-", "garbage", "bytes=a-b"],
)
def test_ignored_ranges_serve_the_whole_object(header: str | None) -> None:
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=10-20", 10),
                                              ("bytes=-0", 10), ("bytes=0-", 0), ("bytes=-5", 0)])
def test_unsatisfiable_ranges_are_416(header: str, size: int) -> None:
    with pytest.raises(AWSError) as exc:
        parse_range(header, size)
    err = exc.value
    assert (err.code, err.status) == ("InvalidRange", 416)
    assert err.extra == {"RangeRequested": header, "ActualObjectSize": str(size)}
    assert err.headers["Content-Range"] == f"bytes */{size}"


def test_length() -> None:
    assert ByteRange(2, 7, 10).length == 5
