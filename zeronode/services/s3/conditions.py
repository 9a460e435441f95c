"""S3's conditional requests, as pure decisions over an object's ETag and modification time.

Three families, each with S3's own precedence
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, RFC 9110 section 13):

- **reads** (GetObject, HeadObject): ``If-Match`` and ``If-Unmodified-Since`` failing answer
  412 ``PreconditionFailed``, but a true ``If-Match`` overrides a failing
  ``If-Unmodified-Since``; then ``If-None-Match`` matching, or (only without an
  ``If-None-Match``) ``If-Modified-Since`` finding nothing newer, answers 304.
- **copy sources** (``x-amz-copy-source-if-*``): the same tests, but every failure is 412, as
  a copy has no "not modified" answer.
- **writes** (PutObject, CompleteMultipartUpload): ``If-None-Match: *`` wants no current
  object; ``If-Match: <etag>`` wants the current object to have that ETag (and answers
  ``NoSuchKey`` when there is none). S3 implements no other ``If-None-Match`` on a write.

Dates compare at whole seconds, the precision of HTTP dates (``Last-Modified`` is sent
without its milliseconds, so a client echoing it back must see "not modified").
Functions raise the :class:`AWSError` to answer, or return when the request may proceed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zeronode.aws.errors import AWSError


@dataclass(frozen=True)
class Conditions:
    """The four conditional headers of one request (absent ones None)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None

    @classmethod
    def of_request(cls, params: dict[str, Any]) -> Conditions:
        """GetObject/HeadObject's ``If-*`` parameters."""
        return cls(params.get("IfMatch"), params.get("IfNoneMatch"),
                   params.get("IfModifiedSince"), params.get("IfUnmodifiedSince"))

    @classmethod
    def of_copy_source(cls, params: dict[str, Any]) -> Conditions:
        """CopyObject/UploadPartCopy's ``x-amz-copy-source-if-*`` parameters."""
        return cls(params.get("CopySourceIfMatch"), params.get("CopySourceIfNoneMatch"),
                   params.get("CopySourceIfModifiedSince"), params.get("CopySourceIfUnmodifiedSince"))


def etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` list names ``etag`` (unquoted hex), or is ``*``.

    Entries may be quoted or not and may carry the weak prefix ``W/``, which S3 ignores.
    """
    for entry in header.split(","):
        entry = entry.strip()
        if entry == "*":
            return True
        entry = entry.removeprefix("W/").strip('"')
        if entry == etag:
            return True
    return False


def _seconds(ms: int) -> int:
    return ms // 1000


def _modified_since(last_modified_ms: int, since: datetime) -> bool:
    return _seconds(last_modified_ms) > int(since.timestamp())


def no_such_key(key: str) -> AWSError:
    return AWSError("NoSuchKey", "The specified key does not exist.", 404, extra={"Key": key})


def precondition_failed(condition: str) -> AWSError:
    return AWSError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                    412, extra={"Condition": condition})


def check_read(conditions: Conditions, etag: str, last_modified_ms: int,
               not_modified_headers: dict[str, str] | None = None) -> None:
    """GetObject/HeadObject: 412 or 304 (with ``not_modified_headers``) as S3 answers."""
    failed = _failed_precondition(conditions, etag, last_modified_ms)
    if failed is not None:
        raise precondition_failed(failed)
    if _not_modified(conditions, etag, last_modified_ms):
        raise AWSError("NotModified", "Not Modified", 304, headers=dict(not_modified_headers or {}))


def check_copy_source(conditions: Conditions, etag: str, last_modified_ms: int) -> None:
    """CopyObject/UploadPartCopy: any failing ``x-amz-copy-source-if-*`` is 412."""
    failed = _failed_precondition(conditions, etag, last_modified_ms)
    if failed is not None:
        raise precondition_failed(f"x-amz-copy-source-{failed}")
    if _not_modified(conditions, etag, last_modified_ms):
        name = "If-None-Match" if conditions.if_none_match is not None else "If-Modified-Since"
        raise precondition_failed(f"x-amz-copy-source-{name}")


def _failed_precondition(conditions: Conditions, etag: str, last_modified_ms: int) -> str | None:
    if conditions.if_match is not None:
        return None if etag_matches(conditions.if_match, etag) else "If-Match"
    since = conditions.if_unmodified_since
    if since is not None and _modified_since(last_modified_ms, since):
        return "If-Unmodified-Since"
    return None


def _not_modified(conditions: Conditions, etag: str, last_modified_ms: int) -> bool:
    if conditions.if_none_match is not None:
        return etag_matches(conditions.if_none_match, etag)
    since = conditions.if_modified_since
    return since is not None and not _modified_since(last_modified_ms, since)


def check_write_headers(if_match: str | None, if_none_match: str | None) -> None:
    """Refuse, before any byte is read, the write conditions S3 does not implement."""
    if if_none_match is not None and if_none_match.strip() != "*":
        raise AWSError("NotImplemented",
                       "A header you provided implies functionality that is not implemented", 501,
                       sender_fault=False, extra={"Header": "If-None-Match"})
    if if_match is not None and if_match.strip() == "":
        raise AWSError("InvalidArgument", "If-Match must not be empty", 400,
                       extra={"ArgumentName": "If-Match", "ArgumentValue": if_match})


def check_write(if_match: str | None, if_none_match: str | None, current: dict[str, Any] | None,
                key: str) -> None:
    """PutObject's conditions against ``current`` (the key's current object state, or None).

    Runs inside the journal mutation that writes, so of concurrent ``If-None-Match: *``
    writers exactly one finds no object.
    """
    if if_none_match is not None and current is not None:
        raise precondition_failed("If-None-Match")
    if if_match is not None:
        if current is None:
            raise no_such_key(key)
        if not etag_matches(if_match, current["etag"]):
            raise precondition_failed("If-Match")
