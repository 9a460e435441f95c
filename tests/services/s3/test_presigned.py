"""Presigned URLs made by boto3 and used by plain HTTP (urllib3), as users hand them out.

boto3's default ``generate_presigned_url`` in us-east-1 signs with SigV2 (``AWSAccessKeyId``,
``Signature``, ``Expires``); with ``signature_version="s3v4"`` with SigV4 query parameters.
Both must work for GET and PUT, and both must refuse tampered and expired URLs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config

from tests.aws.signing import frozen_clock
from tests.services.s3.helpers import raw_request

STYLES = ["sigv2", "s3v4"]


def presigner(agent: Any, style: str) -> Any:
    """boto3 as a user has it: default config (``sigv2`` presigning), ``s3v4`` or ``s3``."""
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                    signature_version=None if style == "sigv2" else style)
    return boto3.client(
        "s3", endpoint_url=agent.endpoint, region_name="us-east-1",
        aws_access_key_id=agent.credentials.access_key_id,
        aws_secret_access_key=agent.credentials.secret_access_key, config=config,
    )


def error_code(response: Any) -> str:
    return response.data.decode().split("<Code>")[1].split("</Code>")[0]


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="shared")
    return "shared"


def test_default_boto3_presigns_with_sigv2() -> None:
    client = boto3.client("s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x" * 40)
    url = client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    assert "AWSAccessKeyId=" in url and "X-Amz-Signature" not in url


def test_presigned_get_and_put(agent: Any, s3: Any, bucket: str) -> None:
    for style in STYLES:
        key = f"{style}/a b+c.txt"
        client = presigner(agent, style)
        put = client.generate_presigned_url("put_object", Params={
            "Bucket": bucket, "Key": key, "ContentType": "text/plain"})
        r = raw_request("PUT", put, body=b"hello from a browser",
                         headers={"Content-Type": "text/plain"})
        assert r.status == 200, r.data
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["ContentType"], head["ContentLength"]) == ("text/plain", 20)

        get = client.generate_presigned_url("get_object", Params={
            "Bucket": bucket, "Key": key, "ResponseContentDisposition": "attachment"})
        r = raw_request("GET", get)
        assert (r.status, r.data) == (200, b"hello from a browser")
        assert r.headers["Content-Disposition"] == "attachment"


def test_presigned_put_with_another_content_type_is_refused(
    agent: Any, s3: Any, bucket: str
) -> None:
    for style in STYLES:
        put = presigner(agent, style).generate_presigned_url("put_object", Params={
            "Bucket": bucket, "Key": "typed", "ContentType": "text/plain"})
        for sent in ({"Content-Type": "text/html"}, {}):
            r = raw_request("PUT", put, body=b"<script>", headers=sent)
            assert (r.status, error_code(r)) == (403, "SignatureDoesNotMatch"), (style, sent)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_tampered_urls_are_refused(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="mine", Body=b"secret")
    s3.put_object(Bucket=bucket, Key="other", Body=b"other secret")
    for style in STYLES:
        client = presigner(agent, style)
        get = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "mine"})
        put = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "mine"})
        for method, url in (("GET", get.replace("/mine?", "/other?")), ("DELETE", get),
                            ("PUT", put.replace("/mine?", "/other?"))):
            r = raw_request(method, url, body=b"overwritten" if method == "PUT" else None)
            assert (r.status, error_code(r)) == (403, "SignatureDoesNotMatch"), (method, url)
        # a header the URL did not sign cannot be slipped in either
        r = raw_request("PUT", put, body=b"x", headers={"x-amz-acl": "public-read"})
        assert r.status == 403
    stranger = boto3.client("s3", endpoint_url=agent.endpoint, region_name="us-east-1",
                            aws_access_key_id="AKIAUNKNOWN000000000",
                            aws_secret_access_key="x" * 40)
    r = raw_request("GET", stranger.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "mine"}))
    assert (r.status, error_code(r)) == (403, "InvalidAccessKeyId")
    assert s3.get_object(Bucket=bucket, Key="other")["Body"].read() == b"other secret"
    assert s3.get_object(Bucket=bucket, Key="mine")["Body"].read() == b"secret"


def test_expired_urls_are_refused(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for style in STYLES:
        client = presigner(agent, style)
        with frozen_clock(an_hour_ago), \
                mock.patch("time.time", return_value=an_hour_ago.timestamp()):
            get = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
            put = client.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
        for method, url in (("GET", get), ("PUT", put)):
            r = raw_request(method, url, body=b"new" if method == "PUT" else None)
            assert r.status == 403
            assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in \
                r.data.decode()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"


def test_sigv2_header_signed_client(agent: Any, bucket: str) -> None:
    """``signature_version="s3"`` clients sign every call with ``Authorization: AWS``."""
    client = presigner(agent, "s3")
    client.put_object(Bucket=bucket, Key="v2 key", Body=b"v2 body", Metadata={"who": "old sdk"})
    got = client.get_object(Bucket=bucket, Key="v2 key")
    assert (got["Body"].read(), got["Metadata"]) == (b"v2 body", {"who": "old sdk"})
    assert [o["Key"] for o in client.list_objects(Bucket=bucket)["Contents"]] == ["v2 key"]
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    client.delete_object(Bucket=bucket, Key="v2 key")
    assert client.list_objects(Bucket=bucket).get("Contents") is None
