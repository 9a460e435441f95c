"""DeleteObjects through boto3: verbose and quiet answers, per-key errors, versions."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

BUCKET = "bulk"


@pytest.fixture
def s3b(s3):
    s3.create_bucket(Bucket=BUCKET)
    for key in ("a", "b", "c/d", "../e"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    return s3


def exists(client, key: str) -> bool:
    try:
        client.head_object(Bucket=BUCKET, Key=key)
    except ClientError:
        return False
    return True


def test_verbose_delete_with_per_key_errors(s3b) -> None:
    out = s3b.delete_objects(Bucket=BUCKET, Delete={"Objects": [
        {"Key": "a"}, {"Key": "../e"}, {"Key": "never-existed"},
        {"Key": "x" * 1025}, {"Key": "b", "VersionId": "bogus"},
    ]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["../e", "a", "never-existed"]
    errors = {e["Key"]: e["Code"] for e in out["Errors"]}
    assert errors == {"x" * 1025: "KeyTooLongError", "b": "InvalidArgument"}
    assert [exists(s3b, k) for k in ("a", "b", "c/d", "../e")] == [False, True, True, False]


def test_quiet_delete_reports_only_errors(s3b) -> None:
    out = s3b.delete_objects(Bucket=BUCKET, Delete={"Quiet": True, "Objects": [
        {"Key": "a"}, {"Key": "c/d"}]})
    assert "Deleted" not in out and "Errors" not in out
    assert not exists(s3b, "a") and not exists(s3b, "c/d") and exists(s3b, "b")


def test_versioned_bulk_delete(s3b) -> None:
    s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    v = s3b.put_object(Bucket=BUCKET, Key="a", Body=b"versioned")["VersionId"]
    out = s3b.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    by_key = {d["Key"]: d for d in out["Deleted"]}
    assert by_key["a"]["DeleteMarker"] is True and by_key["a"]["DeleteMarkerVersionId"]
    assert not exists(s3b, "a")
    out = s3b.delete_objects(Bucket=BUCKET, Delete={"Objects": [
        {"Key": "a", "VersionId": by_key["a"]["DeleteMarkerVersionId"]}]})
    assert out["Deleted"][0]["DeleteMarker"] is True
    assert s3b.get_object(Bucket=BUCKET, Key="a")["Body"].read() == b"versioned"
    out = s3b.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "a", "VersionId": v}]})
    assert out["Deleted"] == [{"Key": "a", "VersionId": v}]
    # the null version written before versioning is what remains
    assert s3b.get_object(Bucket=BUCKET, Key="a")["Body"].read() == b"a"
