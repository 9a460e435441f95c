"""S3 SigV2 (presigned query and ``Authorization: AWS``), checked against botocore's signers.

botocore's ``HmacV1QueryAuth`` is what ``generate_presigned_url`` uses by default in
us-east-1, and ``HmacV1Auth`` what ``signature_version="s3"`` clients send: every request
here is signed by them, so a verifier that agrees with them agrees with real clients.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.aws import signing
from zeronode.aws import sigv2
from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers, HttpRequest
from zeronode.aws.routing import s3_path_style
from zeronode.aws.sigv4 import UNSIGNED_PAYLOAD

NOW = signing.SIGNED_AT
CREDENTIALS = Credentials(signing.ACCESS_KEY, signing.SECRET_KEY)


def _at(moment: dt.datetime) -> Any:
    return mock.patch("time.time", return_value=moment.timestamp())


def presigned(method: str, url: str, *, headers: dict[str, str] | None = None,
              expires: int = 3600) -> HttpRequest:
    """A request to the URL botocore's HmacV1QueryAuth presigns (signed headers not sent)."""
    request = AWSRequest(method=method, url=url, headers=headers or {})
    with _at(NOW):
        HmacV1QueryAuth(CREDENTIALS, expires=expires).add_auth(request)
    return signing.from_url(method, request.url)


def header_signed(method: str, url: str, *, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> HttpRequest:
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    with _at(NOW):
        HmacV1Auth(CREDENTIALS).add_auth(request)
    return signing.from_prepared(request.prepare())[0]


def check(req: HttpRequest, *, now: dt.datetime = NOW, path: str | None = None) -> Any:
    info = sigv2.parse_sigv2(req)
    assert info is not None
    return sigv2.verify(req, info, secret_for=signing.KEYS.get, now=now,
                        path=req.raw_path if path is None else path, region="us-east-1")


def refused(req: HttpRequest, **kwargs: Any) -> AWSError:
    with pytest.raises(AWSError) as e:
        check(req, **kwargs)
    return e.value


URL = f"{signing.ENDPOINT}/bkt/photos/a%20b%2Bc.jpg"


# -- accepted --------------------------------------------------------------------------------


def test_presigned_get_verifies() -> None:
    auth = check(presigned("GET", URL))
    assert (auth.access_key_id, auth.region, auth.presigned) == (signing.ACCESS_KEY, "us-east-1", True)
    assert auth.payload_hash == UNSIGNED_PAYLOAD


def test_presigned_with_subresources_and_overrides() -> None:
    url = f"{URL}?versionId=0123&response-content-type=text%2Fplain&tagging&unsigned=1"
    check(presigned("GET", url))


def test_presigned_put_with_content_type_and_metadata() -> None:
    # botocore moves the signed headers into the query; Content-Type must still be sent.
    req = presigned("PUT", URL, headers={"Content-Type": "text/plain", "x-amz-meta-who": "me"})
    assert "x-amz-meta-who=me" in req.query_string
    sent = dataclasses.replace(req, headers=Headers([*req.headers.items(),
                                                     ("content-type", "text/plain")]))
    check(sent)


def test_header_auth_verifies_with_amz_headers() -> None:
    req = header_signed("PUT", f"{URL}?uploadId=abc&partNumber=2", headers={
        "Content-Type": "image/jpeg", "Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww==",
        "x-amz-meta-Colour": "blue", "x-amz-checksum-crc32": "AAAAAA==",
    }, body=b"hello world")
    auth = check(req)
    assert (auth.presigned, auth.payload_hash) == (False, UNSIGNED_PAYLOAD)


def test_botocore_client_requests_verify() -> None:
    client = signing.client("s3", signature_version="s3")
    calls = [
        lambda c: c.list_objects(Bucket="bkt", Prefix="a/"),
        lambda c: c.put_object(Bucket="bkt", Key="k é", Body=b"x", Metadata={"m": "v"}),
        lambda c: c.create_multipart_upload(Bucket="bkt", Key="big"),
        lambda c: c.put_bucket_tagging(Bucket="bkt", Tagging={"TagSet": []}),
    ]
    for call in calls:
        with _at(NOW):
            try:
                call(client)
            except signing._Captured as captured:
                check(signing.from_prepared(captured.request)[0])
            else:
                raise AssertionError("nothing sent")


def test_virtual_hosted_requests_sign_the_bucket_in_the_path() -> None:
    client = boto3.client(
        "s3", endpoint_url="http://s3.zeronode.test:9000", region_name="us-east-1",
        aws_access_key_id=signing.ACCESS_KEY, aws_secret_access_key=signing.SECRET_KEY,
        config=Config(signature_version="s3", s3={"addressing_style": "virtual"}),
    )
    url = client.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "a/b"})
    req = signing.from_url("GET", url)
    assert req.headers.get("host") == "bkt.s3.zeronode.test:9000"
    check(req, path=s3_path_style(req, "s3.zeronode.test"))

    root = signing.from_url("GET", client.generate_presigned_url("list_objects",
                                                               Params={"Bucket": "bkt"}))
    assert root.raw_path == "/"
    check(root, path=s3_path_style(root, "s3.zeronode.test"))


def test_a_bucket_is_signed_with_or_without_its_slash() -> None:
    assert sigv2.resource_paths("/bkt") == ("/bkt/", "/bkt")
    assert sigv2.resource_paths("/bkt/") == ("/bkt/",)
    assert sigv2.resource_paths("/bkt/k") == ("/bkt/k",)
    assert sigv2.resource_paths("/") == ("/",)
    for path in ("/bkt", "/bkt/"):
        check(header_signed("GET", f"{signing.ENDPOINT}{path}"), path="/bkt")


def test_canonical_resource() -> None:
    assert sigv2.canonical_resource("/b/k", "uploads&prefix=x") == "/b/k?uploads"
    assert sigv2.canonical_resource("/b/k", "versionId=2&acl=&Signature=s") == "/b/k?acl=&versionId=2"
    assert sigv2.canonical_resource("/b/k", "response-content-type=a%2Fb") == (
        "/b/k?response-content-type=a/b")
    assert sigv2.canonical_resource("/b/", "") == "/b/"


def test_signed_content_sha256_is_honoured() -> None:
    digest = "ab" * 32
    req = header_signed("PUT", URL, headers={"x-amz-content-sha256": digest})
    assert check(req).payload_hash == digest
    streaming = header_signed("PUT", URL, headers={
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
    assert refused(streaming).code == "InvalidRequest"


# -- refused ---------------------------------------------------------------------------------


def test_tampered_requests_do_not_match() -> None:
    req = presigned("GET", f"{URL}?versionId=1")
    for tampered in (
        dataclasses.replace(req, method="DELETE"),
        dataclasses.replace(req, raw_path="/bkt/photos/other.jpg"),
        dataclasses.replace(req, query_string=req.query_string.replace("versionId=1", "versionId=2")),
        dataclasses.replace(req, query_string=req.query_string.replace("Expires=", "Expires=1")),
    ):
        err = refused(tampered, now=NOW - dt.timedelta(days=1))
        assert (err.code, err.status) == ("SignatureDoesNotMatch", 403)
    err = refused(dataclasses.replace(req, method="DELETE"))
    assert err.extra["AWSAccessKeyId"] == signing.ACCESS_KEY
    assert err.extra["StringToSign"].startswith("DELETE\n\n\n")
    assert err.extra["SignatureProvided"] == sigv2.parse_sigv2(req).signature  # type: ignore[union-attr]


def test_presigned_put_with_another_content_type_does_not_match() -> None:
    req = presigned("PUT", URL, headers={"Content-Type": "text/plain"})
    for sent in ((("content-type", "text/html"),), ()):
        wrong = dataclasses.replace(req, headers=Headers([*req.headers.items(), *sent]))
        assert refused(wrong).code == "SignatureDoesNotMatch"


def test_added_amz_header_does_not_match() -> None:
    req = presigned("PUT", URL)
    extra = dataclasses.replace(req, headers=Headers([*req.headers.items(), ("x-amz-acl", "public-read")]))
    assert refused(extra).code == "SignatureDoesNotMatch"


def test_expired_url() -> None:
    req = presigned("GET", URL, expires=60)
    check(req, now=NOW + dt.timedelta(seconds=60))
    err = refused(req, now=NOW + dt.timedelta(seconds=61))
    assert (err.code, err.status, err.message) == ("AccessDenied", 403, "Request has expired")
    assert err.extra["Expires"] == "2026-01-15T12:01:00Z"
    assert err.extra["ServerTime"] == "2026-01-15T12:01:01Z"


def test_unknown_key() -> None:
    req = presigned("GET", URL)
    with pytest.raises(AWSError) as e:
        sigv2.verify(req, sigv2.parse_sigv2(req), secret_for={}.get, now=NOW,  # type: ignore[arg-type]
                     path=req.raw_path, region="us-east-1")
    assert (e.value.code, e.value.status) == ("InvalidAccessKeyId", 403)


def test_header_auth_clock_skew() -> None:
    req = header_signed("GET", URL)
    check(req, now=NOW + dt.timedelta(minutes=15))
    err = refused(req, now=NOW + dt.timedelta(minutes=16))
    assert (err.code, err.status) == ("RequestTimeTooSkewed", 403)
    undated = dataclasses.replace(req, headers=Headers(
        [(k, v) for k, v in req.headers.items() if k != "date"]))
    assert refused(undated).code == "AccessDenied"


def test_parse() -> None:
    def request(query: str = "", auth: str | None = None) -> HttpRequest:
        headers = [("host", "h")] + ([("authorization", auth)] if auth else [])
        return HttpRequest("GET", "/b/k", "/b/k", query, Headers(headers))

    assert sigv2.parse_sigv2(request("prefix=a")) is None
    assert sigv2.parse_sigv2(request(auth="AWS4-HMAC-SHA256 Credential=x")) is None
    assert sigv2.parse_sigv2(request("X-Amz-Credential=a&Signature=b")) is None
    assert sigv2.parse_sigv2(request("AWSAccessKeyId=a&Signature=b&SignatureVersion=2")) is None
    info = sigv2.parse_sigv2(request(auth="AWS AKID:c2ln"))
    assert info == sigv2.SigV2Info("AKID", "c2ln") and not info.presigned
    for bad in ("AWS AKID", "AWS :sig", "AWS AKID:"):
        with pytest.raises(AWSError) as e:
            sigv2.parse_sigv2(request(auth=bad))
        assert (e.value.code, e.value.extra["ArgumentName"]) == ("InvalidArgument", "Authorization")
    with pytest.raises(AWSError) as e:
        sigv2.parse_sigv2(request("AWSAccessKeyId=AKID&Signature=x"))
    assert (e.value.code, e.value.status) == ("AccessDenied", 403)
    bad_expiry = request("AWSAccessKeyId=AKID&Signature=x&Expires=soon")
    assert refused(bad_expiry).message == "Invalid date (should be seconds since epoch): soon"
