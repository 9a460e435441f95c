"""Refused object requests: S3's code and status, and proof that nothing changed."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of

BUCKET = "strict"


@pytest.fixture
def s3b(s3):
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="kept", Body=b"kept", Metadata={"v": "1"})
    return s3


def assert_unchanged(client) -> None:
    got = client.get_object(Bucket=BUCKET, Key="kept")
    assert got["Body"].read() == b"kept"
    assert got["Metadata"] == {"v": "1"}


def test_key_too_long(s3b) -> None:
    long_key = "k" * 1025
    calls = [
        lambda: s3b.put_object(Bucket=BUCKET, Key=long_key, Body=b"x"),
        lambda: s3b.get_object(Bucket=BUCKET, Key=long_key),
        lambda: s3b.delete_object(Bucket=BUCKET, Key=long_key),
        lambda: s3b.copy_object(Bucket=BUCKET, Key=long_key, CopySource=f"{BUCKET}/kept"),
        lambda: s3b.put_object(Bucket=BUCKET, Key="é" * 513, Body=b"x"),  # 1026 bytes
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("KeyTooLongError", 400)
    assert_unchanged(s3b)


@pytest.mark.parametrize("key", ["kept", "new"])
def test_bad_put_headers_change_nothing(s3b, key: str) -> None:
    cases = [
        ({"Metadata": {"big": "x" * 2100}}, ("MetadataTooLarge", 400)),
        ({"StorageClass": "SUPER_FAST"}, ("InvalidStorageClass", 400)),
        ({"Tagging": "a=1&a=2"}, ("InvalidArgument", 400)),
        ({"Tagging": "&".join(f"k{i}=v" for i in range(11))}, ("BadRequest", 400)),
        ({"Tagging": "aws:reserved=1"}, ("InvalidTag", 400)),
        ({"ChecksumSHA512": base64.b64encode(bytes(64)).decode()}, ("InvalidRequest", 400)),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ClientError) as exc:
            s3b.put_object(Bucket=BUCKET, Key=key, Body=b"replacement", **kwargs)
        assert error_of(exc) == expected, kwargs
    assert_unchanged(s3b)
    if key == "new":
        with pytest.raises(ClientError):
            s3b.head_object(Bucket=BUCKET, Key="new")


def test_delete_objects_malformed_requests(s3b) -> None:
    for objects in ([], [{"Key": f"k{i}"} for i in range(1001)]):
        with pytest.raises(ClientError) as exc:
            s3b.delete_objects(Bucket=BUCKET, Delete={"Objects": objects})
        assert error_of(exc) == ("MalformedXML", 400)
    with pytest.raises(ClientError) as exc:
        s3b.delete_objects(Bucket="no-such-bucket", Delete={"Objects": [{"Key": "kept"}]})
    assert error_of(exc) == ("NoSuchBucket", 404)
    assert_unchanged(s3b)


def test_delete_objects_needs_an_integrity_header(s3b) -> None:
    def drop_checksums(request, **_):
        for name in list(request.headers.keys()):
            if name.lower() == "content-md5" or name.lower().startswith("x-amz-checksum-"):
                del request.headers[name]

    s3b.meta.events.register("before-sign.s3.DeleteObjects", drop_checksums)
    with pytest.raises(ClientError) as exc:
        s3b.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "kept"}]})
    assert error_of(exc) == ("InvalidRequest", 400)
    assert_unchanged(s3b)
