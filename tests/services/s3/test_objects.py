"""PutObject, GetObject, HeadObject, DeleteObject through boto3 against a real agent."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of

BUCKET = "objects"


def test_put_get_head_delete_round_trip(s3b) -> None:
    body = b"hello, zeronode\n" * 1000
    put = s3b.put_object(Bucket=BUCKET, Key="greeting.txt", Body=body)
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ETag"] == etag
    assert "VersionId" not in put  # never-versioned bucket: no x-amz-version-id

    got = s3b.get_object(Bucket=BUCKET, Key="greeting.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == etag
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "binary/octet-stream"
    assert got["AcceptRanges"] == "bytes"
    assert abs(got["LastModified"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200

    head = s3b.head_object(Bucket=BUCKET, Key="greeting.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == etag
    assert "VersionId" not in head

    deleted = s3b.delete_object(Bucket=BUCKET, Key="greeting.txt")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "DeleteMarker" not in deleted
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="greeting.txt")
    assert error_of(exc) == ("NoSuchKey", 404)
    assert exc.value.response["Error"]["Key"] == "greeting.txt"
    with pytest.raises(ClientError) as exc:
        s3b.head_object(Bucket=BUCKET, Key="greeting.txt")
    assert error_of(exc) == ("404", 404)
    # deleting what is not there is still 204
    assert s3b.delete_object(Bucket=BUCKET, Key="greeting.txt")["ResponseMetadata"][
        "HTTPStatusCode"] == 204


def test_empty_object_and_overwrite(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="k", Body=b"")
    got = s3b.get_object(Bucket=BUCKET, Key="k")
    assert got["Body"].read() == b""
    assert got["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'
    s3b.put_object(Bucket=BUCKET, Key="k", Body=b"second")
    assert s3b.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"second"


def test_content_headers_and_metadata_round_trip_exactly(s3b) -> None:
    expires = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    s3b.put_object(
        Bucket=BUCKET, Key="page.html", Body=b"<p>hi</p>",
        ContentType="text/html; charset=utf-8", ContentEncoding="identity",
        ContentDisposition='attachment; filename="page.html"', CacheControl="max-age=60, public",
        ContentLanguage="en-GB", Expires=expires,
        Metadata={"Author": "Ada", "x-empty": "", "spaces": "a  b"},
    )
    for call in (s3b.get_object, s3b.head_object):
        out = call(Bucket=BUCKET, Key="page.html")
        assert out["ContentType"] == "text/html; charset=utf-8"
        assert out["ContentEncoding"] == "identity"
        assert out["ContentDisposition"] == 'attachment; filename="page.html"'
        assert out["CacheControl"] == "max-age=60, public"
        assert out["ContentLanguage"] == "en-GB"
        assert out["Expires"] == expires
        # S3 lower-cases metadata names; values come back as sent
        assert out["Metadata"] == {"author": "Ada", "x-empty": "", "spaces": "a  b"}


def test_response_header_overrides(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="o", Body=b"x", ContentType="text/plain")
    got = s3b.get_object(
        Bucket=BUCKET, Key="o", ResponseContentType="application/json",
        ResponseContentDisposition="inline", ResponseCacheControl="no-cache",
        ResponseContentEncoding="gzip", ResponseContentLanguage="fr",
        ResponseExpires=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentEncoding"] == "gzip"
    assert got["ContentLanguage"] == "fr"
    assert got["Expires"] == datetime(2030, 1, 1, tzinfo=UTC)
    # the stored object is unchanged
    assert s3b.head_object(Bucket=BUCKET, Key="o")["ContentType"] == "text/plain"


def test_keys_are_never_paths(s3b, agent) -> None:
    odd = [
        "../../x", "a//b", "/leading", "trailing/", "./dot", "..", "ctl\x01\x1f\x7fchars",
        "tab\tand\nnewline", "%2F-literal", "sp ace+plus?q=1#frag", "ünïcødé/日本語",
        "é" * 512,  # 1024 bytes of UTF-8
    ]
    for i, key in enumerate(odd):
        s3b.put_object(Bucket=BUCKET, Key=key, Body=f"body {i}".encode())
    for i, key in enumerate(odd):
        assert s3b.get_object(Bucket=BUCKET, Key=key)["Body"].read() == f"body {i}".encode()
        assert s3b.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(f"body {i}")
    # nothing escaped the data dir: no file named like a key exists anywhere near it
    data_dir = agent.data_dir
    assert not (data_dir.parent / "x").exists()
    assert not any(p.name in ("x", "leading", "b") for p in data_dir.rglob("*"))
    for key in odd:
        s3b.delete_object(Bucket=BUCKET, Key=key)
        with pytest.raises(ClientError):
            s3b.head_object(Bucket=BUCKET, Key=key)


def test_ranges(s3b) -> None:
    body = bytes(range(256)) * 4
    s3b.put_object(Bucket=BUCKET, Key="r", Body=body)
    cases = {
        "bytes=0-9": (body[:10], "bytes 0-9/1024"),
        "bytes=1000-": (body[1000:], "bytes 1000-1023/1024"),
        "bytes=-24": (body[-24:], "bytes 1000-1023/1024"),
        "bytes=1020-5000": (body[1020:], "bytes 1020-1023/1024"),
    }
    for header, (expected, content_range) in cases.items():
        got = s3b.get_object(Bucket=BUCKET, Key="r", Range=header)
        assert got["Body"].read() == expected, header
        assert got["ContentRange"] == content_range
        assert got["ContentLength"] == len(expected)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    # several ranges: S3 ignores the header and answers the whole object
    got = s3b.get_object(Bucket=BUCKET, Key="r", Range="bytes=0-1,5-6")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == body
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="r", Range="bytes=1024-")
    assert error_of(exc) == ("InvalidRange", 416)
    assert exc.value.response["Error"]["ActualObjectSize"] == "1024"
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes */1024"
    # HEAD answers a range too
    head = s3b.head_object(Bucket=BUCKET, Key="r", Range="bytes=0-3")
    assert head["ContentLength"] == 4


def test_part_number_on_a_single_put_object(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="p", Body=b"0123456789")
    got = s3b.get_object(Bucket=BUCKET, Key="p", PartNumber=1)
    assert got["Body"].read() == b"0123456789"
    assert got["ContentRange"] == "bytes 0-9/10"
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="p", PartNumber=2)
    assert error_of(exc) == ("InvalidPartNumber", 416)


def test_conditional_reads(s3b) -> None:
    put = s3b.put_object(Bucket=BUCKET, Key="c", Body=b"data")
    etag = put["ETag"]
    modified = s3b.head_object(Bucket=BUCKET, Key="c")["LastModified"]
    hour = timedelta(hours=1)

    assert s3b.get_object(Bucket=BUCKET, Key="c", IfMatch=etag)["Body"].read() == b"data"
    assert s3b.get_object(Bucket=BUCKET, Key="c", IfNoneMatch='"nope"')["Body"].read() == b"data"
    s3b.get_object(Bucket=BUCKET, Key="c", IfModifiedSince=modified - hour)
    s3b.get_object(Bucket=BUCKET, Key="c", IfUnmodifiedSince=modified + hour)

    failing = [
        ({"IfMatch": '"nope"'}, ("PreconditionFailed", 412)),
        ({"IfUnmodifiedSince": modified - hour}, ("PreconditionFailed", 412)),
        ({"IfNoneMatch": etag}, ("304", 304)),
        ({"IfModifiedSince": modified}, ("304", 304)),  # Last-Modified echoed back
        ({"IfModifiedSince": modified + hour}, ("304", 304)),
    ]
    for kwargs, expected in failing:
        with pytest.raises(ClientError) as exc:
            s3b.get_object(Bucket=BUCKET, Key="c", **kwargs)
        assert error_of(exc) == expected, kwargs
        with pytest.raises(ClientError) as exc:
            s3b.head_object(Bucket=BUCKET, Key="c", **kwargs)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == expected[1]
    # the 304 carries the ETag, as S3's does
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="c", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["etag"] == etag
    # If-Match true overrides a failing If-Unmodified-Since (S3's documented precedence)
    s3b.get_object(Bucket=BUCKET, Key="c", IfMatch=etag, IfUnmodifiedSince=modified - hour)


def test_if_none_match_star_on_put(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as exc:
        s3b.put_object(Bucket=BUCKET, Key="once", Body=b"second", IfNoneMatch="*")
    assert error_of(exc) == ("PreconditionFailed", 412)
    assert s3b.get_object(Bucket=BUCKET, Key="once")["Body"].read() == b"first"
    # If-Match on PUT: the current ETag must match
    etag = s3b.head_object(Bucket=BUCKET, Key="once")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3b.put_object(Bucket=BUCKET, Key="once", Body=b"third", IfMatch='"0000"')
    assert error_of(exc) == ("PreconditionFailed", 412)
    s3b.put_object(Bucket=BUCKET, Key="once", Body=b"third", IfMatch=etag)
    assert s3b.get_object(Bucket=BUCKET, Key="once")["Body"].read() == b"third"
    with pytest.raises(ClientError) as exc:
        s3b.put_object(Bucket=BUCKET, Key="absent", Body=b"x", IfMatch=etag)
    assert error_of(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        s3b.put_object(Bucket=BUCKET, Key="absent", Body=b"x", IfNoneMatch=etag)
    assert error_of(exc) == ("NotImplemented", 501)
    with pytest.raises(ClientError):
        s3b.head_object(Bucket=BUCKET, Key="absent")


def test_storage_class_and_tag_count(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="ia", Body=b"x", StorageClass="STANDARD_IA",
                   Tagging="team=core&tier=2")
    head = s3b.head_object(Bucket=BUCKET, Key="ia")
    assert head["StorageClass"] == "STANDARD_IA"
    got = s3b.get_object(Bucket=BUCKET, Key="ia")
    assert got["TagCount"] == 2
    s3b.put_object(Bucket=BUCKET, Key="std", Body=b"x")
    assert "StorageClass" not in s3b.head_object(Bucket=BUCKET, Key="std")
    s3b.put_object(Bucket=BUCKET, Key="cold", Body=b"x", StorageClass="GLACIER")
    assert s3b.head_object(Bucket=BUCKET, Key="cold")["StorageClass"] == "GLACIER"
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="cold")
    assert error_of(exc) == ("InvalidObjectState", 403)


def test_missing_bucket(s3) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="no-such", Key="k", Body=b"x")
    assert error_of(exc) == ("NoSuchBucket", 404)
    for call in (s3.get_object, s3.delete_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket="no-such", Key="k")
        assert error_of(exc) == ("NoSuchBucket", 404)
