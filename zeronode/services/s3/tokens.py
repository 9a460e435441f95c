"""S3 continuation tokens (ListBuckets, ListObjectsV2): the position after which to resume.

The token is :mod:`zeronode.aws.pagination`'s opaque form, bound to its listing; anything
else is refused with the error S3 gives for a token it did not issue.
"""

from __future__ import annotations

from zeronode.aws.errors import AWSError
from zeronode.aws.pagination import InvalidToken, decode_token, encode_token


def continuation_token(listing: str, after: str) -> str:
    return encode_token(listing, {"after": after})


def resume_after(listing: str, token: str) -> str:
    """The name the listing resumes after; ``InvalidArgument`` for a token not of this listing."""
    try:
        position = decode_token(listing, token).get("after")
    except InvalidToken:
        position = None
    if not isinstance(position, str):
        raise AWSError(
            "InvalidArgument", "The continuation token provided is incorrect", 400,
            extra={"ArgumentName": "continuation-token"},
        )
    return position
