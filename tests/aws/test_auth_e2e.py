"""Authentication through real clients: what AWS answers to bad keys, signatures and URLs."""

from __future__ import annotations

import contextlib
import datetime as dt
from unittest import mock

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of, s3_client


@contextlib.contextmanager
def signing_clock(offset: dt.timedelta):
    """Make botocore sign as if the time were now + offset (its Python and CRT signers)."""
    moment = dt.datetime.now(dt.timezone.utc) + offset

    def fake(remove_tzinfo: bool = True) -> dt.datetime:
        return moment.replace(tzinfo=None) if remove_tzinfo else moment

    with mock.patch("botocore.auth.get_current_datetime", fake), mock.patch(
        "botocore.crt.auth.get_current_datetime", fake
    ):
        yield


def test_wrong_secret_is_signature_mismatch(agent) -> None:
    with pytest.raises(ClientError) as exc:
        s3_client(agent, secret="x" * 40).list_buckets()
    assert error_of(exc) == ("SignatureDoesNotMatch", 403)


def test_unknown_key_is_invalid_access_key(agent) -> None:
    with pytest.raises(ClientError) as exc:
        s3_client(agent, key="AKIAUNKNOWNUNKNOWN00").list_buckets()
    assert error_of(exc) == ("InvalidAccessKeyId", 403)


def test_clock_skew_is_refused(agent) -> None:
    with signing_clock(-dt.timedelta(minutes=16)):
        with pytest.raises(ClientError) as exc:
            s3_client(agent).list_buckets()
    assert error_of(exc) == ("RequestTimeTooSkewed", 403)


def test_presigned_url_works_and_tampering_is_refused(agent) -> None:
    client = s3_client(agent)
    client.create_bucket(Bucket="signed")
    http = urllib3.PoolManager()
    url = client.generate_presigned_url("get_bucket_location", Params={"Bucket": "signed"}, ExpiresIn=60)
    assert http.request("GET", url).status == 200
    tampered = url.replace("/signed", "/signee")
    resp = http.request("GET", tampered)
    assert resp.status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in resp.data
    resp = http.request("GET", url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))
    assert resp.status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in resp.data


def test_expired_presigned_url_is_access_denied(agent) -> None:
    client = s3_client(agent)
    client.create_bucket(Bucket="expiring")
    with signing_clock(-dt.timedelta(seconds=120)):
        url = client.generate_presigned_url(
            "get_bucket_location", Params={"Bucket": "expiring"}, ExpiresIn=60
        )
    resp = urllib3.PoolManager().request("GET", url)
    assert resp.status == 403
    assert b"<Code>AccessDenied</Code>" in resp.data and b"Request has expired" in resp.data


def test_anonymous_request_is_access_denied(agent) -> None:
    resp = urllib3.PoolManager().request("GET", agent.endpoint + "/")
    assert resp.status == 403 and b"<Code>AccessDenied</Code>" in resp.data


def test_unimplemented_services_answer_aws_errors(agent) -> None:
    def client(service: str):
        return boto3.client(
            service,
            endpoint_url=agent.endpoint,
            region_name="us-east-1",
            aws_access_key_id=agent.credentials.access_key_id,
            aws_secret_access_key=agent.credentials.secret_access_key,
            config=Config(retries={"max_attempts": 1}),
        )

    calls = {
        "dynamodb": lambda c: c.list_tables(),
        "sqs": lambda c: c.list_queues(),
        "lambda": lambda c: c.list_functions(),
        "elbv2": lambda c: c.describe_load_balancers(),
        "ec2": lambda c: c.describe_vpcs(),
    }
    for service, call in calls.items():
        with pytest.raises(ClientError) as exc:
            call(client(service))
        code, status = error_of(exc)
        assert status in (400, 501), (service, code, status)
        assert code in (
            "UnknownOperationException", "InvalidAction", "UnsupportedOperation",
            "AWS.SimpleQueueService.UnsupportedOperation",
        ), (service, code)
