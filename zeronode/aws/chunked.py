"""An incremental, sans-I/O decoder for S3's ``aws-chunked`` payload encoding.

Theory of operation
-------------------
An aws-chunked body is a sequence of chunks, each ``<hex size>[;chunk-signature=<sig>]\\r\\n``
then ``size`` bytes then ``\\r\\n``, ended by a zero-size chunk, optional trailer lines
(``x-amz-checksum-crc32:<base64>\\r\\n``, and in the signed-trailer mode
``x-amz-trailer-signature:<sig>\\r\\n``) and an empty line. Which variant a request uses is
its ``x-amz-content-sha256``:

``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``
    every chunk (the final empty one too) is signed; each signature chains from the previous
    one, starting from the request's own (seed) signature::

        AWS4-HMAC-SHA256-PAYLOAD \\n amz_date \\n scope \\n previous_sig \\n
        sha256("") \\n sha256(data)

``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``
    the same, then the trailer is signed, chaining from the final chunk's signature::

        AWS4-HMAC-SHA256-TRAILER \\n amz_date \\n scope \\n previous_sig \\n sha256(trailer lines)

    where the trailer lines are ``name:value\\n`` for each trailer but the signature.
``STREAMING-UNSIGNED-PAYLOAD-TRAILER``
    no signatures at all (TLS and the trailing checksum protect it); what botocore sends by
    default over HTTPS.

Like h11, :class:`ChunkedDecoder` does no I/O: :meth:`~ChunkedDecoder.feed` takes whatever
bytes arrived and returns the payload pieces they contained, :meth:`~ChunkedDecoder.end`
says the body is over and returns the trailers. Memory stays bounded whatever the chunk
size: chunk data is passed through as it arrives (a slice of the input, hashed on the way),
and only a chunk header or trailer line — at most :data:`MAX_LINE` bytes — is ever held.

Because data is passed on before its chunk's signature (or the trailing checksum) can be
checked, **everything a decoder returned is tentative until end() returns**: the caller
writes to a temporary file and commits only then. Any error is an :class:`AWSError` with
the code S3 uses; after one, the decoder is dead.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

from zeronode.aws import checksums
from zeronode.aws.errors import AWSError
from zeronode.aws.http import HttpRequest
from zeronode.aws.sigv4 import (
    EMPTY_SHA256,
    STREAMING_MODES,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    AuthContext,
    signatures_equal,
)

#: Longest chunk header or trailer line accepted, CRLF included. A signed header line is at
#: most 16 hex digits + ";chunk-signature=" + 64 hex digits + CRLF = 99 bytes; trailers are
#: shorter still, but S3 tolerates whitespace around the colon, so leave generous room.
MAX_LINE = 1024
MAX_TRAILERS = 16
_MAX_SIZE_DIGITS = 16

_SIZE_LINE, _DATA, _DATA_END, _TRAILER, _DONE, _FAILED = range(6)

_SIGNATURE_MESSAGE = ("The request signature we calculated does not match the signature you "
                      "provided. Check your key and signing method.")
_MALFORMED_TRAILER = ("The request contained trailing data that was not well-formed or did "
                      "not conform to our published schema.")


def _framing(detail: str) -> AWSError:
    return AWSError("InvalidRequest", f"Invalid aws-chunked encoding: {detail}", 400)


def _incomplete(message: str = "The request body terminated unexpectedly") -> AWSError:
    return AWSError("IncompleteBody", message, 400)


class ChunkedDecoder:
    """Decode one aws-chunked body; see the module docstring for the protocol.

    ``mode`` is the request's ``x-amz-content-sha256``. The signed modes need ``auth`` (the
    :class:`AuthContext` of the verified request: signing key, scope, seed signature).
    ``trailer`` is the ``x-amz-trailer`` header: the checksum trailer the body must end with,
    verified against the decoded bytes. ``decoded_length`` is
    ``x-amz-decoded-content-length`` when the client sent it.
    """

    def __init__(
        self,
        mode: str,
        *,
        auth: AuthContext | None = None,
        trailer: str | None = None,
        decoded_length: int | None = None,
    ) -> None:
        if mode not in STREAMING_MODES:
            raise ValueError(f"not an aws-chunked mode: {mode!r}")
        self.mode = mode
        self.signed = mode in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        if self.signed and auth is None:
            raise ValueError("signed aws-chunked needs the request's AuthContext")
        self._auth = auth
        self._previous_signature = auth.signature if auth is not None else ""
        self.trailers_allowed = mode in (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
        self.checksum_algorithm: str | None = None
        self._checksum: checksums.Checksum | None = None
        self._trailer_name: str | None = None
        if trailer is not None and trailer.strip():
            name = trailer.strip().lower()
            algorithm = checksums.algorithm_for_header(name)
            if algorithm is None or not self.trailers_allowed:
                raise AWSError("InvalidRequest",
                               "The value specified in the x-amz-trailer header is not supported",
                               400)
            self._trailer_name = name
            self.checksum_algorithm = algorithm
            self._checksum = checksums.new_checksum(algorithm)
        self.decoded_length = decoded_length
        #: The verified checksum trailer value (base64), once end() has returned.
        self.checksum_value: str | None = None
        self.trailers: dict[str, str] = {}
        self.decoded_size = 0

        self._state = _SIZE_LINE
        self._line = bytearray()
        self._remaining = 0  # data bytes left in the current chunk
        self._chunk_signature = ""
        self._chunk_hash: "hashlib._Hash | None" = None
        self._trailer_lines: list[tuple[str, str]] = []

    # ---------------------------------------------------------------- public

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the payload bytes it completed, in order (maybe none)."""
        if self._state == _FAILED:
            raise RuntimeError("decoder already failed")
        try:
            return self._feed(data)
        except AWSError:
            self._state = _FAILED
            raise

    def end(self) -> dict[str, str]:
        """The body is over: check it was complete and correct; return the trailers."""
        if self._state == _FAILED:
            raise RuntimeError("decoder already failed")
        try:
            if self._state == _TRAILER and not self._line and self._trailer_lines:
                # Some clients stop after the last trailer line without the closing empty
                # line; everything signed and checksummed has arrived, so accept it.
                self._finish_trailers()
            if self._state != _DONE:
                raise _incomplete()
            return dict(self.trailers)
        except AWSError:
            self._state = _FAILED
            raise

    @property
    def done(self) -> bool:
        return self._state == _DONE

    # ---------------------------------------------------------------- machinery

    def _feed(self, data: bytes) -> list[bytes]:
        if not isinstance(data, bytes):
            data = bytes(data)
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                # A whole-buffer slice of bytes is the buffer itself: no copy in the
                # common case of a read that lies entirely inside one chunk.
                piece = data[pos:pos + take]
                pos += take
                self._remaining -= take
                self._consume(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._state = _DATA_END
            elif state == _DONE:
                raise _framing("data after the end of the body")
            else:
                newline = data.find(b"\n", pos)
                stop = end if newline == -1 else newline + 1
                if len(self._line) + (stop - pos) > MAX_LINE:
                    raise self._line_too_long()
                self._line += data[pos:stop]
                pos = stop
                if newline == -1:
                    break
                line = bytes(self._line)
                self._line.clear()
                if not line.endswith(b"\r\n"):
                    raise _framing("lines must end with CRLF")
                self._line_complete(line[:-2])
        return out

    def _line_too_long(self) -> AWSError:
        if self._state == _TRAILER:
            return AWSError("MalformedTrailerError", _MALFORMED_TRAILER, 400)
        return _framing(f"chunk header line longer than {MAX_LINE} bytes")

    def _consume(self, piece: bytes) -> None:
        self.decoded_size += len(piece)
        if self.decoded_length is not None and self.decoded_size > self.decoded_length:
            raise _incomplete("You did not provide the number of bytes specified by the "
                              "Content-Length HTTP header.")
        if self._chunk_hash is not None:
            self._chunk_hash.update(piece)
        if self._checksum is not None:
            self._checksum.update(piece)

    def _line_complete(self, line: bytes) -> None:
        if self._state == _SIZE_LINE:
            self._start_chunk(line)
        elif self._state == _DATA_END:
            if line:
                raise _framing("chunk data longer than its declared size")
            self._end_chunk()
        else:  # _TRAILER
            self._trailer_line(line)

    def _start_chunk(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        size_text = size_text.strip()
        if not size_text or len(size_text) > _MAX_SIZE_DIGITS or not all(
            c in b"0123456789abcdefABCDEF" for c in size_text
        ):
            raise _framing(f"bad chunk size {size_text[:32]!r}")
        size = int(size_text, 16)
        self._chunk_signature = ""
        if self.signed:
            key, eq, value = extension.partition(b"=")
            if key.strip() != b"chunk-signature" or not eq or not value.strip():
                raise _framing("each chunk needs a chunk-signature")
            self._chunk_signature = value.strip().decode("latin-1")
            self._chunk_hash = hashlib.sha256()
        self._remaining = size
        if size == 0:
            self._verify_chunk(EMPTY_SHA256)
            self._after_final_chunk()
        else:
            self._state = _DATA

    def _end_chunk(self) -> None:
        if self._chunk_hash is not None:
            self._verify_chunk(self._chunk_hash.hexdigest())
            self._chunk_hash = None
        self._state = _SIZE_LINE

    def _after_final_chunk(self) -> None:
        self._chunk_hash = None
        if self.decoded_length is not None and self.decoded_size != self.decoded_length:
            raise _incomplete("You did not provide the number of bytes specified by the "
                              "Content-Length HTTP header.")
        self._state = _TRAILER

    def _verify_chunk(self, data_hash: str) -> None:
        if not self.signed:
            return
        auth = self._auth
        assert auth is not None
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", auth.amz_date, auth.scope,
                             self._previous_signature, EMPTY_SHA256, data_hash])
        self._check_signature(to_sign, self._chunk_signature)

    def _check_signature(self, to_sign: str, provided: str) -> None:
        auth = self._auth
        assert auth is not None
        expected = hmac.new(auth.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not signatures_equal(expected, provided):
            raise AWSError("SignatureDoesNotMatch", _SIGNATURE_MESSAGE, 403, extra={
                "AWSAccessKeyId": auth.access_key_id,
                "StringToSign": to_sign,
                "SignatureProvided": provided,
            })
        self._previous_signature = expected

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._finish_trailers()
            return
        if not self.trailers_allowed or len(self._trailer_lines) >= MAX_TRAILERS:
            raise AWSError("MalformedTrailerError", _MALFORMED_TRAILER, 400)
        name, colon, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise AWSError("MalformedTrailerError", _MALFORMED_TRAILER, 400)
        self._trailer_lines.append((name, value.strip()))

    def _finish_trailers(self) -> None:
        trailers: dict[str, str] = {}
        signature: str | None = None
        for name, value in self._trailer_lines:
            if name == "x-amz-trailer-signature" and self.mode == STREAMING_SIGNED_TRAILER:
                signature = value
            elif name == self._trailer_name and name not in trailers:
                trailers[name] = value
            else:
                raise AWSError("MalformedTrailerError", _MALFORMED_TRAILER, 400)
        if self.mode == STREAMING_SIGNED_TRAILER:
            if signature is None:
                raise AWSError("MalformedTrailerError", _MALFORMED_TRAILER, 400)
            canonical = "".join(f"{n}:{v}\n" for n, v in self._trailer_lines
                                if n != "x-amz-trailer-signature")
            auth = self._auth
            assert auth is not None
            to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope,
                                 self._previous_signature,
                                 hashlib.sha256(canonical.encode("latin-1")).hexdigest()])
            self._check_signature(to_sign, signature)
        if self._trailer_name is not None:
            self._check_checksum(trailers.get(self._trailer_name))
        self.trailers = trailers
        self._state = _DONE

    def _check_checksum(self, value: str | None) -> None:
        assert self.checksum_algorithm is not None and self._checksum is not None
        if value is None:
            raise AWSError("MalformedTrailerError", _MALFORMED_TRAILER, 400)
        claimed = checksums.decode_b64_digest(self.checksum_algorithm, value)
        if claimed is None:
            raise AWSError("InvalidRequest",
                           f"Value for {self._trailer_name} trailing header is invalid.", 400)
        if not hmac.compare_digest(claimed, self._checksum.digest()):
            raise AWSError("BadDigest", f"The {self.checksum_algorithm} you specified did not "
                           "match the calculated checksum.", 400)
        self.checksum_value = value


def decoder_for(req: HttpRequest, auth: AuthContext | None) -> ChunkedDecoder | None:
    """The decoder a request's headers call for; None if its body is not aws-chunked.

    The mode is what was signed (``auth.payload_hash``) when the request was verified,
    else its ``x-amz-content-sha256`` header.
    """
    if auth is not None:
        mode = auth.payload_hash
    else:
        mode = (req.headers.get("x-amz-content-sha256") or "").strip()
    if mode not in STREAMING_MODES:
        return None
    if mode != STREAMING_UNSIGNED_TRAILER and auth is None:
        raise AWSError("AccessDenied", "Access Denied", 403)
    decoded: int | None = None
    raw = req.headers.get("x-amz-decoded-content-length")
    if raw is not None:
        if not raw.strip().isdigit():
            raise AWSError("InvalidArgument", "x-amz-decoded-content-length must be a "
                           "non-negative integer", 400,
                           extra={"ArgumentName": "x-amz-decoded-content-length",
                                  "ArgumentValue": raw})
        decoded = int(raw.strip())
    return ChunkedDecoder(mode, auth=auth, trailer=req.headers.get("x-amz-trailer"),
                          decoded_length=decoded)


async def decode_stream(
    body: AsyncIterator[bytes], decoder: ChunkedDecoder
) -> AsyncIterator[bytes]:
    """Decode ``body`` as it arrives; raises from the decoder, and at the end, ``end()``'s.

    The trailers and the verified checksum stay on ``decoder`` afterwards.
    """
    async for piece in body:
        for out in decoder.feed(piece):
            if out:
                yield out
    decoder.end()
