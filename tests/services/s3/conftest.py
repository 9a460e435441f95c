from __future__ import annotations

from typing import Any

import pytest

from tests.services.s3.helpers import s3_client


@pytest.fixture
def s3(agent: Any) -> Any:
    """A boto3 S3 client for a fresh agent, in us-east-1."""
    return s3_client(agent)


@pytest.fixture
def s3b(s3: Any, request: pytest.FixtureRequest) -> Any:
    """``s3`` with the test module's ``BUCKET`` created (modules needing more override it)."""
    s3.create_bucket(Bucket=request.module.BUCKET)
    return s3
