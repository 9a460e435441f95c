"""Which checksums an upload asks for, checking them, and returning them.

A client names a flexible checksum in one of three ways: a value header
(``x-amz-checksum-crc32: <base64>``), a trailer announced by ``x-amz-trailer`` (the value
arrives after the body and the aws-chunked decoder verifies it before the body stream ends),
or only the algorithm (``x-amz-sdk-checksum-algorithm``, or ``ChecksumAlgorithm`` on
CopyObject and CreateMultipartUpload). ``Content-MD5`` is separate, with its own errors.

The blob store computes the requested algorithms while it writes (:meth:`ChecksumRequest.
compute`), so a value header is checked against what the store computed once the bytes are
on disk and before anything is committed (:func:`verify_upload`); a trailer needs no second
check, since the decoder compared it with the same bytes. Without any checksum S3 stores a
CRC64NVME of the object, and so do we.

The stored form is the ``checksum`` state field of ``projections.py``;
:func:`checksum_output` renders it for GetObject/HeadObject (only with
``ChecksumMode=ENABLED``) and for the PUT answer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zeronode.aws import checksums
from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers

if TYPE_CHECKING:
    from zeronode.storage import WrittenBlob

#: What S3 computes for an object uploaded without any checksum.
DEFAULT_ALGORITHM = "CRC64NVME"
FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"

#: Output/input member of each flexible algorithm (``ChecksumCRC32``...).
MEMBERS = {alg: f"Checksum{alg}" for alg in checksums.FLEXIBLE_ALGORITHMS}
#: Value headers botocore's model knows but S3 does not accept on uploads.
_UNSUPPORTED_MEMBERS = ("ChecksumSHA512", "ChecksumMD5", "ChecksumXXHASH64", "ChecksumXXHASH3",
                        "ChecksumXXHASH128")

_UNSUPPORTED = ("Checksum algorithm provided is unsupported. Please try again with any of the "
                "valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
_MULTIPLE = "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."


def _invalid_request(message: str) -> AWSError:
    return AWSError("InvalidRequest", message, 400)


@dataclass(frozen=True)
class ChecksumRequest:
    """The flexible checksum an upload names, if any.

    ``algorithm`` is the S3 name (``CRC32``...) or None; ``expected`` the base64 value of a
    value header, to compare after the write; ``trailer`` whether the value came as a
    (decoder-verified) trailer.
    """

    algorithm: str | None = None
    expected: str | None = None
    trailer: bool = False

    def compute(self) -> tuple[str, ...]:
        """The algorithms to have the blob store compute for this upload."""
        return (self.algorithm or DEFAULT_ALGORITHM,)

    @property
    def stored_algorithm(self) -> str:
        return self.algorithm or DEFAULT_ALGORITHM


def algorithm_param(value: str | None) -> str | None:
    """A ``ChecksumAlgorithm`` parameter as S3's name; ``InvalidRequest`` if unsupported."""
    if value is None:
        return None
    name = value.upper()
    if name not in checksums.FLEXIBLE_ALGORITHMS:
        raise _invalid_request(_UNSUPPORTED)
    return name


def checksum_request(params: dict[str, Any], headers: Headers) -> ChecksumRequest:
    """The checksum of a PutObject or UploadPart, with S3's errors for a confused request.

    One value header or one trailer at most; the SDK algorithm header must agree with it and
    may not come alone; a value must be base64 of the algorithm's digest size.
    """
    if any(params.get(member) is not None for member in _UNSUPPORTED_MEMBERS):
        raise _invalid_request(_UNSUPPORTED)
    named = [(alg, params[member]) for alg, member in MEMBERS.items() if params.get(member) is not None]
    trailer_header = (headers.get("x-amz-trailer") or "").strip()
    trailer = checksums.algorithm_for_header(trailer_header) if trailer_header else None
    if len(named) + (trailer is not None) > 1:
        raise _invalid_request(_MULTIPLE)
    sdk = algorithm_param(params.get("ChecksumAlgorithm"))
    if named:
        algorithm, value = named[0]
        if sdk is not None and sdk != algorithm:
            raise _invalid_request("Value for x-amz-sdk-checksum-algorithm header is invalid.")
        if checksums.decode_b64_digest(algorithm, value) is None:
            raise _invalid_request(
                f"Value for {checksums.header_for_algorithm(algorithm)} header is invalid.")
        return ChecksumRequest(algorithm, value)
    if trailer is not None:
        if sdk is not None and sdk != trailer:
            raise _invalid_request("Value for x-amz-sdk-checksum-algorithm header is invalid.")
        return ChecksumRequest(trailer, trailer=True)
    if sdk is not None:
        raise _invalid_request(
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or "
            "x-amz-trailer headers were found.")
    return ChecksumRequest()


def content_md5(params: dict[str, Any]) -> bytes | None:
    """The ``Content-MD5`` digest; ``InvalidDigest`` if it is not base64 of 16 bytes."""
    value = params.get("ContentMD5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise AWSError("InvalidDigest", "The Content-MD5 you specified was invalid.", 400,
                       extra={"Content-MD5": value})
    return digest


def verify_upload(request: ChecksumRequest, md5: bytes | None, written: WrittenBlob) -> None:
    """``BadDigest`` when the bytes written do not match what the client said they were."""
    if md5 is not None and not hmac.compare_digest(md5, written.md5):
        raise AWSError(
            "BadDigest", "The Content-MD5 you specified did not match what we received.", 400,
            extra={"ExpectedDigest": md5.hex(), "CalculatedDigest":
                   base64.b64encode(written.md5).decode("ascii")},
        )
    if request.expected is not None and request.algorithm is not None:
        claimed = checksums.decode_b64_digest(request.algorithm, request.expected)
        actual = base64.b64decode(written.checksums[request.algorithm])
        if claimed is None or not hmac.compare_digest(claimed, actual):
            raise AWSError("BadDigest", f"The {request.algorithm} you specified did not match "
                           "the calculated checksum.", 400)


def stored_checksum(algorithm: str, written: WrittenBlob) -> dict[str, str]:
    """The ``checksum`` state field of a single-PUT object (always a full-object checksum)."""
    return {"algorithm": algorithm, "value": written.checksums[algorithm], "type": FULL_OBJECT}


def checksum_output(checksum: dict[str, str] | None, mode: str | None = "ENABLED") -> dict[str, str]:
    """``ChecksumCRC32``/``ChecksumType``... output fields; nothing unless ``mode`` is ENABLED.

    PutObject and UploadPart answers always carry the checksum (pass the default mode);
    GetObject and HeadObject pass their ``ChecksumMode`` parameter.
    """
    if checksum is None or (mode or "").upper() != "ENABLED":
        return {}
    return {MEMBERS[checksum["algorithm"]]: checksum["value"], "ChecksumType": checksum["type"]}
