"""S3 bucket naming rules for general purpose buckets, as S3 enforces them.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html — 3 to 63
characters of lowercase letters, digits, dots and hyphens; starting and ending with a letter
or digit; no two adjacent dots; not shaped like an IPv4 address; none of the prefixes and
suffixes S3 reserves for its own features.
"""

from __future__ import annotations

import re

from zeronode.aws.errors import AWSError

_ALLOWED = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid bucket name, or None when it is."""
    if not 3 <= len(name) <= 63:
        return "Bucket names must be between 3 and 63 characters long"
    if not _ALLOWED.match(name):
        return (
            "Bucket names can consist only of lowercase letters, numbers, dots and hyphens, "
            "and must begin and end with a letter or number"
        )
    if ".." in name:
        return "Bucket names must not contain two adjacent periods"
    if _IPV4.match(name):
        return "Bucket names must not be formatted as an IP address"
    if name.startswith(RESERVED_PREFIXES) or name.endswith(RESERVED_SUFFIXES):
        return "Bucket names must not use a prefix or suffix reserved by Amazon S3"
    return None


def check_bucket_name(name: str) -> None:
    """Raise S3's ``InvalidBucketName`` for a name S3 would refuse."""
    if bucket_name_problem(name) is not None:
        raise AWSError(
            "InvalidBucketName", "The specified bucket is not valid.", 400, extra={"BucketName": name}
        )
