"""CopyObject through boto3: directives, versions, conditions, the self-copy rule."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of

SRC, DST = "source", "target"


@pytest.fixture
def s3b(s3):
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=DST)
    s3.put_object(Bucket=SRC, Key="doc", Body=b"payload", ContentType="text/plain",
                  CacheControl="no-store", Metadata={"origin": "src"}, Tagging="a=1")
    return s3


def test_copy_keeps_metadata_by_default(s3b) -> None:
    out = s3b.copy_object(Bucket=DST, Key="copy", CopySource={"Bucket": SRC, "Key": "doc"})
    assert out["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    assert out["CopyObjectResult"]["LastModified"]
    got = s3b.get_object(Bucket=DST, Key="copy")
    assert got["Body"].read() == b"payload"
    assert (got["ContentType"], got["CacheControl"]) == ("text/plain", "no-store")
    assert got["Metadata"] == {"origin": "src"}
    assert got["TagCount"] == 1
    # the source is untouched
    assert s3b.get_object(Bucket=SRC, Key="doc")["Body"].read() == b"payload"


def test_replace_directives(s3b) -> None:
    s3b.copy_object(Bucket=DST, Key="r", CopySource=f"{SRC}/doc", MetadataDirective="REPLACE",
                    ContentType="application/x-new", Metadata={"fresh": "yes"},
                    TaggingDirective="REPLACE", Tagging="b=2&c=3")
    head = s3b.head_object(Bucket=DST, Key="r")
    assert head["ContentType"] == "application/x-new"
    assert "CacheControl" not in head
    assert head["Metadata"] == {"fresh": "yes"}
    tags = s3b.get_object(Bucket=DST, Key="r")["TagCount"]
    assert tags == 2


def test_url_encoded_source_and_odd_keys(s3b) -> None:
    key = "dir/with space/ünï?&=+%.txt"
    s3b.put_object(Bucket=SRC, Key=key, Body=b"odd")
    s3b.copy_object(Bucket=DST, Key="../out//x", CopySource={"Bucket": SRC, "Key": key})
    assert s3b.get_object(Bucket=DST, Key="../out//x")["Body"].read() == b"odd"


def test_copy_of_a_version(s3b) -> None:
    s3b.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3b.put_object(Bucket=SRC, Key="v", Body=b"first")["VersionId"]
    s3b.put_object(Bucket=SRC, Key="v", Body=b"second")
    out = s3b.copy_object(Bucket=DST, Key="old", CopySource={"Bucket": SRC, "Key": "v",
                                                             "VersionId": v1})
    assert out["CopySourceVersionId"] == v1
    assert s3b.get_object(Bucket=DST, Key="old")["Body"].read() == b"first"
    marker = s3b.delete_object(Bucket=SRC, Key="v")["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3b.copy_object(Bucket=DST, Key="m", CopySource={"Bucket": SRC, "Key": "v",
                                                         "VersionId": marker})
    assert error_of(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3b.copy_object(Bucket=DST, Key="m", CopySource={"Bucket": SRC, "Key": "v"})
    assert error_of(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError):
        s3b.head_object(Bucket=DST, Key="m")


def test_copy_source_conditions(s3b) -> None:
    head = s3b.head_object(Bucket=SRC, Key="doc")
    etag, modified = head["ETag"], head["LastModified"]
    hour = timedelta(hours=1)
    source = {"Bucket": SRC, "Key": "doc"}
    s3b.copy_object(Bucket=DST, Key="ok", CopySource=source, CopySourceIfMatch=etag,
                    CopySourceIfModifiedSince=modified - hour)
    failing = [
        {"CopySourceIfMatch": '"other"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": modified + hour},
        {"CopySourceIfUnmodifiedSince": modified - hour},
    ]
    for kwargs in failing:
        with pytest.raises(ClientError) as exc:
            s3b.copy_object(Bucket=DST, Key="no", CopySource=source, **kwargs)
        assert error_of(exc) == ("PreconditionFailed", 412), kwargs
    with pytest.raises(ClientError):
        s3b.head_object(Bucket=DST, Key="no")


def test_self_copy_rules(s3b) -> None:
    with pytest.raises(ClientError) as exc:
        s3b.copy_object(Bucket=SRC, Key="doc", CopySource={"Bucket": SRC, "Key": "doc"})
    assert error_of(exc) == ("InvalidRequest", 400)
    assert "copy an object to itself" in exc.value.response["Error"]["Message"]
    assert s3b.head_object(Bucket=SRC, Key="doc")["Metadata"] == {"origin": "src"}
    # changing the metadata makes it legal, and the bytes survive
    s3b.copy_object(Bucket=SRC, Key="doc", CopySource={"Bucket": SRC, "Key": "doc"},
                    MetadataDirective="REPLACE", Metadata={"origin": "rewritten"})
    got = s3b.get_object(Bucket=SRC, Key="doc")
    assert got["Metadata"] == {"origin": "rewritten"}
    assert got["Body"].read() == b"payload"
    s3b.copy_object(Bucket=SRC, Key="doc", CopySource={"Bucket": SRC, "Key": "doc"},
                    StorageClass="STANDARD_IA")
    assert s3b.head_object(Bucket=SRC, Key="doc")["StorageClass"] == "STANDARD_IA"


def test_copy_errors_change_nothing(s3b) -> None:
    cases = [
        ({"CopySource": {"Bucket": "nope", "Key": "doc"}}, ("NoSuchBucket", 404)),
        ({"CopySource": {"Bucket": SRC, "Key": "absent"}}, ("NoSuchKey", 404)),
        ({"CopySource": f"{SRC}/doc", "MetadataDirective": "MERGE"}, ("InvalidArgument", 400)),
        ({"CopySource": f"{SRC}/doc", "TaggingDirective": "MERGE"}, ("InvalidArgument", 400)),
        ({"CopySource": "just-a-bucket"}, ("InvalidArgument", 400)),
        ({"CopySource": f"{SRC}/doc", "StorageClass": "FAST"}, ("InvalidStorageClass", 400)),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ClientError) as exc:
            s3b.copy_object(Bucket=DST, Key="never", **kwargs)
        assert error_of(exc) == expected, kwargs
    with pytest.raises(ClientError) as exc:
        s3b.copy_object(Bucket="no-dest", Key="never", CopySource=f"{SRC}/doc")
    assert error_of(exc) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError):
        s3b.head_object(Bucket=DST, Key="never")
