"""Uploads boto3 does not send over plain HTTP: aws-chunked trailers, bodies cut short.

Requests are signed by botocore's own ``S3SigV4Auth`` and sent over a raw socket, so the
test controls every byte (and can stop sending half-way).
"""

from __future__ import annotations

import hashlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of, s3_client
from zeronode.aws.checksums import checksum_of

BUCKET = "raw"


def signed(agent, method: str, key: str, body: bytes, headers: dict[str, str],
           trailer: str | None = None, query: str = "") -> AWSRequest:
    """A request signed by botocore; ``trailer`` makes it STREAMING-UNSIGNED-PAYLOAD-TRAILER."""
    url = f"{agent.endpoint}/{BUCKET}/{quote(key)}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    if trailer is not None:
        request.context["checksum"] = {"request_algorithm": {"in": "trailer",
                                                             "name": trailer}}
    creds = Credentials(agent.credentials.access_key_id, agent.credentials.secret_access_key)
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    return request


def send_raw(agent, request: AWSRequest, body: bytes, *, declared_length: int) -> bytes:
    """Send ``request`` with ``body`` (maybe shorter than declared); return the raw answer."""
    host, port = agent.endpoint.removeprefix("http://").split(":")
    path = request.url.split(f":{port}", 1)[1]
    lines = [f"{request.method} {path} HTTP/1.1", f"Host: {host}:{port}",
             f"Content-Length: {declared_length}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if len(body) < declared_length:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def chunked(data: bytes, trailer_name: str, trailer_value: str) -> bytes:
    out = b""
    for i in range(0, len(data), 7):
        piece = data[i:i + 7]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + f"0\r\n{trailer_name}:{trailer_value}\r\n\r\n".encode()


def blob_files(agent) -> list:
    """Finished blobs and temp files on the agent's (default, in-data-dir) disk."""
    return [p for p in agent.data_dir.rglob("*") if p.is_file()
            and {"blobs", "tmp"} & set(p.relative_to(agent.data_dir).parts)]


def test_trailer_checksums_are_verified_and_stored(agent) -> None:
    client = s3_client(agent)
    client.create_bucket(Bucket=BUCKET)
    data = b"streamed with a trailing checksum " * 3
    for algorithm in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        name = f"x-amz-checksum-{algorithm.lower()}"
        for key, value, ok in ((f"good-{algorithm}", checksum_of(algorithm, data), True),
                               (f"bad-{algorithm}", checksum_of(algorithm, b"other"), False)):
            body = chunked(data, name, value)
            request = signed(agent, "PUT", key, body, {
                "Content-Encoding": "aws-chunked", "x-amz-trailer": name,
                "x-amz-decoded-content-length": str(len(data)),
                "x-amz-sdk-checksum-algorithm": algorithm,
            }, trailer=name)
            assert request.headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            answer = send_raw(agent, request, body, declared_length=len(body))
            if ok:
                assert answer.startswith(b"HTTP/1.1 200"), answer
                assert f"{name}: {value}".encode() in answer
            else:
                assert answer.startswith(b"HTTP/1.1 400"), answer
                assert b"<Code>BadDigest</Code>" in answer
        got = client.get_object(Bucket=BUCKET, Key=f"good-{algorithm}", ChecksumMode="ENABLED")
        assert got["Body"].read() == data
        assert got[f"Checksum{algorithm}"] == checksum_of(algorithm, data)
        with pytest.raises(ClientError) as exc:
            client.head_object(Bucket=BUCKET, Key=f"bad-{algorithm}")
        assert error_of(exc) == ("404", 404)
    assert len(blob_files(agent)) == 5  # the refused uploads left nothing behind


MISMATCH_MESSAGE = (b"<Message>The provided 'x-amz-content-sha256' header does not match what"
                    b" was computed.</Message>")


def test_signed_body_that_does_not_match_its_sha256_stores_nothing(agent) -> None:
    """The body botocore signed (real SHA-256 over plain HTTP), one byte changed on the wire."""
    client = s3_client(agent)
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="existing", Body=b"old bytes")
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key="multi")["UploadId"]
    for size in (4096, 3 * 1024 * 1024 + 7):  # the small-body fast path and the pipeline
        data = bytes(range(256)) * (size // 256) + b"t" * (size % 256)
        tampered = data[:-1] + b"!"
        for key, query in (("fresh", ""), ("existing", ""),
                           ("multi", f"partNumber=1&uploadId={upload_id}")):
            request = signed(agent, "PUT", key, data, {}, query=query)
            assert request.headers["X-Amz-Content-SHA256"] == hashlib.sha256(data).hexdigest()
            answer = send_raw(agent, request, tampered, declared_length=len(data))
            assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
            assert b"<Code>XAmzContentSHA256Mismatch</Code>" in answer
            assert MISMATCH_MESSAGE in answer
            assert (b"<S3ComputedContentSHA256>" + hashlib.sha256(tampered).hexdigest().encode()
                    in answer)
    assert len(blob_files(agent)) == 1  # only "existing"'s: no new blob, no temp file
    with pytest.raises(ClientError) as exc:
        client.head_object(Bucket=BUCKET, Key="fresh")
    assert error_of(exc) == ("404", 404)
    assert client.get_object(Bucket=BUCKET, Key="existing")["Body"].read() == b"old bytes"
    assert client.list_parts(Bucket=BUCKET, Key="multi", UploadId=upload_id).get("Parts", []) == []

    # The same requests, untampered, are stored.
    data = b"s" * (3 * 1024 * 1024 + 7)
    for key, query in (("fresh", ""), ("multi", f"partNumber=1&uploadId={upload_id}")):
        request = signed(agent, "PUT", key, data, {}, query=query)
        answer = send_raw(agent, request, data, declared_length=len(data))
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert client.get_object(Bucket=BUCKET, Key="fresh")["Body"].read() == data
    parts = client.list_parts(Bucket=BUCKET, Key="multi", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(data))]


def test_truncated_upload_stores_nothing(agent) -> None:
    client = s3_client(agent)
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="existing", Body=b"old bytes")
    data = b"z" * 200_000
    for key in ("fresh", "existing"):
        request = signed(agent, "PUT", key, data, {})
        send_raw(agent, request, data[: len(data) // 2], declared_length=len(data))
    deadline = time.monotonic() + 5
    while len(blob_files(agent)) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(blob_files(agent)) == 1  # no temp file and no new blob left behind
    with pytest.raises(ClientError) as exc:
        client.head_object(Bucket=BUCKET, Key="fresh")
    assert error_of(exc) == ("404", 404)
    assert client.get_object(Bucket=BUCKET, Key="existing")["Body"].read() == b"old bytes"


def test_concurrent_if_none_match_puts_have_one_winner(agent) -> None:
    client = s3_client(agent, max_pool_connections=16)
    client.create_bucket(Bucket=BUCKET)

    def attempt(i: int) -> str:
        try:
            client.put_object(Bucket=BUCKET, Key="race", Body=f"writer {i}".encode(),
                              IfNoneMatch="*")
            return f"writer {i}"
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed"
            return ""

    with ThreadPoolExecutor(12) as pool:
        winners = [w for w in pool.map(attempt, range(12)) if w]
    assert len(winners) == 1
    assert client.get_object(Bucket=BUCKET, Key="race")["Body"].read() == winners[0].encode()
    assert len(blob_files(agent)) == 1  # the losers' blobs were deleted
