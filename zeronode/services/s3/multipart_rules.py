"""S3's multipart rules as pure functions: checksum modes, part lists, ETags, checksums.

Nothing here does I/O; ``multipart.py`` calls these inside its journal mutations.

Checksums of a multipart upload (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
checking-object-integrity.html). CreateMultipartUpload fixes one algorithm and one *type*:

- ``COMPOSITE`` (CRC32, CRC32C, SHA1, SHA256): every part must arrive with a checksum of that
  algorithm, Complete must repeat it for every part, and the object's checksum is the
  checksum of the concatenated part digests followed by ``-N`` (N parts).
- ``FULL_OBJECT`` (CRC32, CRC32C, CRC64NVME): the object's checksum is the CRC of all its
  bytes, which for a CRC can be *combined* from the parts' CRCs and sizes, so no byte is read
  twice. Parts may come without a checksum (we compute it anyway).

Without an algorithm the upload gets S3's default, a full-object CRC64NVME, computed the same
way; parts may then carry any checksum the client likes (checked, and echoed back).

The multipart ETag is the hex MD5 of the concatenated binary MD5s of the chosen parts,
followed by ``-N`` — what every S3 client expects and some tools check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from awscrt import checksums as _crt

from zeronode.aws import checksums
from zeronode.aws.errors import AWSError
from zeronode.services.s3.checksum_fields import (
    COMPOSITE,
    DEFAULT_ALGORITHM,
    FULL_OBJECT,
    MEMBERS,
)

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PART_NUMBER = 10_000

#: Which checksum types each algorithm supports on a multipart upload (the first is its default).
_TYPES: dict[str, tuple[str, ...]] = {
    "CRC32": (COMPOSITE, FULL_OBJECT),
    "CRC32C": (COMPOSITE, FULL_OBJECT),
    "CRC64NVME": (FULL_OBJECT,),
    "SHA1": (COMPOSITE,),
    "SHA256": (COMPOSITE,),
}

#: CRC combination: crc(a || b) from crc(a), crc(b) and len(b).
_COMBINE = {
    "CRC32": _crt.combine_crc32,
    "CRC32C": _crt.combine_crc32c,
    "CRC64NVME": _crt.combine_crc64nvme,
}


def invalid_request(message: str) -> AWSError:
    return AWSError("InvalidRequest", message, 400)


@dataclass(frozen=True)
class ChecksumMode:
    """The checksum an upload's parts and object carry.

    ``requested`` is False for S3's default (CRC64NVME, FULL_OBJECT), which the client did not
    ask for: then parts need no checksum and may carry one of any algorithm.
    """

    algorithm: str
    type: str
    requested: bool

    def to_state(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "type": self.type, "requested": self.requested}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ChecksumMode:
        return cls(state["algorithm"], state["type"], bool(state["requested"]))


def checksum_mode(algorithm: str | None, checksum_type: str | None) -> ChecksumMode:
    """CreateMultipartUpload's ``ChecksumAlgorithm``/``ChecksumType`` (already S3 names)."""
    if algorithm is None:
        if checksum_type is not None:
            raise invalid_request("The x-amz-checksum-type header can only be used with the "
                                  "x-amz-checksum-algorithm header.")
        return ChecksumMode(DEFAULT_ALGORITHM, FULL_OBJECT, requested=False)
    supported = _TYPES[algorithm]
    if checksum_type is None:
        return ChecksumMode(algorithm, supported[0], requested=True)
    if checksum_type not in supported:
        raise invalid_request(f"The {checksum_type} checksum type cannot be used with the "
                              f"{algorithm.lower()} checksum algorithm.")
    return ChecksumMode(algorithm, checksum_type, requested=True)


def check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PART_NUMBER:
        raise AWSError(
            "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", 400,
            extra={"ArgumentName": "partNumber", "ArgumentValue": str(number)},
        )


def check_part_checksum(mode: ChecksumMode, sent_algorithm: str | None) -> None:
    """UploadPart: a part's checksum must be the upload's algorithm (required if COMPOSITE)."""
    if not mode.requested or sent_algorithm == mode.algorithm:
        return
    if sent_algorithm is None and mode.type == FULL_OBJECT:
        return
    actual = sent_algorithm.lower() if sent_algorithm else "null"
    raise invalid_request(f"Checksum Type mismatch occurred, expected checksum Type: "
                          f"{mode.algorithm.lower()}, actual checksum Type: {actual}")


def part_algorithms(mode: ChecksumMode, sent_algorithm: str | None) -> tuple[str, ...]:
    """What the blob store computes for a part: the upload's algorithm and the client's."""
    if sent_algorithm is None or sent_algorithm == mode.algorithm:
        return (mode.algorithm,)
    return (mode.algorithm, sent_algorithm)


def strip_etag(etag: str) -> str:
    """An ETag as a client may send it (quoted or not) as the stored hex."""
    return etag.strip().strip('"')


def _invalid_part(upload_id: str, number: int, etag: str) -> AWSError:
    return AWSError(
        "InvalidPart",
        "One or more of the specified parts could not be found.  The part may not have been "
        "uploaded, or the specified entity tag may not match the part's entity tag.",
        400, extra={"UploadId": upload_id, "PartNumber": str(number), "ETag": etag},
    )


def _invalid_part_order(upload_id: str) -> AWSError:
    return AWSError(
        "InvalidPartOrder",
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
        400, extra={"UploadId": upload_id},
    )


def select_parts(
    upload_id: str,
    requested: Sequence[Mapping[str, Any]],
    uploaded: Mapping[int, Mapping[str, Any]],
    mode: ChecksumMode,
) -> list[tuple[int, Mapping[str, Any]]]:
    """The uploaded parts Complete names, in order, after S3's checks in S3's order.

    ``requested`` is Complete's ``Parts`` (``PartNumber``, ``ETag``, ``Checksum<ALG>``);
    ``uploaded`` maps part numbers to part states (``size``, ``etag``, ``checksum``).
    """
    numbers: list[int] = [part["PartNumber"] for part in requested if part.get("PartNumber") is not None]
    if not numbers or len(numbers) != len(requested):
        raise AWSError("MalformedXML", "The XML you provided was not well-formed or did not "
                       "validate against our published schema", 400)
    for number in numbers:
        check_part_number(number)
    if any(b <= a for a, b in pairwise(numbers)):
        raise _invalid_part_order(upload_id)
    if mode.requested and mode.type == COMPOSITE and numbers != list(range(1, len(numbers) + 1)):
        # S3: with per-part checksums the parts must be 1, 2, 3... with no gap.
        raise _invalid_part_order(upload_id)
    chosen = []
    member = MEMBERS[mode.algorithm]
    for part in requested:
        number, etag = part["PartNumber"], strip_etag(part.get("ETag") or "")
        state = uploaded.get(number)
        if state is None or state["etag"] != etag:
            raise _invalid_part(upload_id, number, part.get("ETag") or "")
        claimed = part.get(member)
        if claimed is None and mode.requested and mode.type == COMPOSITE:
            raise invalid_request(
                f"The upload was created using a {mode.algorithm.lower()} checksum. The complete "
                f"request must include the checksum for each part. It was missing for part "
                f"{number} in the request.")
        if claimed is not None and not _same_checksum(state["checksum"]["value"], claimed):
            raise _invalid_part(upload_id, number, part.get("ETag") or "")
        chosen.append((number, state))
    for number, state in chosen[:-1]:
        if state["size"] < MIN_PART_SIZE:
            raise AWSError(
                "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
                400, extra={"ProposedSize": str(state["size"]), "MinSizeAllowed": str(MIN_PART_SIZE),
                            "PartNumber": str(number), "ETag": state["etag"]},
            )
    return chosen


def _same_checksum(stored: str, claimed: str) -> bool:
    return hmac.compare_digest(stored.encode(), claimed.strip().encode())


def multipart_etag(part_etags: Sequence[str]) -> str:
    """``hex(md5(md5(part 1) || md5(part 2) ...))-N`` from the parts' hex ETags."""
    digest = hashlib.md5(b"".join(bytes.fromhex(etag) for etag in part_etags)).hexdigest()
    return f"{digest}-{len(part_etags)}"


def object_checksum(mode: ChecksumMode, parts: Sequence[tuple[str, int]]) -> dict[str, str]:
    """The completed object's ``checksum`` state from its parts' (base64 checksum, size)."""
    if mode.type == COMPOSITE:
        hasher = checksums.new_checksum(mode.algorithm)
        for value, _ in parts:
            hasher.update(base64.b64decode(value))
        value = f"{hasher.b64digest()}-{len(parts)}"
    else:
        value = combine_crcs(mode.algorithm, parts)
    return {"algorithm": mode.algorithm, "value": value, "type": mode.type}


def combine_crcs(algorithm: str, parts: Sequence[tuple[str, int]]) -> str:
    """The CRC of the concatenation of the parts, from each part's CRC and size."""
    combine = _COMBINE[algorithm]
    width = 8 if algorithm == "CRC64NVME" else 4
    total = 0
    for index, (value, size) in enumerate(parts):
        crc = int.from_bytes(base64.b64decode(value), "big")
        total = crc if index == 0 else combine(total, crc, size)
    return base64.b64encode(total.to_bytes(width, "big")).decode("ascii")


def check_complete_claims(
    mode: ChecksumMode,
    checksum: Mapping[str, str],
    size: int,
    params: Mapping[str, Any],
) -> None:
    """Complete's optional assertions about the result: type, whole checksum, total size."""
    claimed_type = params.get("ChecksumType")
    if claimed_type is not None and mode.requested and claimed_type != mode.type:
        raise invalid_request(f"The upload was created using the {mode.type} checksum mode. "
                              "The complete request must use the same checksum mode.")
    for algorithm, member in MEMBERS.items():
        claimed = params.get(member)
        if claimed is None:
            continue
        if algorithm != checksum["algorithm"]:
            raise invalid_request(f"The upload was created using the {checksum['algorithm'].lower()}"
                                  f" checksum algorithm. The complete request must use the same "
                                  f"checksum algorithm.")
        stored = checksum["value"]
        if mode.type == COMPOSITE and "-" not in claimed:
            stored = stored.rsplit("-", 1)[0]
        if not _same_checksum(stored, claimed):
            raise AWSError("BadDigest", f"The {algorithm} you specified did not match the "
                           "calculated checksum.", 400)
    expected_size = params.get("MpuObjectSize")
    if expected_size is not None and int(expected_size) != size:
        raise invalid_request(f"The provided 'x-amz-mp-object-size' header value {expected_size} "
                              f"does not match what was computed: {size}")


_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def copy_source_range(header: str | None, size: int) -> tuple[int, int]:
    """UploadPartCopy's ``x-amz-copy-source-range`` as bytes ``[start, end)`` of the source.

    Unlike GetObject's ``Range``, S3 takes only the explicit ``bytes=first-last`` form here
    and refuses, rather than ignores or clamps, anything else.
    """
    if header is None:
        return 0, size
    match = _COPY_RANGE.match(header.strip())
    if match is None:
        raise AWSError(
            "InvalidArgument", "The x-amz-copy-source-range value must be of the form "
            "bytes=first-last where first and last are the zero-based offsets of the first and "
            "last bytes to copy", 400,
            extra={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": header},
        )
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= size:
        raise AWSError(
            "InvalidArgument", f"Range specified is not valid for source object of size: {size}",
            400, extra={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": header},
        )
    return first, last + 1



def part_checksum(state: Mapping[str, Any], part_number: int) -> dict[str, str] | None:
    """The checksum GetObject/HeadObject answer for part ``part_number`` of a multipart object.

    A part is answered with its own checksum (of the object's algorithm), which is what a
    client can check against the bytes it receives; the object's would never match.
    """
    checksum, parts = state.get("checksum"), state.get("parts")
    if checksum is None or not parts or parts[part_number - 1]["checksum"] is None:
        return None
    return {**checksum, "value": parts[part_number - 1]["checksum"]}
