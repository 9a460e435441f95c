"""S3 bucket operations through boto3 against a real agent."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of, s3_client


def names(client, **kwargs) -> list[str]:
    return [b["Name"] for b in client.list_buckets(**kwargs)["Buckets"]]


def test_create_head_list_delete(agent) -> None:
    client = s3_client(agent)
    out = client.create_bucket(Bucket="logs")
    assert out["Location"] == "/logs"
    head = client.head_bucket(Bucket="logs")
    assert head["BucketRegion"] == "us-east-1"
    listing = client.list_buckets()
    assert [b["Name"] for b in listing["Buckets"]] == ["logs"]
    assert listing["Buckets"][0]["CreationDate"].tzinfo is not None
    assert listing["Owner"]["ID"]
    assert client.get_bucket_location(Bucket="logs")["LocationConstraint"] is None
    client.delete_bucket(Bucket="logs")
    assert names(client) == []
    with pytest.raises(ClientError) as exc:
        client.head_bucket(Bucket="logs")
    assert error_of(exc) == ("404", 404)


def test_missing_bucket_errors(agent) -> None:
    client = s3_client(agent)
    for call in (client.delete_bucket, client.get_bucket_location):
        with pytest.raises(ClientError) as exc:
            call(Bucket="nope")
        assert error_of(exc) == ("NoSuchBucket", 404)
        assert exc.value.response["Error"]["BucketName"] == "nope"


@pytest.mark.parametrize(
    "bad",
    ["ab", "a" * 64, "Upper", "under_score", "-start", "end-", "two..dots", "192.168.5.4",
     "xn--punycode", "sthree-x", "bucket-s3alias", "bucket--ol-s3"],
)
def test_invalid_bucket_names(agent, bad: str) -> None:
    client = s3_client(agent)
    with pytest.raises(ClientError) as exc:
        client.create_bucket(Bucket=bad)
    assert error_of(exc) == ("InvalidBucketName", 400)
    assert names(client) == []


def test_duplicate_in_us_east_1_is_legacy_200(agent) -> None:
    client = s3_client(agent)
    client.create_bucket(Bucket="twice")
    client.create_bucket(Bucket="twice")
    assert names(client) == ["twice"]


def test_duplicate_elsewhere_is_already_owned(agent) -> None:
    client = s3_client(agent, "eu-west-1")
    config = {"LocationConstraint": "eu-west-1"}
    client.create_bucket(Bucket="dup", CreateBucketConfiguration=config)
    with pytest.raises(ClientError) as exc:
        client.create_bucket(Bucket="dup", CreateBucketConfiguration=config)
    assert error_of(exc) == ("BucketAlreadyOwnedByYou", 409)
    assert client.get_bucket_location(Bucket="dup")["LocationConstraint"] == "eu-west-1"
    # a us-east-1 re-create of a bucket that lives elsewhere is no legacy 200
    with pytest.raises(ClientError) as exc:
        s3_client(agent).create_bucket(Bucket="dup")
    assert error_of(exc) == ("BucketAlreadyOwnedByYou", 409)


def test_location_constraint_rules(agent) -> None:
    east, west = s3_client(agent), s3_client(agent, "eu-west-1")
    cases = [
        (east, {"LocationConstraint": "us-east-1"}, "InvalidLocationConstraint"),
        (east, {"LocationConstraint": "eu-west-1"}, "IllegalLocationConstraintException"),
        (west, {"LocationConstraint": "eu-central-1"}, "IllegalLocationConstraintException"),
    ]
    for client, config, code in cases:
        with pytest.raises(ClientError) as exc:
            client.create_bucket(Bucket="placed", CreateBucketConfiguration=config)
        assert error_of(exc) == (code, 400)
    with pytest.raises(ClientError) as exc:
        west.create_bucket(Bucket="placed")
    assert error_of(exc) == ("IllegalLocationConstraintException", 400)
    assert names(east) == []
    west.create_bucket(Bucket="placed", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert east.head_bucket(Bucket="placed")["BucketRegion"] == "eu-west-1"
    assert names(east, BucketRegion="eu-west-1") == ["placed"]
    assert names(east, BucketRegion="us-east-1") == []


def test_list_buckets_pagination(agent) -> None:
    client = s3_client(agent)
    created = sorted(f"page-{i:02d}" for i in range(7)) + ["other"]
    for name in created:
        client.create_bucket(Bucket=name)
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"MaxBuckets": 3, "Prefix": "page-"}
        if token:
            kwargs["ContinuationToken"] = token
        out = client.list_buckets(**kwargs)
        assert out["Prefix"] == "page-"
        seen += [b["Name"] for b in out["Buckets"]]
        pages += 1
        token = out.get("ContinuationToken")
        if not token:
            break
    assert seen == [n for n in created if n.startswith("page-")]
    assert pages == 3
    paginated = [
        b["Name"]
        for page in client.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": 2})
        for b in page["Buckets"]
    ]
    assert paginated == sorted(created)
    with pytest.raises(ClientError) as exc:
        client.list_buckets(MaxBuckets=2, ContinuationToken="not-a-token")
    assert error_of(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        client.list_buckets(MaxBuckets=10001)
    assert error_of(exc) == ("InvalidArgument", 400)


def test_buckets_survive_restart(agent) -> None:
    client = s3_client(agent)
    client.create_bucket(Bucket="durable")
    client.create_bucket(Bucket="gone")
    client.delete_bucket(Bucket="gone")
    agent.restart()
    assert names(s3_client(agent)) == ["durable"]
