"""A lean S3 client for the big-object phases: what the server can do once the client is cheap.

Default boto3 spends more CPU per byte than the server (it SHA-256s and CRC32s every byte it
uploads and, on GET, checks the CRC the server returns), so on a small machine its MiB/s is
boto3's ceiling, not the server's. This client moves the same bytes with the same shape of
work — 8 MiB parts / ranges on 10 threads, one keep-alive connection per thread, like
s3transfer — but hashes nothing: requests are presigned URLs (SigV4 query auth,
``UNSIGNED-PAYLOAD``), a part's body is sent straight from an ``mmap`` of the file, and a
GET's body is read into one reused buffer and dropped. Boto3 only makes the control calls
(CreateMultipartUpload, presigning, CompleteMultipartUpload) and the HEAD that sizes the GET.
The server still does all of its own work: MD5 ETags, its default checksum, fsyncs.
"""

from __future__ import annotations

import http.client
import mmap
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PART_SIZE = 8 << 20  # s3transfer's default multipart_chunksize
THREADS = 10  # s3transfer's default max_concurrency
READ_BUFFER = 1 << 20


class RawClientError(Exception):
    """A request answered with an unexpected status or length."""


class _Connections:
    """One keep-alive HTTP connection per thread, all closed at the end."""

    def __init__(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._all:
            connection.close()


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _spans(size: int) -> Iterator[tuple[int, int, int]]:
    """(part number, offset, length) of each part of a ``size``-byte object."""
    for number, offset in enumerate(range(0, size, PART_SIZE), 1):
        yield number, offset, min(PART_SIZE, size - offset)


def _run_parallel(work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(work, items))


def upload(client: Any, endpoint: str, bucket: str, key: str, source: Path) -> None:
    """Multipart-upload ``source`` as ``key``: parts PUT in parallel from an mmap."""
    size = source.stat().st_size
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    connections = _Connections(endpoint)
    try:
        with source.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            view = memoryview(data)

            def put_part(span: tuple[int, int, int]) -> dict[str, Any]:
                number, offset, length = span
                url = client.generate_presigned_url(
                    "upload_part",
                    Params={"Bucket": bucket, "Key": key, "UploadId": upload_id,
                            "PartNumber": number},
                )  # fmt: skip
                connection = connections.get()
                connection.request("PUT", _path_of(url), body=view[offset : offset + length],
                                   headers={"Content-Length": str(length)})  # fmt: skip
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RawClientError(f"UploadPart {number}: HTTP {response.status}")
                return {"PartNumber": number, "ETag": response.getheader("ETag")}

            try:
                parts = _run_parallel(put_part, list(_spans(size)))
            finally:
                view.release()
    finally:
        connections.close()
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def download(client: Any, endpoint: str, bucket: str, key: str) -> int:
    """Ranged GETs of ``key`` in parallel, bodies read and dropped; returns the bytes read."""
    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    path = _path_of(url)
    connections = _Connections(endpoint)
    buffers = threading.local()

    def get_range(span: tuple[int, int, int]) -> int:
        _, offset, length = span
        buffer = getattr(buffers, "buffer", None)
        if buffer is None:
            buffer = buffers.buffer = bytearray(READ_BUFFER)
        connection = connections.get()
        connection.request("GET", path, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        response = connection.getresponse()
        if response.status != 206:
            raise RawClientError(f"GET {offset}+{length}: HTTP {response.status}")
        received = 0
        while count := response.readinto(buffer):
            received += count
        if received != length:
            raise RawClientError(f"GET {offset}+{length}: got {received} bytes")
        return received

    try:
        return sum(_run_parallel(get_range, list(_spans(size))))
    finally:
        connections.close()
