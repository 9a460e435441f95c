"""Opaque pagination tokens shared by every service.

AWS tokens are opaque strings that the server alone interprets. Ours are URL-safe base64 of a
small JSON document that names the operation it belongs to, so a token from ListBuckets fed
to another listing (or a mangled token) is refused instead of silently starting elsewhere.
The token carries only the position (the last key returned), never data a client may not see.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class InvalidToken(ValueError):
    """The token was not produced by :func:`encode_token` for this listing."""


def encode_token(listing: str, position: dict[str, Any]) -> str:
    doc = json.dumps({"l": listing, "p": position}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=")


def decode_token(listing: str, token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidToken(token) from exc
    if not isinstance(doc, dict) or doc.get("l") != listing or not isinstance(doc.get("p"), dict):
        raise InvalidToken(token)
    return doc["p"]
