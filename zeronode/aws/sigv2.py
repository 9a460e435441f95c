"""S3's Signature Version 2: presigned query strings and ``Authorization: AWS`` headers.

Why it is here at all: boto3 still presigns S3 URLs with SigV2 in us-east-1 unless told
``signature_version="s3v4"``, so the URLs users hand out must verify. Header-signed SigV2
(``Authorization: AWS AKID:signature``) costs nothing more and is what old SDKs send.

Theory of operation
-------------------
The client HMAC-SHA1s, with the secret itself (no derived key, no scope, no region), the
string::

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n
    CanonicalizedAmzHeaders CanonicalizedResource      (no newline between these two)

and sends it base64. For a presigned URL, ``Date`` is the ``Expires`` query parameter (epoch
seconds) and the query carries ``AWSAccessKeyId``, ``Signature`` and ``Expires``; for header
auth it is the ``Date`` header, or empty when an ``x-amz-date`` header stands in for it.

- *CanonicalizedAmzHeaders*: every ``x-amz-*`` header, name lower-cased, values of repeated
  headers joined by ``,``, sorted by name, one ``name:value\\n`` each. A presigned URL may
  carry them as query parameters instead (botocore puts the ``x-amz-*`` headers it signed
  there), so those count too.
- *CanonicalizedResource*: the path as sent, bucket first (a virtual-hosted request signs
  ``/bucket/key``; a bucket itself is ``/bucket/``: :func:`resource_paths`), then the query
  parameters that name an S3 sub-resource or a response override (:data:`SUBRESOURCES`),
  sorted, values decoded, ``?name`` without ``=`` when sent without one. Every other
  parameter, the auth parameters included, is left out.
- ``Content-MD5`` and ``Content-Type`` are the request's headers: a URL presigned for
  ``text/plain`` only works with that content type.

The payload is not signed (a presigned PUT is the UNSIGNED-PAYLOAD of SigV4); a signed
``x-amz-content-sha256`` header, if sent, is honoured as in SigV4. Errors are S3's, from
:mod:`zeronode.aws.sigv4_errors`. Time comes only from the ``now`` argument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from zeronode.aws.errors import AWSError
from zeronode.aws.http import HttpRequest
from zeronode.aws.sigv4 import (
    MAX_SKEW,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    AuthContext,
    _hex_bytes,
    _iso,
)
from zeronode.aws.sigv4_canonical import (
    _wire_value,
    decoded_query_pairs,
    signatures_equal,
)
from zeronode.aws.sigv4_errors import (
    BAD_SIGNATURE_MESSAGE,
    UNKNOWN_KEY_MESSAGE,
    auth_error,
)

SCHEME = "AWS"

#: Query parameters that are part of the signed resource: S3's sub-resources and response
#: overrides (the S3 SigV2 documentation's list, and the newer ones botocore signs).
SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
    "lifecycle", "location", "logging", "metrics", "notification", "object-lock", "partNumber",
    "policy", "replication", "requestPayment", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "response-content-language",
    "response-content-type", "response-expires", "restore", "select", "select-type",
    "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website",
})

_QUERY_PARAMS = ("AWSAccessKeyId", "Signature", "Expires")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class SigV2Info:
    """What a SigV2 request claims; nothing verified. ``expires`` is set when presigned."""

    access_key_id: str
    signature: str
    expires: str | None = None
    #: SigV2 is S3's alone: the router needs no credential scope to know the service.
    service: str = "s3"

    @property
    def presigned(self) -> bool:
        return self.expires is not None


def parse_sigv2(req: HttpRequest) -> SigV2Info | None:
    """The SigV2 claims of ``req``, or None if it is not SigV2-signed (SigV4 or anonymous)."""
    auth = req.headers.get("authorization")
    if auth is not None:
        scheme, _, credentials = auth.strip().partition(" ")
        if scheme != SCHEME:
            return None
        key_id, colon, signature = credentials.strip().partition(":")
        if not (key_id and colon and signature):
            raise AWSError("InvalidArgument", "AWS authorization header is invalid.  Expected "
                           "AwsAccessKeyId:signature", 400,
                           extra={"ArgumentName": "Authorization", "ArgumentValue": auth})
        return SigV2Info(key_id, signature)
    query = dict(decoded_query_pairs(req.query_string))
    if not any(p in query for p in _QUERY_PARAMS[:2]) or "X-Amz-Credential" in query:
        return None
    if "SignatureVersion" in query:
        return None  # the query APIs' own SigV2 (SQS, EC2...), not S3's: refused as SigV4's
    if not all(query.get(p) for p in _QUERY_PARAMS):
        raise AWSError("AccessDenied", "Query-string authentication requires the Signature, "
                       "Expires and AWSAccessKeyId parameters", 403)
    return SigV2Info(query["AWSAccessKeyId"], query["Signature"], query["Expires"])


def resource_paths(path: str) -> tuple[str, ...]:
    """The paths a client may have signed for the path-style ``path``, likeliest first.

    A bucket itself is signed as ``/bucket/`` whether it was addressed as ``/bucket``,
    ``/bucket/`` or a virtual host's ``/`` (botocore always does so); a client that signs the
    ``/bucket`` it sent is accepted too. Any other path is signed as sent.
    """
    if path.count("/") == 1 and len(path) > 1:
        return path + "/", path
    return (path,)


def canonical_resource(path: str, query_string: str) -> str:
    """The signed resource: ``path`` plus the sub-resource parameters of the raw query."""
    signed = []
    for piece in query_string.split("&"):
        name, equals, value = piece.partition("=")
        if name in SUBRESOURCES:
            signed.append((name, f"{name}={unquote(value)}" if equals else name))
    signed.sort(key=lambda item: item[0])
    return path + ("?" + "&".join(text for _, text in signed) if signed else "")


def string_to_sign(req: HttpRequest, info: SigV2Info, path: str) -> str:
    """The text the client HMACed, rebuilt from the request as received."""
    if info.presigned:
        date = info.expires or ""
    else:
        date = "" if "x-amz-date" in req.headers else (req.headers.get("date") or "").strip()
    amz: dict[str, list[str]] = {}
    for name, value in req.headers.items():
        if name.startswith("x-amz-"):
            amz.setdefault(name, []).append(_wire_value(value).strip())
    if info.presigned:
        for name, value in decoded_query_pairs(req.query_string):
            if name.lower().startswith("x-amz-"):
                amz.setdefault(name.lower(), []).append(value.strip())
    lines = [
        req.method.upper(),
        (req.headers.get("content-md5") or "").strip(),
        (req.headers.get("content-type") or "").strip(),
        date,
        *(f"{name}:{','.join(amz[name])}" for name in sorted(amz)),
    ]
    return "\n".join(lines) + "\n" + canonical_resource(path, req.query_string)


def signature(secret: str, text: str) -> str:
    """Base64 HMAC-SHA1 of ``text`` under the secret itself."""
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8", "surrogateescape"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode("ascii")


def verify(
    req: HttpRequest,
    info: SigV2Info,
    *,
    secret_for: Callable[[str], str | None],
    path: str,
    now: datetime,
    region: str,
) -> AuthContext:
    """Check ``info`` against ``req``, whose path style raw path is ``path``, or raise S3's error.

    Order, as for SigV4: the clock (or the URL's expiry), the key, the signature. ``region``
    is the node's: SigV2 names none, and the node serves its own.
    """
    _check_time(req, info, now)
    secret = secret_for(info.access_key_id)
    if secret is None:
        raise auth_error("s3", "unknown_key", UNKNOWN_KEY_MESSAGE["s3"], "s3",
                         {"AWSAccessKeyId": info.access_key_id})
    candidates = [string_to_sign(req, info, signed) for signed in resource_paths(path)]
    if not any(signatures_equal(signature(secret, text), info.signature) for text in candidates):
        to_sign = candidates[0]
        raise auth_error("s3", "bad_signature", BAD_SIGNATURE_MESSAGE["s3"], "s3", {
            "AWSAccessKeyId": info.access_key_id,
            "StringToSign": to_sign,
            "SignatureProvided": info.signature,
            "StringToSignBytes": _hex_bytes(to_sign),
        })
    return AuthContext(
        access_key_id=info.access_key_id, region=region, service="s3", date="", amz_date="",
        signature=info.signature, signing_key=b"", payload_hash=_payload_hash(req),
        presigned=info.presigned,
    )


def _check_time(req: HttpRequest, info: SigV2Info, now: datetime) -> None:
    if info.presigned:
        assert info.expires is not None
        if not info.expires.isdigit():
            raise auth_error("s3", "expired",
                             f"Invalid date (should be seconds since epoch): {info.expires}")
        deadline = datetime.fromtimestamp(int(info.expires), tz=UTC)
        if now > deadline:
            raise auth_error("s3", "expired", "Request has expired", "s3",
                             {"Expires": _iso(deadline), "ServerTime": _iso(now)})
        return
    signed_at = _header_time(req)
    if signed_at is None:
        raise auth_error("s3", "missing_date",
                         "AWS authentication requires a valid Date or x-amz-date header")
    if abs(now - signed_at) > MAX_SKEW:
        raise auth_error("s3", "skewed", "The difference between the request time and the "
                         "current time is too large.", "s3", {
                             "RequestTime": _iso(signed_at),
                             "ServerTime": _iso(now),
                             "MaxAllowedSkewMilliseconds": str(MAX_SKEW // _MILLISECOND),
                         })


def _header_time(req: HttpRequest) -> datetime | None:
    """``x-amz-date`` (preferred) or ``Date``, in the HTTP date form SigV2 clients send."""
    value = req.headers.get("x-amz-date") or req.headers.get("date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _payload_hash(req: HttpRequest) -> str:
    """What the body is checked against: a signed ``x-amz-content-sha256``, else nothing.

    The SigV4 streaming modes chain chunk signatures from a SigV4 seed a SigV2 request does
    not have, so they are refused rather than stored as framed bytes.
    """
    value = (req.headers.get("x-amz-content-sha256") or "").strip()
    if value in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        raise AWSError("InvalidRequest", f"{value} requires AWS4-HMAC-SHA256 authorization", 400)
    if value == STREAMING_UNSIGNED_TRAILER or _HEX_SHA256.match(value):
        return value
    return UNSIGNED_PAYLOAD
