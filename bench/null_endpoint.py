"""A do-nothing S3 endpoint: the ceiling of the boto3 client itself.

    python bench/null_endpoint.py --port P

It answers every request the benchmark sends with a valid-looking S3 response and stores no
bytes: PUT reads and discards the body and answers 200 with an ETag; GET answers with zeros of
the size last PUT under that key (4 KiB if none), ranges included; multipart uploads only add
up part sizes; ListObjectsV2 pages over the keys PUT so far (prefix, max-keys, start-after and
continuation tokens; no delimiter). No signature is checked.

One asyncio loop on one thread, HTTP/1.1 keep-alive parsed by hand: a request costs the server a
few tens of microseconds, so the client is always the bottleneck. The benchmark measures this
process's CPU like any other target's, which shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import signal
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote
from xml.sax.saxutils import escape

DEFAULT_SIZE = 4096
BLOCK = 1 << 20
ZEROS = bytes(BLOCK)
ETAG = '"5d41402abc4b2a76b9719d911017c592"'
LAST_MODIFIED = "2025-01-01T00:00:00.000Z"
LAST_MODIFIED_HTTP = "Wed, 01 Jan 2025 00:00:00 GMT"
REASONS = {200: "OK", 204: "No Content", 206: "Partial Content", 400: "Bad Request"}
Headers = dict[str, str]


@dataclass
class Request:
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: Headers


@dataclass
class Store:
    """Object sizes by key, and the bytes received so far by each open multipart upload."""

    sizes: dict[str, int] = field(default_factory=dict)
    uploads: dict[str, int] = field(default_factory=dict)
    upload_ids: itertools.count[int] = field(default_factory=itertools.count)
    _sorted: list[str] | None = None

    def put(self, key: str, size: int) -> None:
        if key not in self.sizes:
            self._sorted = None
        self.sizes[key] = size

    def sorted_keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.sizes)
        return self._sorted


async def serve(host: str, port: int) -> None:
    store = Store()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_connection(store, reader, writer)

    server = await asyncio.start_server(on_connection, host, port, limit=BLOCK)
    async with server:
        await stopping.wait()


async def handle_connection(
    store: Store, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            request = parse_head(await reader.readuntil(b"\r\n\r\n"))
            if request.headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            size = await discard_body(reader, int(request.headers.get("content-length", "0")))
            await respond(store, request, size, writer)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def parse_head(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    path, _, query = target.partition("?")
    bucket, _, key = path[1:].partition("/")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    params = {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}
    return Request(method, unquote(bucket), unquote(key), params, headers)


async def discard_body(reader: asyncio.StreamReader, length: int) -> int:
    remaining = length
    while remaining:
        chunk = await reader.read(min(remaining, BLOCK))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", remaining)
        remaining -= len(chunk)
    return length


async def respond(
    store: Store, request: Request, body_size: int, writer: asyncio.StreamWriter
) -> None:
    method, key, query = request.method, request.key, request.query
    if method == "GET" and key:
        await send_object(store, request, writer)
        return
    if method == "GET" and request.bucket:
        send(writer, 200, {}, list_objects(store, query).encode())
    elif method == "HEAD" and key:
        size = store.sizes.get(key, DEFAULT_SIZE)
        send(writer, 200, {"ETag": ETAG, "Content-Length": str(size)}, b"", head=True)
    elif method == "PUT" and "uploadId" in query:
        store.uploads[query["uploadId"]] = store.uploads.get(query["uploadId"], 0) + body_size
        send(writer, 200, {"ETag": ETAG}, b"")
    elif method == "PUT" and key:
        store.put(key, body_size)
        send(writer, 200, {"ETag": ETAG}, b"")
    elif method == "POST" and "uploads" in query:
        upload_id = str(next(store.upload_ids))
        store.uploads[upload_id] = 0
        send(writer, 200, {}, initiate_result(request, upload_id).encode())
    elif method == "POST" and "uploadId" in query:
        store.put(key, store.uploads.pop(query["uploadId"], 0))
        send(writer, 200, {}, complete_result(request).encode())
    elif method == "DELETE":
        send(writer, 204, {}, b"")
    else:  # CreateBucket, HeadBucket, ListBuckets, anything else: a bare 200
        send(writer, 200, {}, b"")
    await writer.drain()


def send(
    writer: asyncio.StreamWriter, status: int, headers: Headers, body: bytes, *, head: bool = False
) -> None:
    """Write a whole response; with ``head`` the headers are as given and no body follows."""
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", "x-amz-request-id: 0"]
    if not head:
        headers = {**headers, "Content-Length": str(len(body))}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


async def send_object(store: Store, request: Request, writer: asyncio.StreamWriter) -> None:
    size = store.sizes.get(request.key, DEFAULT_SIZE)
    first, last = parse_range(request.headers.get("range", ""), size)
    length = last - first + 1
    headers = {"ETag": ETAG, "Content-Length": str(length), "Last-Modified": LAST_MODIFIED_HTTP}
    status = 200
    if length != size:
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    send(writer, status, headers, b"", head=True)
    view = memoryview(ZEROS)
    while length:
        block = min(length, BLOCK)
        writer.write(view[:block])
        length -= block
        await writer.drain()


def parse_range(header: str, size: int) -> tuple[int, int]:
    """``bytes=a-b`` and ``bytes=a-`` (all that boto3's transfers send) else the whole object."""
    if not header.startswith("bytes="):
        return 0, size - 1
    first, _, last = header[len("bytes=") :].partition("-")
    return int(first), min(int(last), size - 1) if last else size - 1


def list_objects(store: Store, query: dict[str, str]) -> str:
    prefix = query.get("prefix", "")
    after = max(query.get("start-after", ""), query.get("continuation-token", ""))
    max_keys = int(query.get("max-keys", "1000"))
    keys = store.sorted_keys()
    start = max(bisect.bisect_right(keys, after), bisect.bisect_left(keys, prefix))
    window = keys[start : start + max_keys + 1]
    page = list(itertools.takewhile(lambda key: key.startswith(prefix), window))
    truncated = len(page) > max_keys
    page = page[:max_keys]
    url = query.get("encoding-type") == "url"
    name = (lambda k: quote(k, safe="/")) if url else escape
    contents = "".join(
        f"<Contents><Key>{name(key)}</Key><LastModified>{LAST_MODIFIED}</LastModified>"
        f"<ETag>&quot;{ETAG[1:-1]}&quot;</ETag><Size>{store.sizes[key]}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for key in page
    )
    token = (
        f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>" if truncated else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>'
        f"<Name>bench</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>"
        f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"
        f"{'<EncodingType>url</EncodingType>' if url else ''}{contents}{token}</ListBucketResult>"
    )


def initiate_result(request: Request, upload_id: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult>'
        f"<Bucket>{escape(request.bucket)}</Bucket><Key>{escape(request.key)}</Key>"
        f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
    )


def complete_result(request: Request) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult>'
        f"<Bucket>{escape(request.bucket)}</Bucket><Key>{escape(request.key)}</Key>"
        f"<ETag>&quot;{ETAG[1:-1]}-1&quot;</ETag></CompleteMultipartUploadResult>"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
