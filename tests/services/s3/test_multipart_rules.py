"""S3's multipart rules, pure: checksum modes, Complete's part checks, ETags and checksums."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from awscrt import checksums as crt

from zeronode.aws.checksums import checksum_of
from zeronode.aws.errors import AWSError
from zeronode.services.s3.multipart_rules import (
    MIN_PART_SIZE,
    ChecksumMode,
    check_complete_claims,
    check_part_checksum,
    check_part_number,
    checksum_mode,
    combine_crcs,
    copy_source_range,
    multipart_etag,
    object_checksum,
    part_algorithms,
    part_checksum,
    select_parts,
)

DEFAULT = ChecksumMode("CRC64NVME", "FULL_OBJECT", requested=False)
CRC32_COMPOSITE = ChecksumMode("CRC32", "COMPOSITE", requested=True)


def code(exc_info: pytest.ExceptionInfo[AWSError]) -> str:
    return exc_info.value.code


def part(data_size: int, etag: str, checksum: str = "AAAAAA==") -> dict:
    return {"size": data_size, "etag": etag, "checksum": {"algorithm": "CRC32", "value": checksum}}


# -- checksum modes ----------------------------------------------------------------------------


def test_checksum_mode_defaults() -> None:
    assert checksum_mode(None, None) == DEFAULT
    assert checksum_mode("CRC32", None) == CRC32_COMPOSITE
    assert checksum_mode("SHA256", None) == ChecksumMode("SHA256", "COMPOSITE", True)
    assert checksum_mode("CRC64NVME", None) == ChecksumMode("CRC64NVME", "FULL_OBJECT", True)
    assert checksum_mode("CRC32C", "FULL_OBJECT") == ChecksumMode("CRC32C", "FULL_OBJECT", True)
    assert ChecksumMode.from_state(CRC32_COMPOSITE.to_state()) == CRC32_COMPOSITE


@pytest.mark.parametrize("algorithm, checksum_type", [
    ("SHA1", "FULL_OBJECT"), ("SHA256", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE"), (None, "COMPOSITE"),
])
def test_checksum_mode_refuses_combinations_s3_does_not_support(algorithm, checksum_type) -> None:
    with pytest.raises(AWSError) as exc:
        checksum_mode(algorithm, checksum_type)
    assert code(exc) == "InvalidRequest"


def test_part_checksum_must_match_the_upload() -> None:
    check_part_checksum(DEFAULT, None)
    check_part_checksum(DEFAULT, "SHA1")  # no algorithm asked for: any checksum is fine
    check_part_checksum(CRC32_COMPOSITE, "CRC32")
    check_part_checksum(ChecksumMode("CRC32", "FULL_OBJECT", True), None)
    for sent in (None, "CRC32C"):
        with pytest.raises(AWSError) as exc:
            check_part_checksum(CRC32_COMPOSITE, sent)
        assert code(exc) == "InvalidRequest"
        assert "Checksum Type mismatch" in exc.value.message
    assert part_algorithms(CRC32_COMPOSITE, "CRC32") == ("CRC32",)
    assert part_algorithms(DEFAULT, "SHA1") == ("CRC64NVME", "SHA1")


@pytest.mark.parametrize("number", [0, -1, 10_001])
def test_part_numbers_outside_1_to_10000(number) -> None:
    with pytest.raises(AWSError) as exc:
        check_part_number(number)
    assert code(exc) == "InvalidArgument"
    check_part_number(1)
    check_part_number(10_000)


# -- Complete's part list ----------------------------------------------------------------------


BIG = MIN_PART_SIZE
UPLOADED = {1: part(BIG, "a" * 32), 2: part(BIG, "b" * 32), 3: part(10, "c" * 32), 5: part(BIG, "d" * 32)}


def test_select_parts_in_order_quoted_or_not() -> None:
    chosen = select_parts("u", [
        {"PartNumber": 1, "ETag": '"' + "a" * 32 + '"'},
        {"PartNumber": 2, "ETag": "b" * 32},
        {"PartNumber": 3, "ETag": "c" * 32},
    ], UPLOADED, DEFAULT)
    assert [number for number, _ in chosen] == [1, 2, 3]


def test_select_parts_may_skip_numbers_without_composite_checksums() -> None:
    chosen = select_parts("u", [{"PartNumber": 2, "ETag": "b" * 32}, {"PartNumber": 5, "ETag": "d" * 32}],
                          UPLOADED, DEFAULT)
    assert [number for number, _ in chosen] == [2, 5]


@pytest.mark.parametrize("parts, expected", [
    ([], "MalformedXML"),
    ([{"ETag": "a" * 32}], "MalformedXML"),
    ([{"PartNumber": 10_001, "ETag": "a" * 32}], "InvalidArgument"),
    ([{"PartNumber": 2, "ETag": "b" * 32}, {"PartNumber": 1, "ETag": "a" * 32}], "InvalidPartOrder"),
    ([{"PartNumber": 1, "ETag": "a" * 32}, {"PartNumber": 1, "ETag": "a" * 32}], "InvalidPartOrder"),
    ([{"PartNumber": 1, "ETag": "f" * 32}], "InvalidPart"),
    ([{"PartNumber": 4, "ETag": "a" * 32}], "InvalidPart"),
    ([{"PartNumber": 3, "ETag": "c" * 32}, {"PartNumber": 5, "ETag": "d" * 32}], "EntityTooSmall"),
])
def test_select_parts_errors(parts, expected) -> None:
    with pytest.raises(AWSError) as exc:
        select_parts("u", parts, UPLOADED, DEFAULT)
    assert code(exc) == expected


def test_entity_too_small_names_the_part() -> None:
    with pytest.raises(AWSError) as exc:
        select_parts("u", [{"PartNumber": 3, "ETag": "c" * 32}, {"PartNumber": 5, "ETag": "d" * 32}],
                     UPLOADED, DEFAULT)
    assert exc.value.extra["PartNumber"] == "3"
    assert exc.value.extra["ProposedSize"] == "10"
    assert exc.value.extra["MinSizeAllowed"] == str(MIN_PART_SIZE)


def test_composite_uploads_need_every_checksum_and_consecutive_parts() -> None:
    uploaded = {1: part(BIG, "a" * 32, "AAAAAQ=="), 2: part(10, "b" * 32, "AAAAAg==")}
    good = [{"PartNumber": 1, "ETag": "a" * 32, "ChecksumCRC32": "AAAAAQ=="},
            {"PartNumber": 2, "ETag": "b" * 32, "ChecksumCRC32": "AAAAAg=="}]
    assert len(select_parts("u", good, uploaded, CRC32_COMPOSITE)) == 2
    with pytest.raises(AWSError) as exc:
        select_parts("u", [good[0], {"PartNumber": 2, "ETag": "b" * 32}], uploaded, CRC32_COMPOSITE)
    assert code(exc) == "InvalidRequest" and "missing for part 2" in exc.value.message
    with pytest.raises(AWSError) as exc:
        select_parts("u", [good[0], {**good[1], "ChecksumCRC32": "AAAAAw=="}], uploaded, CRC32_COMPOSITE)
    assert code(exc) == "InvalidPart"
    with pytest.raises(AWSError) as exc:
        select_parts("u", [good[1]], uploaded, CRC32_COMPOSITE)
    assert code(exc) == "InvalidPartOrder"


# -- ETag and checksums ------------------------------------------------------------------------


def test_multipart_etag_is_md5_of_part_md5s() -> None:
    chunks = [b"x" * 100, b"y" * 50, b"z"]
    etags = [hashlib.md5(c).hexdigest() for c in chunks]
    expected = hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest()
    assert multipart_etag(etags) == f"{expected}-3"


def test_composite_checksum_is_checksum_of_checksums() -> None:
    chunks = [b"first part", b"second", b"3"]
    values = [checksum_of("SHA256", c) for c in chunks]
    digest = hashlib.sha256(b"".join(base64.b64decode(v) for v in values)).digest()
    result = object_checksum(ChecksumMode("SHA256", "COMPOSITE", True), [(v, 1) for v in values])
    assert result == {"algorithm": "SHA256", "type": "COMPOSITE",
                      "value": base64.b64encode(digest).decode() + "-3"}


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_crc_is_the_crc_of_all_bytes(algorithm) -> None:
    chunks = [bytes(range(256)) * 40, b"hello world", b"", b"\x00" * 7]
    parts = [(checksum_of(algorithm, c), len(c)) for c in chunks]
    assert combine_crcs(algorithm, parts) == checksum_of(algorithm, b"".join(chunks))


def test_crc_helpers_agree_with_zlib() -> None:
    assert crt.combine_crc32(zlib.crc32(b"ab"), zlib.crc32(b"cd"), 2) == zlib.crc32(b"abcd")


def test_complete_claims() -> None:
    mode = CRC32_COMPOSITE
    checksum = {"algorithm": "CRC32", "value": "AAAAAQ==-2", "type": "COMPOSITE"}
    check_complete_claims(mode, checksum, 10, {})
    check_complete_claims(mode, checksum, 10, {"ChecksumCRC32": "AAAAAQ==-2", "MpuObjectSize": 10,
                                               "ChecksumType": "COMPOSITE"})
    check_complete_claims(mode, checksum, 10, {"ChecksumCRC32": "AAAAAQ=="})
    for claims, expected in [
        ({"ChecksumCRC32": "AAAAAg==-2"}, "BadDigest"),
        ({"ChecksumSHA1": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, "InvalidRequest"),
        ({"MpuObjectSize": 11}, "InvalidRequest"),
        ({"ChecksumType": "FULL_OBJECT"}, "InvalidRequest"),
    ]:
        with pytest.raises(AWSError) as exc:
            check_complete_claims(mode, checksum, 10, claims)
        assert code(exc) == expected


@pytest.mark.parametrize("header, size, expected", [
    (None, 10, (0, 10)),
    ("bytes=0-9", 10, (0, 10)),
    ("bytes=3-3", 10, (3, 4)),
])
def test_copy_source_range(header, size, expected) -> None:
    assert copy_source_range(header, size) == expected


@pytest.mark.parametrize("header", ["0-9", "bytes=0-", "bytes=-5", "bytes=a-b", "bytes=0-1,3-4",
                                    "bytes=0-10", "bytes=5-4"])
def test_copy_source_range_refused(header) -> None:
    with pytest.raises(AWSError) as exc:
        copy_source_range(header, 10)
    assert code(exc) == "InvalidArgument"


def test_a_part_is_answered_with_its_own_checksum() -> None:
    state = {"checksum": {"algorithm": "CRC32", "value": "AAAAAQ==-2", "type": "COMPOSITE"},
             "parts": [{"size": 5, "checksum": "AAAAAg=="}, {"size": 1, "checksum": "AAAAAw=="}]}
    assert part_checksum(state, 2) == {"algorithm": "CRC32", "value": "AAAAAw==", "type": "COMPOSITE"}
    assert part_checksum({"checksum": None, "parts": state["parts"]}, 1) is None
