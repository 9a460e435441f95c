"""SigV4's canonical request and signing primitives (no parsing, no policy, no errors).

See :mod:`zeronode.aws.sigv4` for how the services differ; these functions take the
family (``"s3"`` or another) where it matters.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_to_bytes

from zeronode.aws.http import HttpRequest

if TYPE_CHECKING:
    from zeronode.aws.sigv4_parse import SignatureInfo

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def decoded_query_pairs(query_string: str) -> list[tuple[str, str]]:
    """Raw query pairs, decoded (``+`` is a literal plus, as in SigV4 — not a space)."""
    pairs = []
    for piece in query_string.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        pairs.append((_decode(key), _decode(value)))
    return pairs


def _decode(component: str) -> str:
    return unquote_to_bytes(component).decode("utf-8", "surrogateescape")


def _uri_encode(value: str, safe: str = "") -> str:
    return quote(value.encode("utf-8", "surrogateescape"), safe="-_.~" + safe)


def canonical_query_string(query_string: str, presigned: bool = False) -> str:
    """The sorted, uniformly encoded query; ``X-Amz-Signature`` left out when presigned."""
    pairs = []
    for piece in query_string.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        enc_key = _uri_encode(_decode(key))
        if presigned and enc_key == "X-Amz-Signature":
            continue
        pairs.append((enc_key, _uri_encode(_decode(value))))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_uri(raw_path: str, family: str) -> str:
    """S3: the path as sent. Others: dot segments and empty segments removed, encoded again."""
    path = raw_path or "/"
    if family == "s3":
        return path
    return quote(_remove_dot_segments(path), safe="/~")


def _remove_dot_segments(path: str) -> str:
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return "/" + "/".join(segments) + trailing


def _wire_value(value: str) -> str:
    """A header value as the client signed it: the received bytes read as UTF-8 when they
    are UTF-8 (what botocore and the other SDKs send), else as the latin-1 they arrived as."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def canonical_request(req: HttpRequest, info: SignatureInfo, payload_hash: str, family: str) -> str:
    """The canonical request text, exactly as the client must have built it."""
    lines = []
    for name in info.signed_headers:
        values = req.headers.get_all(name)
        lines.append(f"{name}:" + ",".join(" ".join(_wire_value(v).split()) for v in values))
    return "\n".join([
        req.method.upper(),
        canonical_uri(req.raw_path, family),
        canonical_query_string(req.query_string, info.presigned),
        "\n".join(lines) + "\n",
        ";".join(info.signed_headers),
        payload_hash,
    ])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain over date, region, service and ``aws4_request``.

    Cached: it changes once a day per key, region and service, and the four HMACs were a
    visible share of each request's CPU. The secret is part of the cache key, so a rotated
    or different secret never meets a key derived from another one.
    """
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign(key: bytes, text: str) -> str:
    """Hex HMAC-SHA256 of ``text`` under a derived signing key."""
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time comparison that tolerates any characters in ``provided``."""
    return hmac.compare_digest(expected.encode("ascii"),
                               provided.encode("utf-8", "surrogatepass"))
