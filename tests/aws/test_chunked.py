"""aws-chunked decoding: AWS's worked examples, botocore's own encoder, and every failure."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import pytest
from botocore import httpchecksum
from hypothesis import given, settings
from hypothesis import strategies as st

from zeronode.aws import checksums, sigv4
from zeronode.aws.chunked import MAX_LINE, ChunkedDecoder, decode_stream, decoder_for
from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers, HttpRequest

# The S3 documentation's examples ("Signature Calculations for the Authorization Header:
# Transferring Payload in Multiple Chunks" and "...: Including Trailing Headers"): 64 KiB of
# "a", then 1 KiB, then the final chunk, signed with the documentation's example keys.
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_NOW = datetime(2013, 5, 24, 0, 0, 30, tzinfo=timezone.utc)
EXAMPLE_CHUNKS = [b"a" * 65536, b"a" * 1024]
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_CHUNK_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_CHUNK_SIGNATURES = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
]
DOC_TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


def example_request(mode: str, seed: str, *, trailer: bool) -> HttpRequest:
    signed = "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
    headers = [
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", mode),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
    ]
    if trailer:
        headers.append(("x-amz-trailer", "x-amz-checksum-crc32c"))
        signed += "x-amz-storage-class;x-amz-trailer"
    else:
        headers.append(("content-length", "66824"))
        signed = signed.replace("content-encoding;", "content-encoding;content-length;")
        signed += "x-amz-storage-class"
    headers.append(("authorization", f"AWS4-HMAC-SHA256 Credential={EXAMPLE_KEY_ID}/20130524/"
                    f"us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={seed}"))
    return HttpRequest("PUT", "/examplebucket/chunkObject.txt", "/examplebucket/chunkObject.txt",
                       "", Headers(headers))


def example_auth(mode: str = sigv4.STREAMING_SIGNED) -> tuple[HttpRequest, sigv4.AuthContext]:
    trailer = mode == sigv4.STREAMING_SIGNED_TRAILER
    req = example_request(mode, DOC_TRAILER_SEED if trailer else DOC_SEED, trailer=trailer)
    info = sigv4.parse_authorization(req)
    assert info is not None
    ctx = sigv4.verify(req, info, secret_for={EXAMPLE_KEY_ID: EXAMPLE_SECRET}.get,
                       payload_hash=sigv4.s3_payload_hash(req, info), now=EXAMPLE_NOW, family="s3")
    return req, ctx


def sign_chunks(ctx: sigv4.AuthContext, chunks: list[bytes], trailers: list[tuple[str, str]] | None,
                ) -> tuple[bytes, list[str], str | None]:
    """A client's aws-chunked encoder, written from the AWS documentation."""
    previous, body, sigs = ctx.signature, b"", []
    for data in [*chunks, b""]:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", ctx.amz_date, ctx.scope, previous,
                             sigv4.EMPTY_SHA256, hashlib.sha256(data).hexdigest()])
        previous = sigv4.sign(ctx.signing_key, to_sign)
        sigs.append(previous)
        body += b"%x;chunk-signature=%s\r\n" % (len(data), previous.encode())
        if data:
            body += data + b"\r\n"
    if trailers is None:
        return body + b"\r\n", sigs, None
    canonical = "".join(f"{n}:{v}\n" for n, v in trailers)
    to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", ctx.amz_date, ctx.scope, previous,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    trailer_sig = sigv4.sign(ctx.signing_key, to_sign)
    for n, v in trailers:
        body += f"{n}:{v}\r\n".encode()
    body += f"x-amz-trailer-signature:{trailer_sig}\r\n\r\n".encode()
    return body, sigs, trailer_sig


def decode(decoder: ChunkedDecoder, body: bytes, cuts: list[int] | None = None) -> bytes:
    bounds = [0, *sorted(set(c for c in (cuts or []) if 0 < c < len(body))), len(body)]
    out = []
    for start, stop in zip(bounds, bounds[1:]):
        out.extend(decoder.feed(body[start:stop]))
    decoder.end()
    return b"".join(out)


# ---------------------------------------------------------------- AWS's worked examples


def test_reproduces_the_documented_chunk_signatures() -> None:
    req, ctx = example_auth()
    assert ctx.signature == DOC_SEED
    body, sigs, _ = sign_chunks(ctx, EXAMPLE_CHUNKS, None)
    assert sigs == DOC_CHUNK_SIGNATURES
    assert len(body) == 66824  # the example's Content-Length
    decoder = decoder_for(req, ctx)
    assert decoder is not None
    assert decode(decoder, body) == b"a" * 66560
    assert decoder.trailers == {}


def test_reproduces_the_documented_trailer_signatures() -> None:
    req, ctx = example_auth(sigv4.STREAMING_SIGNED_TRAILER)
    assert ctx.signature == DOC_TRAILER_SEED
    crc = checksums.checksum_of("CRC32C", b"a" * 66560)
    assert crc == "sOO8/Q=="
    body, sigs, trailer_sig = sign_chunks(ctx, EXAMPLE_CHUNKS, [("x-amz-checksum-crc32c", crc)])
    assert sigs == DOC_TRAILER_CHUNK_SIGNATURES
    assert trailer_sig == DOC_TRAILER_SIGNATURE
    decoder = decoder_for(req, ctx)
    assert decoder is not None
    assert decode(decoder, body) == b"a" * 66560
    assert decoder.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    assert (decoder.checksum_algorithm, decoder.checksum_value) == ("CRC32C", "sOO8/Q==")


def test_example_fed_byte_by_byte() -> None:
    req, ctx = example_auth(sigv4.STREAMING_SIGNED_TRAILER)
    body, _, _ = sign_chunks(ctx, EXAMPLE_CHUNKS, [("x-amz-checksum-crc32c", "sOO8/Q==")])
    decoder = decoder_for(req, ctx)
    assert decoder is not None
    assert decode(decoder, body, list(range(len(body)))) == b"a" * 66560


# ---------------------------------------------------------------- random splits


def small_ctx() -> sigv4.AuthContext:
    return example_auth()[1]


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=5),
    algorithm=st.sampled_from([None, *checksums.FLEXIBLE_ALGORITHMS]),
    signed=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
)
def test_random_splits(chunks: list[bytes], algorithm: str | None, signed: bool,
                       cuts: list[int]) -> None:
    data = b"".join(chunks)
    header = checksums.header_for_algorithm(algorithm) if algorithm else None
    trailers = [(header, checksums.checksum_of(algorithm, data))] if algorithm else []
    if signed:
        ctx = small_ctx()
        mode = sigv4.STREAMING_SIGNED_TRAILER if algorithm else sigv4.STREAMING_SIGNED
        ctx = _with_mode(ctx, mode)
        body, _, _ = sign_chunks(ctx, chunks, trailers if algorithm else None)
        decoder = ChunkedDecoder(mode, auth=ctx, trailer=header, decoded_length=len(data))
    else:
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n"
        body += b"".join(f"{n}:{v}\r\n".encode() for n, v in trailers) + b"\r\n"
        decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, trailer=header)
    assert decode(decoder, body, cuts) == data
    assert decoder.decoded_size == len(data)


def _with_mode(ctx: sigv4.AuthContext, mode: str) -> sigv4.AuthContext:
    import dataclasses
    return dataclasses.replace(ctx, payload_hash=mode)


# ---------------------------------------------------------------- botocore's encoder


@pytest.mark.parametrize("algorithm", sorted(checksums.FLEXIBLE_ALGORITHMS))
@pytest.mark.parametrize("chunk_size", [1, 7, 1024 * 1024])
def test_botocore_unsigned_trailer_bodies(algorithm: str, chunk_size: int) -> None:
    data = bytes(range(256)) * 20
    cls = httpchecksum._CHECKSUM_CLS[algorithm.lower()]
    name = checksums.header_for_algorithm(algorithm)
    body = httpchecksum.AwsChunkedWrapper(io.BytesIO(data), checksum_cls=cls, checksum_name=name,
                                          chunk_size=chunk_size).read()
    req = HttpRequest("PUT", "/b/k", "/b/k", "", Headers([
        ("x-amz-content-sha256", sigv4.STREAMING_UNSIGNED_TRAILER), ("x-amz-trailer", name),
        ("x-amz-decoded-content-length", str(len(data)))]))
    decoder = decoder_for(req, None)
    assert decoder is not None
    assert decode(decoder, body, list(range(0, len(body), 333))) == data
    assert decoder.checksum_value == checksums.checksum_of(algorithm, data)


def test_botocore_without_checksum_and_the_captured_https_body() -> None:
    body = httpchecksum.AwsChunkedWrapper(io.BytesIO(b"hello")).read()
    assert body == b"5\r\nhello\r\n0\r\n\r\n"
    assert decode(ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER), body) == b"hello"
    captured = b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"  # research A3
    decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, trailer="x-amz-checksum-crc32",
                             decoded_length=11)
    assert decode(decoder, captured) == b"hello world"


def test_large_chunks_pass_through_in_pieces() -> None:
    size, piece = 8 * 1024 * 1024, 64 * 1024
    decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER)
    assert decoder.feed(b"%x\r\n" % size) == []
    block = b"z" * piece
    for _ in range(size // piece):
        out = decoder.feed(block)
        assert out == [block] and out[0] is block  # passed on, not copied or accumulated
    assert decoder.feed(b"\r\n0\r\n\r\n") == []
    assert decoder.end() == {}
    assert decoder.decoded_size == size


def test_lenient_end_without_the_closing_empty_line() -> None:
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n"
    decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, trailer="x-amz-checksum-crc32")
    assert decode(decoder, body) == b"hello"


async def test_decode_stream() -> None:
    async def body() -> AsyncIterator[bytes]:
        for piece in (b"5\r\nhel", b"lo\r\n3\r\nabc\r\n0\r\n", b"\r\n"):
            yield piece

    decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER)
    assert [p async for p in decode_stream(body(), decoder)] == [b"hel", b"lo", b"abc"]
    assert decoder.done

    async def truncated() -> AsyncIterator[bytes]:
        yield b"5\r\nhello\r\n"

    with pytest.raises(AWSError) as e:
        _ = [p async for p in decode_stream(truncated(), ChunkedDecoder(
            sigv4.STREAMING_UNSIGNED_TRAILER))]
    assert e.value.code == "IncompleteBody"


# ---------------------------------------------------------------- failures


def signed_example(trailer: bool = False) -> tuple[ChunkedDecoder, bytes]:
    mode = sigv4.STREAMING_SIGNED_TRAILER if trailer else sigv4.STREAMING_SIGNED
    req, ctx = example_auth(mode)
    trailers = [("x-amz-checksum-crc32c", "sOO8/Q==")] if trailer else None
    body, _, _ = sign_chunks(ctx, EXAMPLE_CHUNKS, trailers)
    decoder = decoder_for(req, ctx)
    assert decoder is not None
    return decoder, body


def fails(decoder: ChunkedDecoder, body: bytes) -> AWSError:
    with pytest.raises(AWSError) as e:
        decode(decoder, body)
    with pytest.raises(RuntimeError):
        decoder.feed(b"more")
    return e.value


def test_tampered_chunk_data() -> None:
    decoder, body = signed_example()
    i = body.index(b"aaaa")
    err = fails(decoder, body[:i] + b"b" + body[i + 1:])
    assert (err.code, err.status) == ("SignatureDoesNotMatch", 403)
    assert err.extra["StringToSign"].startswith("AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n")


def test_tampered_chunk_signature() -> None:
    decoder, body = signed_example()
    body = body.replace(DOC_CHUNK_SIGNATURES[1].encode(), b"0" * 64)
    assert fails(decoder, body).code == "SignatureDoesNotMatch"


def test_tampered_final_chunk_signature() -> None:
    decoder, body = signed_example()
    body = body.replace(DOC_CHUNK_SIGNATURES[2].encode(), DOC_CHUNK_SIGNATURES[1].encode())
    assert fails(decoder, body).code == "SignatureDoesNotMatch"


def test_reordered_chunks() -> None:
    req, ctx = example_auth()
    body, _, _ = sign_chunks(ctx, [b"x" * 10, b"y" * 10], None)
    first, second = body.split(b"\r\n")[0:2], body.split(b"\r\n")[2:4]
    swapped = b"\r\n".join(second + first) + b"\r\n" + b"\r\n".join(body.split(b"\r\n")[4:])
    decoder = ChunkedDecoder(sigv4.STREAMING_SIGNED, auth=ctx)
    assert fails(decoder, swapped).code == "SignatureDoesNotMatch"


def test_wrong_signing_key() -> None:
    req, ctx = example_auth()
    body, _, _ = sign_chunks(ctx, [b"data"], None)
    import dataclasses
    other = dataclasses.replace(ctx, signing_key=sigv4.signing_key("other", "20130524",
                                                                   "us-east-1", "s3"))
    assert fails(ChunkedDecoder(sigv4.STREAMING_SIGNED, auth=other), body).code == \
        "SignatureDoesNotMatch"


def test_tampered_trailer_and_trailer_signature() -> None:
    decoder, body = signed_example(trailer=True)
    err = fails(decoder, body.replace(b"sOO8/Q==", b"AAAAAA=="))
    assert err.code == "SignatureDoesNotMatch"  # the trailer is signed
    decoder, body = signed_example(trailer=True)
    err = fails(decoder, body.replace(DOC_TRAILER_SIGNATURE.encode(), b"f" * 64))
    assert err.code == "SignatureDoesNotMatch"


def test_signed_trailer_without_its_signature() -> None:
    decoder, body = signed_example(trailer=True)
    i = body.index(b"x-amz-trailer-signature")
    assert fails(decoder, body[:i] + b"\r\n").code == "MalformedTrailerError"


@pytest.mark.parametrize("cut", [1, 100, 66000, -40, -3, -1])
def test_truncated_body(cut: int) -> None:
    decoder, body = signed_example(trailer=True)
    err = fails(decoder, body[:cut])
    assert (err.code, err.status) == ("IncompleteBody", 400)


def unsigned(body: bytes, trailer: str | None = "x-amz-checksum-crc32",
             decoded_length: int | None = None) -> AWSError:
    decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, trailer=trailer,
                             decoded_length=decoded_length)
    return fails(decoder, body)


def test_bad_trailer_checksum() -> None:
    err = unsigned(b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n")
    assert (err.code, err.status, err.message) == (
        "BadDigest", 400, "The CRC32 you specified did not match the calculated checksum.")


def test_invalid_trailer_checksum_value() -> None:
    err = unsigned(b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:not!base64\r\n\r\n")
    assert (err.code, err.message) == (
        "InvalidRequest", "Value for x-amz-checksum-crc32 trailing header is invalid.")


@pytest.mark.parametrize("trailer_lines", [b"", b"x-amz-checksum-sha1:qvTGHdzF6KLavt4PO0gs2a6pQ00=\r\n",
                                           b"no-colon-here\r\n", b":empty-name\r\n",
                                           b"x-amz-checksum-crc32:NhCmhg==\r\n" * 2])
def test_missing_or_unexpected_trailer(trailer_lines: bytes) -> None:
    err = unsigned(b"5\r\nhello\r\n0\r\n" + trailer_lines + b"\r\n")
    assert (err.code, err.status) == ("MalformedTrailerError", 400)


def test_trailer_in_a_mode_without_trailers() -> None:
    req, ctx = example_auth()
    body, _, _ = sign_chunks(ctx, [b"data"], None)
    body = body[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    assert fails(ChunkedDecoder(sigv4.STREAMING_SIGNED, auth=ctx), body).code == \
        "MalformedTrailerError"


def test_too_many_trailer_lines() -> None:
    err = unsigned(b"0\r\n" + b"x-amz-meta-a:b\r\n" * 20 + b"\r\n", trailer=None)
    assert err.code == "MalformedTrailerError"


def test_oversize_lines() -> None:
    err = unsigned(b"5" * (MAX_LINE + 1))
    assert (err.code, err.status) == ("InvalidRequest", 400)
    err = unsigned(b"0\r\nx-amz-checksum-crc32:" + b"A" * MAX_LINE)
    assert err.code == "MalformedTrailerError"


@pytest.mark.parametrize("body", [b"zz\r\nhello\r\n0\r\n\r\n", b"\r\n", b"-5\r\nhello\r\n0\r\n\r\n",
                                  b"1" * 17 + b"\r\n", b"5\nhello\r\n0\r\n\r\n",
                                  b"5\r\nhello!\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\nextra"])
def test_malformed_framing(body: bytes) -> None:
    err = unsigned(body, trailer=None)
    assert (err.code, err.status) == ("InvalidRequest", 400)


def test_signed_chunk_without_signature() -> None:
    req, ctx = example_auth()
    body = b"5\r\nhello\r\n"
    assert fails(ChunkedDecoder(sigv4.STREAMING_SIGNED, auth=ctx), body).code == "InvalidRequest"


@pytest.mark.parametrize("declared", [4, 6])
def test_decoded_content_length_mismatch(declared: int) -> None:
    err = unsigned(b"5\r\nhello\r\n0\r\n\r\n", trailer=None, decoded_length=declared)
    assert (err.code, err.status) == ("IncompleteBody", 400)


def test_more_than_declared_fails_before_the_end() -> None:
    decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, decoded_length=3)
    with pytest.raises(AWSError) as e:
        decoder.feed(b"5\r\nhello")
    assert e.value.code == "IncompleteBody"


def test_unsupported_trailer_names() -> None:
    for mode, trailer in [(sigv4.STREAMING_UNSIGNED_TRAILER, "x-amz-checksum-md5"),
                          (sigv4.STREAMING_UNSIGNED_TRAILER, "x-amz-meta-foo"),
                          (sigv4.STREAMING_SIGNED, "x-amz-checksum-crc32")]:
        with pytest.raises(AWSError) as e:
            ChunkedDecoder(mode, auth=small_ctx(), trailer=trailer)
        assert (e.value.code, e.value.message) == (
            "InvalidRequest", "The value specified in the x-amz-trailer header is not supported")


def test_decoder_for() -> None:
    def req(*headers: tuple[str, str]) -> HttpRequest:
        return HttpRequest("PUT", "/b/k", "/b/k", "", Headers(list(headers)))

    assert decoder_for(req(("x-amz-content-sha256", sigv4.UNSIGNED_PAYLOAD)), None) is None
    assert decoder_for(req(), None) is None
    with pytest.raises(AWSError) as e:
        decoder_for(req(("x-amz-content-sha256", sigv4.STREAMING_SIGNED)), None)
    assert e.value.code == "AccessDenied"
    with pytest.raises(AWSError) as e:
        decoder_for(req(("x-amz-content-sha256", sigv4.STREAMING_UNSIGNED_TRAILER),
                        ("x-amz-decoded-content-length", "ten")), None)
    assert e.value.code == "InvalidArgument"
    with pytest.raises(ValueError):
        ChunkedDecoder(sigv4.STREAMING_SIGNED)  # signed modes need the AuthContext
    with pytest.raises(ValueError):
        ChunkedDecoder(sigv4.UNSIGNED_PAYLOAD)
