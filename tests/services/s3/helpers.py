"""Shared helpers for S3 tests: boto3 clients for the test agent, and error inspection."""

from __future__ import annotations

from typing import Any

import boto3
import urllib3
from botocore.config import Config


def s3_client(agent: Any, region: str = "us-east-1", **overrides: Any) -> Any:
    """A path-style, SigV4, no-retry S3 client for ``agent`` (keys overridable for auth tests)."""
    return boto3.client(
        "s3",
        endpoint_url=overrides.pop("endpoint", agent.endpoint),
        region_name=region,
        aws_access_key_id=overrides.pop("key", agent.credentials.access_key_id),
        aws_secret_access_key=overrides.pop("secret", agent.credentials.secret_access_key),
        config=Config(
            s3={"addressing_style": overrides.pop("addressing_style", "path")},
            signature_version="s3v4",
            retries={"max_attempts": 1},
            **overrides,
        ),
    )


def error_of(exc_info: Any) -> tuple[str, int]:
    """(Error.Code, HTTP status) of a ``pytest.raises(ClientError)`` result."""
    err = exc_info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def raw_request(method: str, url: str, **kwargs: Any) -> Any:
    """One plain HTTP request (urllib3), as a browser or ``curl`` sends a URL it was given.

    Each request gets its own connection: after an early error answer to an upload the
    server closes the connection, and a reused one would race with that close.
    """
    return urllib3.PoolManager(retries=False).request(method, url, **kwargs)
