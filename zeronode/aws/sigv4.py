"""AWS Signature Version 4: parsing and verifying signed requests, without I/O.

Theory of operation
-------------------
A SigV4 client hashes a *canonical request* (method, URI, sorted query, the headers it
chose to sign, a payload hash), wraps that hash in a *string to sign* with the timestamp and
the credential scope ``date/region/service/aws4_request``, and HMACs it with a key derived
from the secret and that scope. The server rebuilds the same canonical request from what it
received and compares signatures. Everything therefore depends on rebuilding the request
*exactly as the client saw it*: ``raw_path`` and ``query_string`` as sent, header values as
they arrived on the wire.

Two steps, because routing needs the first without the secret:

1. :func:`parse_authorization` reads the ``Authorization`` header or the presigned
   ``X-Amz-*`` query parameters into a :class:`SignatureInfo` (``None`` = anonymous). Its
   ``service`` is the credential scope's service, which is how the router picks S3,
   DynamoDB, SQS, Lambda, EC2 or ELBv2 before anything is verified.
2. :func:`verify` checks the clock, looks the key up through ``secret_for``, recomputes the
   signature and compares in constant time. It returns an :class:`AuthContext` holding the
   derived signing key and the verified (seed) signature: what :mod:`zeronode.aws.chunked`
   needs to check ``aws-chunked`` chunk signatures.

Where the services differ
-------------------------
- **Canonical URI.** S3 signs the path as sent (encoded once, never normalised: ``a//b``,
  ``./x`` and ``%2F`` are all meaningful in keys). Every other service signs the path with
  dot segments and repeated slashes removed and then percent-encoded a *second* time
  (``%3A`` becomes ``%253A``), which is what botocore and the SigV4 spec do.
- **Query.** Every service signs the query parameters decoded, re-encoded with the SigV4
  unreserved set (``A-Za-z0-9-_.~``) and sorted by key then value; a presigned request
  leaves out ``X-Amz-Signature``. Re-encoding makes the result independent of which
  characters a client chose to escape.
- **Payload.** For S3 the payload hash is the ``x-amz-content-sha256`` header as sent (a hex
  hash, ``UNSIGNED-PAYLOAD`` or a ``STREAMING-...`` mode; ``UNSIGNED-PAYLOAD`` for a presigned
  URL without that header: see :func:`s3_payload_hash`); the caller checks a hex hash
  against the body as it streams with :class:`PayloadHashCheck`, or hands a streaming body
  over as a :class:`SignedStream` whose consumer may take the check over (the blob store
  hashes in its worker threads). Other services sign the SHA-256 of the body, which the
  caller computes from the (small) body it read.
- **Errors.** Each family answers with its own codes and statuses; the table is
  :data:`AUTH_ERRORS` in :mod:`zeronode.aws.sigv4_errors`, with the reasons for each choice.

Header values are compared as the bytes that arrived (the HTTP layer hands them over
latin-1 decoded; they are re-read as UTF-8 where valid), so a client that signs UTF-8
metadata verifies. Time comes only from the ``now`` argument.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from zeronode.aws.errors import AWSError
from zeronode.aws.http import HttpRequest
from zeronode.aws.sigv4_canonical import (
    ALGORITHM,
    EMPTY_SHA256,
    canonical_query_string,
    canonical_request,
    canonical_uri,
    sign,
    signatures_equal,
    signing_key,
    string_to_sign,
)
from zeronode.aws.sigv4_errors import (
    AUTH_ERRORS,
    BAD_SIGNATURE_DEFAULT,
    BAD_SIGNATURE_MESSAGE,
    SERVICE_FAMILY,
    UNKNOWN_KEY_DEFAULT,
    UNKNOWN_KEY_MESSAGE,
    Family,
    family_for_service,
    missing_authentication,
)
from zeronode.aws.sigv4_errors import auth_error as _error
from zeronode.aws.sigv4_parse import (
    MAX_PRESIGNED_EXPIRES,
    SignatureInfo,
    _format_amz_date,
    _parse_amz_date,
    parse_authorization,
)

__all__ = [
    "ALGORITHM", "AUTH_ERRORS", "EMPTY_SHA256", "MAX_PRESIGNED_EXPIRES", "MAX_SKEW",
    "SERVICE_FAMILY", "STREAMING_MODES", "STREAMING_SIGNED", "STREAMING_SIGNED_TRAILER",
    "STREAMING_UNSIGNED_TRAILER", "UNSIGNED_PAYLOAD", "AuthContext", "Family",
    "PayloadHashCheck", "SignatureInfo", "SignedStream", "canonical_query_string",
    "canonical_request", "canonical_uri", "family_for_service", "missing_authentication",
    "parse_authorization", "s3_payload_hash", "sign", "signatures_equal", "signing_key",
    "string_to_sign", "take_payload_check", "verify",
]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
#: SigV4a streaming modes: recognised so they get a clear refusal, not a hash mismatch.
STREAMING_ECDSA = ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
                   "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER")
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)

MAX_SKEW = timedelta(minutes=15)

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class AuthContext:
    """A verified request's identity and what the aws-chunked verifier needs to continue.

    ``signature`` is the verified request signature: for ``STREAMING-AWS4-HMAC-SHA256-*``
    payloads it is the seed the first chunk signature chains from. ``signing_key`` is the
    derived (per day, region and service) key, never the secret, and is kept out of repr.
    ``payload_hash`` is what was signed as the payload (hex, or a literal mode).
    """

    access_key_id: str
    region: str
    service: str
    date: str
    amz_date: str
    signature: str
    signing_key: bytes = field(repr=False)
    payload_hash: str
    presigned: bool = False

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @property
    def streaming(self) -> bool:
        return self.payload_hash in STREAMING_MODES

    @property
    def payload_signed(self) -> bool:
        """True if the payload hash is a real SHA-256 the body must be checked against."""
        return bool(_HEX_SHA256.match(self.payload_hash))


def s3_payload_hash(req: HttpRequest, info: SignatureInfo) -> str:
    """The payload hash an S3 client signed: the ``x-amz-content-sha256`` header.

    A presigned URL without that header signs ``UNSIGNED-PAYLOAD``. Header auth without it,
    or with a value that is neither a SHA-256 nor a known mode, is refused as S3 does.
    """
    value = req.headers.get("x-amz-content-sha256")
    if value is None:
        if info.presigned:
            return UNSIGNED_PAYLOAD
        raise AWSError("InvalidRequest",
                       "Missing required header for this request: x-amz-content-sha256", 400)
    value = value.strip()
    if value in STREAMING_ECDSA:
        raise AWSError("NotImplemented", "A header you provided implies functionality that is "
                       "not implemented", 501, extra={"Header": "x-amz-content-sha256"})
    if not (value == UNSIGNED_PAYLOAD or value in STREAMING_MODES or _HEX_SHA256.match(value)):
        raise AWSError(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, "
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
            400,
            extra={"ArgumentName": "x-amz-content-sha256", "ArgumentValue": value},
        )
    return value


def verify(
    req: HttpRequest,
    info: SignatureInfo,
    *,
    secret_for: Callable[[str], str | None],
    payload_hash: str,
    now: datetime,
    family: Family,
) -> AuthContext:
    """Check ``info`` against ``req`` and return the verified identity, or raise AWSError.

    Order, as AWS does it: scope/date consistency, clock (skew, or presigned expiry), then
    the key, then the signature. ``now`` must be timezone-aware (UTC).
    """
    service = info.service
    if info.date != info.amz_date[:8]:
        if family == "s3":
            kind = "malformed_query" if info.presigned else "malformed"
            prefix = "" if info.presigned else "The authorization header is malformed; "
            raise _error(family, kind, f'{prefix}Invalid credential date "{info.date}". This '
                         f'date is not the same as X-Amz-Date: "{info.amz_date[:8]}".')
        raise _error(family, "bad_signature", "Date in Credential scope does not match YYYYMMDD "
                     f"from ISO-8601 version of date from HTTP: '{info.date}' != "
                     f"'{info.amz_date[:8]}', from '{info.amz_date}'.", service)
    if info.presigned and family == "s3" and "host" not in info.signed_headers:
        raise _error(family, "malformed_query",
                     "Query-string authentication requires the Host header to be signed.")
    _check_time(info, now, family)
    if info.presigned and family == "s3":
        _check_presigned_headers_signed(req, info)

    secret = secret_for(info.access_key_id)
    if secret is None:
        extra = {"AWSAccessKeyId": info.access_key_id} if family == "s3" else {}
        raise _error(family, "unknown_key",
                     UNKNOWN_KEY_MESSAGE.get(family, UNKNOWN_KEY_DEFAULT), service, extra)

    canonical = canonical_request(req, info, payload_hash, family)
    to_sign = string_to_sign(info.amz_date, info.scope, canonical)
    key = signing_key(secret, info.date, info.region, info.service)
    expected = sign(key, to_sign)
    if not signatures_equal(expected, info.signature):
        extra = {}
        if family == "s3":
            extra = {
                "AWSAccessKeyId": info.access_key_id,
                "StringToSign": to_sign,
                "SignatureProvided": info.signature,
                "StringToSignBytes": _hex_bytes(to_sign),
                "CanonicalRequest": canonical,
                "CanonicalRequestBytes": _hex_bytes(canonical),
            }
        raise _error(family, "bad_signature",
                     BAD_SIGNATURE_MESSAGE.get(family, BAD_SIGNATURE_DEFAULT), service, extra)
    return AuthContext(
        access_key_id=info.access_key_id,
        region=info.region,
        service=info.service,
        date=info.date,
        amz_date=info.amz_date,
        signature=expected,
        signing_key=key,
        payload_hash=payload_hash,
        presigned=info.presigned,
    )


def _hex_bytes(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode("utf-8", "surrogateescape"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_time(info: SignatureInfo, now: datetime, family: Family) -> None:
    signed_at = _parse_amz_date(info.amz_date)
    now_basic = _format_amz_date(now)
    service = info.service
    if info.presigned:
        expires = info.expires if info.expires is not None else MAX_PRESIGNED_EXPIRES
        deadline = signed_at + timedelta(seconds=expires)
        if signed_at - now > MAX_SKEW:
            raise _error(family, "not_yet_valid", "Request is not valid yet" if family == "s3"
                         else _not_yet_current(info.amz_date, now), service)
        if now > deadline:
            if family == "s3":
                raise _error(family, "expired", "Request has expired", service, {
                    "X-Amz-Expires": str(expires),
                    "Expires": _iso(deadline),
                    "ServerTime": _iso(now),
                })
            raise _error(family, "expired", "Request has expired." if family == "ec2" else
                         f"Signature expired: {_format_amz_date(deadline)} is now earlier than "
                         f"{now_basic}.", service)
        return
    if abs(now - signed_at) <= MAX_SKEW:
        return
    if family == "s3":
        raise _error(family, "skewed",
                     "The difference between the request time and the current time is too large.",
                     service, {
                         "RequestTime": info.amz_date,
                         "ServerTime": _iso(now),
                         "MaxAllowedSkewMilliseconds": str(int(MAX_SKEW.total_seconds() * 1000)),
                     })
    if family == "ec2":
        raise _error(family, "skewed", "Request has expired.", service)
    if signed_at < now:
        message = (f"Signature expired: {info.amz_date} is now earlier than "
                   f"{_format_amz_date(now - MAX_SKEW)} ({now_basic} - 15 min.)")
    else:
        message = _not_yet_current(info.amz_date, now)
    raise _error(family, "skewed", message, service)


def _not_yet_current(amz_date: str, now: datetime) -> str:
    return (f"Signature not yet current: {amz_date} is still later than "
            f"{_format_amz_date(now + MAX_SKEW)} ({_format_amz_date(now)} + 15 min.)")


def _check_presigned_headers_signed(req: HttpRequest, info: SignatureInfo) -> None:
    """S3 refuses a presigned request carrying x-amz-* headers its signer did not cover.

    Otherwise whoever holds a presigned PUT could add, say, ``x-amz-acl: public-read``.
    Header-authenticated requests are signed by the key holder, who may send what it likes.
    """
    signed = set(info.signed_headers)
    unsigned = sorted({name for name, _ in req.headers.items()
                       if name.startswith("x-amz-") and name not in signed})
    if unsigned:
        raise AWSError("AccessDenied", "There were headers present in the request which were "
                       "not signed", 403, extra={"HeadersNotSigned": ", ".join(unsigned)})


# --------------------------------------------------------------------------- payload hash


class PayloadHashCheck:
    """Check a body, as it streams, against the hex ``x-amz-content-sha256`` S3 signed.

    Feed every body piece to :meth:`update`; :meth:`finish` raises
    ``XAmzContentSHA256Mismatch`` if the body was not what was signed. The caller must not
    make the object visible before ``finish`` returns.
    """

    def __init__(self, expected_hex: str) -> None:
        self.expected = expected_hex.strip().lower()
        self._hash = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def finish(self) -> None:
        computed = self._hash.hexdigest()
        if not signatures_equal(computed, self.expected):
            raise AWSError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                400,
                extra={"ClientComputedContentSHA256": self.expected,
                       "S3ComputedContentSHA256": computed},
            )


class SignedStream:
    """A streaming body whose SHA-256 was signed: its chunks, unchanged, and the expected hex.

    Iterated as it is, it checks the hash itself, on the event loop, and raises
    ``XAmzContentSHA256Mismatch`` (from :meth:`PayloadHashCheck.finish`) once the body has
    ended — so a consumer that knows nothing of it is still safe. A consumer that can hash
    off the loop calls :meth:`take_check` instead: it gets the bare stream and the expected
    hex, and with them the duty to check before it makes anything durable or visible.
    """

    def __init__(self, stream: AsyncIterator[bytes], expected_sha256: str) -> None:
        self._stream: AsyncIterator[bytes] | None = stream
        self._checked: AsyncIterator[bytes] | None = None
        self.expected_sha256 = expected_sha256.strip().lower()

    def take_check(self) -> tuple[AsyncIterator[bytes], str]:
        """The bare stream and the hex SHA-256 the caller must now check it against."""
        return self._take(), self.expected_sha256

    def __aiter__(self) -> SignedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._checked is None:
            self._checked = _hash_checked(self._take(), self.expected_sha256)
        return await self._checked.__anext__()

    def _take(self) -> AsyncIterator[bytes]:
        stream, self._stream = self._stream, None
        if stream is None:
            raise RuntimeError("a signed body can be consumed only once")
        return stream


def take_payload_check(
    body: AsyncIterator[bytes],
) -> tuple[AsyncIterator[bytes], str | None]:
    """``body`` to read, and the hex SHA-256 the reader must check it against, if signed."""
    if isinstance(body, SignedStream):
        return body.take_check()
    return body, None


async def _hash_checked(stream: AsyncIterator[bytes], expected: str) -> AsyncIterator[bytes]:
    check = PayloadHashCheck(expected)
    async for chunk in stream:
        check.update(chunk)
        yield chunk
    check.finish()
