"""AWS errors as values.

A service raises :class:`AWSError` once, with AWS's own code and HTTP status; the protocol
layer renders it in the body format of the service's protocol (rest-xml, json, query, ec2).
Keeping the error a plain value means the same ``NoSuchBucket`` is identical whether it came
from the service code, the router or the signature check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AWSError(Exception):
    """An error a client sees: ``code`` and ``status`` exactly as AWS sends them.

    ``sender_fault`` picks the ``Sender``/``Receiver`` type in query-protocol bodies.
    ``extra`` holds additional fields some errors carry (S3's ``BucketName``, ``Key``,
    ``ArgumentName``..., DynamoDB's ``Item``): rendered as extra elements/members of the
    error body.
    ``headers`` are extra response headers (``x-amz-delete-marker``, ``Retry-After``...).
    """

    code: str
    message: str = ""
    status: int = 400
    sender_fault: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")


def validation_error(message: str) -> AWSError:
    """The JSON/query services' generic input error (S3 uses specific codes instead)."""
    return AWSError("ValidationException", message, 400)


def internal_error(message: str = "We encountered an internal error. Please try again.") -> AWSError:
    return AWSError("InternalError", message, 500, sender_fault=False)
