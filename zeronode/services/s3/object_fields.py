"""Request parameters -> the descriptive fields of an object state, and back to output fields.

Every operation that creates an object (PutObject, CopyObject with ``REPLACE``,
CreateMultipartUpload) takes the same headers describing it: the content headers, the
``x-amz-meta-*`` user metadata, the storage class and the ``x-amz-tagging`` tag set (read by
``tag_rules.py``, shared with the tagging operations). They
are checked and turned into state fields here, once, so the object they describe looks the
same whichever way it was made. GetObject and HeadObject turn them back into output fields
with :func:`object_output`, and GetObject applies the ``response-*`` overrides with
:func:`response_overrides`.

The state fields are the ones ``projections.py`` documents: ``content`` (values exactly as the
client sent them; ``Expires`` as the raw header text), ``metadata`` (names lower-case, as S3
keeps them), ``storage_class`` and ``tags``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers
from zeronode.services.s3.tag_rules import parse_tagging_header

#: What S3 answers for an object stored without a Content-Type.
DEFAULT_CONTENT_TYPE = "binary/octet-stream"

#: Content members, each stored under its own name (``Expires`` as the raw header text).
CONTENT_MEMBERS = (
    "ContentType", "ContentEncoding", "ContentDisposition", "CacheControl", "ContentLanguage",
    "Expires",
)

#: S3 limits the user metadata (names and values, UTF-8) of one object to 2 KB.
MAX_METADATA_BYTES = 2048

STORAGE_CLASSES = frozenset({
    "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
    "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
})
#: Classes whose objects must be restored before a GET (S3's ``InvalidObjectState``).
ARCHIVED_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

_OVERRIDES = {
    "ResponseContentType": "ContentType",
    "ResponseContentLanguage": "ContentLanguage",
    "ResponseExpires": "Expires",
    "ResponseCacheControl": "CacheControl",
    "ResponseContentDisposition": "ContentDisposition",
    "ResponseContentEncoding": "ContentEncoding",
}


def content_fields(params: dict[str, Any], headers: Headers) -> dict[str, str]:
    """The ``content`` state field: the content headers as sent, Content-Type defaulted.

    ``Expires`` is taken from the raw header so it is returned exactly as it came (the
    parsed member would be a datetime, re-rendered on the way out).
    """
    content = {name: params[name] for name in CONTENT_MEMBERS if params.get(name) is not None}
    raw_expires = headers.get("expires")
    if raw_expires is not None:
        content["Expires"] = raw_expires
    content.setdefault("ContentType", DEFAULT_CONTENT_TYPE)
    return content


def user_metadata(params: dict[str, Any]) -> dict[str, str]:
    """The ``metadata`` state field; ``MetadataTooLarge`` over S3's 2 KB."""
    metadata = dict(params.get("Metadata") or {})
    size = sum(len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
               for k, v in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise AWSError(
            "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size",
            400, extra={"Size": str(size), "MaxSizeAllowed": str(MAX_METADATA_BYTES)},
        )
    return metadata


def storage_class(params: dict[str, Any]) -> str:
    """The ``storage_class`` state field (``STANDARD`` unless given); ``InvalidStorageClass``."""
    value = params.get("StorageClass")
    if value is None:
        return "STANDARD"
    if value not in STORAGE_CLASSES:
        raise AWSError("InvalidStorageClass", "The storage class you specified is not valid", 400,
                       extra={"StorageClassRequested": value})
    return value


def object_fields(params: dict[str, Any], headers: Headers) -> dict[str, Any]:
    """Every descriptive state field of a new object from its request's parameters.

    The result has ``content``, ``metadata``, ``storage_class`` and ``tags``: merge it into
    the state with the size, ETag, checksum and segments the bytes give.
    """
    return {
        "content": content_fields(params, headers),
        "metadata": user_metadata(params),
        "storage_class": storage_class(params),
        "tags": parse_tagging_header(params.get("Tagging")),
    }


def last_modified(state: dict[str, Any]) -> datetime:
    """The state's ``last_modified_ms`` as the aware datetime the serializer renders."""
    return datetime.fromtimestamp(state["last_modified_ms"] / 1000, tz=UTC)


def quoted_etag(state: dict[str, Any]) -> str:
    """The ETag as S3 sends it: the stored hex (or ``hex-N``) in double quotes."""
    return f'"{state["etag"]}"'


def object_output(state: dict[str, Any], *, versioned: bool) -> dict[str, Any]:
    """The GetObject/HeadObject output fields that describe ``state`` (a data version).

    ``versioned`` says whether the bucket has ever had versioning configured: only then
    does S3 send ``x-amz-version-id`` (``null`` for the null version). Sizes, ranges and
    checksums are the caller's (see ``ranges.py`` and ``checksum_fields.py``).
    """
    out: dict[str, Any] = {
        "LastModified": last_modified(state),
        "ETag": quoted_etag(state),
        "AcceptRanges": "bytes",
        **state.get("content", {}),
    }
    if versioned:
        out["VersionId"] = state["version_id"]
    if state.get("metadata"):
        out["Metadata"] = dict(state["metadata"])
    if state.get("storage_class", "STANDARD") != "STANDARD":
        out["StorageClass"] = state["storage_class"]
    if state.get("tags"):
        out["TagCount"] = len(state["tags"])
    return out


def response_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """The ``response-*`` query parameters of a GET as the output fields they replace."""
    return {field: params[name] for name, field in _OVERRIDES.items() if params.get(name) is not None}
