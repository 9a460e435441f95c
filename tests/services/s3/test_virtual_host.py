"""Virtual-hosted S3 (``bucket.<domain>``) on a node started with ``--domain``.

boto3 is used exactly as a user would, ``addressing_style="virtual"`` and the endpoint
``http://s3.zeronode.test:PORT``: requests go to ``http://<bucket>.s3.zeronode.test:PORT/<key>``
with that Host header. Only name resolution is arranged by the test (``*.zeronode.test`` has no
DNS): urllib3's connect is pointed at 127.0.0.1, so every byte on the wire is the real thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import urllib3
import urllib3.util.connection
from botocore.config import Config

from tests.services.s3.helpers import raw_request

DOMAIN = "s3.zeronode.test"


@pytest.fixture
def resolve_test_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    connect = urllib3.util.connection.create_connection

    def to_loopback(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        if host == DOMAIN or host.endswith("." + DOMAIN):
            host = "127.0.0.1"
        return connect((host, port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", to_loopback)
    yield


@pytest.fixture
def node(agent_factory: Any, resolve_test_domain: None) -> Any:
    return agent_factory(args=["--domain", DOMAIN])


def client(node: Any, style: str = "virtual", signature_version: str | None = "s3v4") -> Any:
    return boto3.client(
        "s3", endpoint_url=f"http://{DOMAIN}:{node.port}", region_name="us-east-1",
        aws_access_key_id=node.credentials.access_key_id,
        aws_secret_access_key=node.credentials.secret_access_key,
        config=Config(s3={"addressing_style": style}, signature_version=signature_version,
                      retries={"max_attempts": 1}),
    )


def test_virtual_hosted_bucket_and_object_operations(node: Any) -> None:
    s3 = client(node)
    seen: list[tuple[str, str]] = []
    s3.meta.events.register("before-send.s3.*",
                            lambda request, **_: seen.append((request.url, request.headers["host"])))
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="2024/a b.jpg", Body=b"jpeg")
    assert seen[0][0] == f"http://photos.{DOMAIN}:{node.port}/"
    assert seen[1][0] == f"http://photos.{DOMAIN}:{node.port}/2024/a%20b.jpg"

    assert s3.get_object(Bucket="photos", Key="2024/a b.jpg")["Body"].read() == b"jpeg"
    listed = s3.list_objects_v2(Bucket="photos", Prefix="2024/")
    assert [o["Key"] for o in listed["Contents"]] == ["2024/a b.jpg"]
    s3.put_bucket_tagging(Bucket="photos", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_bucket_tagging(Bucket="photos")["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert s3.get_bucket_location(Bucket="photos")["LocationConstraint"] is None

    # the same node still serves path style, on the domain and on its IP
    assert client(node, style="path").head_object(Bucket="photos", Key="2024/a b.jpg")[
        "ContentLength"] == 4
    assert [b["Name"] for b in node.boto3_client("s3").list_buckets()["Buckets"]] == ["photos"]


def test_virtual_hosted_presigned_urls(node: Any) -> None:
    client(node).create_bucket(Bucket="shared")
    for signature_version in (None, "s3v4"):  # boto3's default presigns with SigV2
        s3 = client(node, signature_version=signature_version)
        key = f"from-{signature_version or 'sigv2'}.txt"
        put = s3.generate_presigned_url("put_object", Params={"Bucket": "shared", "Key": key})
        assert put.startswith(f"http://shared.{DOMAIN}:{node.port}/{key}?")
        assert raw_request("PUT", put, body=b"hi").status == 200
        get = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": key})
        assert raw_request("GET", get).data == b"hi"
        listing = s3.generate_presigned_url("list_objects", Params={"Bucket": "shared"})
        assert raw_request("GET", listing).status == 200
        tampered = get.replace(f"/{key}?", "/other.txt?")
        assert raw_request("GET", tampered).status == 403


def test_virtual_hosted_cors_preflight(node: Any) -> None:
    s3 = client(node)
    s3.create_bucket(Bucket="site")
    s3.put_bucket_cors(Bucket="site", CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET"]}]})
    asked = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    r = raw_request("OPTIONS", f"http://site.{DOMAIN}:{node.port}/index.html", headers=asked)
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    r = raw_request("OPTIONS", f"http://other.{DOMAIN}:{node.port}/index.html", headers=asked)
    assert r.status == 403 and b"Bucket not found" in r.data
