"""Conditional request decisions (pure): 412 and 304 exactly where S3 answers them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zeronode.aws.errors import AWSError
from zeronode.services.s3.conditions import (
    Conditions,
    check_copy_source,
    check_read,
    check_write,
    check_write_headers,
    etag_matches,
)

ETAG = "9e107d9d372bb6826bd81d3542a419d6"
MODIFIED_MS = 1_700_000_000_500  # half a second into a whole second
AT = datetime.fromtimestamp(1_700_000_000, tz=UTC)
BEFORE, AFTER = AT - timedelta(seconds=1), AT + timedelta(seconds=1)


def outcome(conditions: Conditions) -> int:
    try:
        check_read(conditions, ETAG, MODIFIED_MS)
    except AWSError as err:
        return err.status
    return 200


@pytest.mark.parametrize(
    ("conditions", "status"),
    [
        (Conditions(), 200),
        (Conditions(if_match=f'"{ETAG}"'), 200),
        (Conditions(if_match=ETAG), 200),
        (Conditions(if_match='"other", "' + ETAG + '"'), 200),
        (Conditions(if_match="*"), 200),
        (Conditions(if_match='"other"'), 412),
        (Conditions(if_none_match=f'"{ETAG}"'), 304),
        (Conditions(if_none_match="*"), 304),
        (Conditions(if_none_match='"other"'), 200),
        (Conditions(if_modified_since=AT), 304),  # same second: not modified
        (Conditions(if_modified_since=BEFORE), 200),
        (Conditions(if_modified_since=AFTER), 304),
        (Conditions(if_unmodified_since=AT), 200),
        (Conditions(if_unmodified_since=AFTER), 200),
        (Conditions(if_unmodified_since=BEFORE), 412),
        # If-Match true overrides a failing If-Unmodified-Since
        (Conditions(if_match=ETAG, if_unmodified_since=BEFORE), 200),
        # If-None-Match decides alone when both it and If-Modified-Since are sent
        (Conditions(if_none_match='"other"', if_modified_since=AFTER), 200),
        (Conditions(if_none_match=ETAG, if_modified_since=BEFORE), 304),
        # 412 before 304
        (Conditions(if_match='"other"', if_none_match=ETAG), 412),
    ],
)
def test_read_conditions(conditions: Conditions, status: int) -> None:
    assert outcome(conditions) == status


def test_304_carries_the_given_headers_and_412_names_the_condition() -> None:
    with pytest.raises(AWSError) as exc:
        check_read(Conditions(if_none_match=ETAG), ETAG, MODIFIED_MS, {"ETag": f'"{ETAG}"'})
    assert exc.value.headers == {"ETag": f'"{ETAG}"'}
    with pytest.raises(AWSError) as exc:
        check_read(Conditions(if_unmodified_since=BEFORE), ETAG, MODIFIED_MS)
    assert (exc.value.code, exc.value.extra) == ("PreconditionFailed",
                                                  {"Condition": "If-Unmodified-Since"})


@pytest.mark.parametrize(
    "conditions",
    [Conditions(if_match='"x"'), Conditions(if_none_match=ETAG),
     Conditions(if_modified_since=AFTER), Conditions(if_unmodified_since=BEFORE)],
)
def test_copy_source_failures_are_all_412(conditions: Conditions) -> None:
    with pytest.raises(AWSError) as exc:
        check_copy_source(conditions, ETAG, MODIFIED_MS)
    assert (exc.value.code, exc.value.status) == ("PreconditionFailed", 412)
    assert exc.value.extra["Condition"].startswith("x-amz-copy-source-")


def test_copy_source_of_request_reads_the_copy_members() -> None:
    params = {"CopySourceIfMatch": ETAG, "IfMatch": "ignored"}
    assert Conditions.of_copy_source(params).if_match == ETAG
    check_copy_source(Conditions.of_copy_source(params), ETAG, MODIFIED_MS)


def test_write_conditions() -> None:
    current = {"etag": ETAG}
    check_write(None, "*", None, "k")
    check_write(ETAG, None, current, "k")
    with pytest.raises(AWSError) as exc:
        check_write(None, "*", current, "k")
    assert (exc.value.code, exc.value.status) == ("PreconditionFailed", 412)
    with pytest.raises(AWSError) as exc:
        check_write('"other"', None, current, "k")
    assert exc.value.status == 412
    with pytest.raises(AWSError) as exc:
        check_write(ETAG, None, None, "k")
    assert (exc.value.code, exc.value.status) == ("NoSuchKey", 404)


def test_only_star_is_implemented_for_if_none_match_on_writes() -> None:
    check_write_headers(None, "*")
    with pytest.raises(AWSError) as exc:
        check_write_headers(None, f'"{ETAG}"')
    assert (exc.value.code, exc.value.status) == ("NotImplemented", 501)


def test_etag_matching_ignores_quotes_and_weakness() -> None:
    assert etag_matches(f'W/"{ETAG}"', ETAG)
    assert not etag_matches("", ETAG)
