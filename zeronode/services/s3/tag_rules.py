"""S3's tag rules, in one place: what a tag set may hold and how ``x-amz-tagging`` is read.

Every way of tagging goes through here, so an object tagged at upload (the ``x-amz-tagging``
header of PutObject, CopyObject, CreateMultipartUpload) is held to exactly the rules of
PutObjectTagging, and bucket tags to the same rules with their own limit.

The rules and AWS's answers:

- at most 10 tags on an object, 50 on a bucket: ``BadRequest``;
- a key is 1-128 characters, a value 0-256, counted as AWS counts them (UTF-16 code units,
  so an astral character counts two), made of letters, numbers, spaces and ``_ . : / = + - @``
  (AWS's tag pattern ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``): ``InvalidTag``;
- no key twice: ``InvalidTag`` (``InvalidArgument`` in the header form, whose message covers
  it);
- a key starting with ``aws:`` (any case) is a system tag: ``InvalidTag``.

Pure functions: no I/O, no state.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from zeronode.aws.errors import AWSError
from zeronode.aws.parse.rest_xml import malformed_xml

OBJECT_TAG_LIMIT = 10
BUCKET_TAG_LIMIT = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256

_PUNCTUATION = frozenset("_.:/=+-@")
_SYSTEM_PREFIX = "aws:"
_HEADER_MESSAGE = ("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL "
                   "query parameters without tag name duplicates.")


def check_tags(tags: Mapping[str, str], limit: int) -> None:
    """Raise AWS's error if ``tags`` breaks a rule; ``limit`` is 10 (object) or 50 (bucket).

    As AWS does, each tag is checked in order first and the count last.
    """
    for key, value in tags.items():
        if not _valid_text(key, 1, MAX_KEY_LENGTH):
            raise AWSError("InvalidTag", "The TagKey you have provided is invalid", 400,
                           extra={"TagKey": key})
        if not _valid_text(value, 0, MAX_VALUE_LENGTH):
            raise AWSError("InvalidTag", "The TagValue you have provided is invalid", 400,
                           extra={"TagKey": key, "TagValue": value})
        if key.lower().startswith(_SYSTEM_PREFIX):
            raise AWSError("InvalidTag", "System tags cannot be added/updated by requester", 400,
                           extra={"TagKey": key})
    if len(tags) > limit:
        what = "Object tags" if limit == OBJECT_TAG_LIMIT else "Bucket tag count"
        raise AWSError("BadRequest", f"{what} cannot be greater than {limit}", 400)


def tags_from_tag_set(tag_set: Iterable[Mapping[str, Any]] | None, limit: int) -> dict[str, str]:
    """A ``TagSet`` document (``[{"Key", "Value"}]``) as a checked ``{key: value}``.

    A missing ``TagSet`` or a tag without its ``Key`` or ``Value`` element does not match
    S3's schema (``MalformedXML``); an empty ``<Value></Value>`` is an empty value.
    """
    if tag_set is None:
        raise malformed_xml()
    tags: dict[str, str] = {}
    for tag in tag_set:
        key, value = tag.get("Key"), tag.get("Value")
        if key is None or value is None:
            raise malformed_xml()
        if key in tags:
            raise AWSError("InvalidTag", "Cannot provide multiple Tags with the same key", 400,
                           extra={"TagKey": key})
        tags[key] = value
    check_tags(tags, limit)
    return tags


def parse_tagging_header(value: str | None) -> dict[str, str]:
    """The ``x-amz-tagging`` header (``k1=v1&k2``, form-encoded UTF-8) as checked object tags.

    ``+`` is a space, a pair without ``=`` has an empty value, and the value runs to the end
    of the pair (``a=b=c`` is ``{"a": "b=c"}``). An absent or empty header is no tags.
    """
    if not value:
        return {}
    tags: dict[str, str] = {}
    for pair in value.split("&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        try:
            key = unquote_plus(raw_key, errors="strict")
            tag_value = unquote_plus(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise _bad_header(value) from None
        if not key or key in tags:
            raise _bad_header(value)
        tags[key] = tag_value
    check_tags(tags, OBJECT_TAG_LIMIT)
    return tags


def tag_set(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``{key: value}`` as the ``TagSet`` members GetObjectTagging/GetBucketTagging answer."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _bad_header(value: str) -> AWSError:
    return AWSError("InvalidArgument", _HEADER_MESSAGE, 400,
                    extra={"ArgumentName": "x-amz-tagging", "ArgumentValue": value})


def _valid_text(text: str, shortest: int, longest: int) -> bool:
    length = sum(2 if ord(char) > 0xFFFF else 1 for char in text)
    if not shortest <= length <= longest:
        return False
    return all(char in _PUNCTUATION or unicodedata.category(char)[0] in "LNZ" for char in text)
