"""S3 checksums: known vectors, and agreement with botocore's own checksum code."""

from __future__ import annotations

import base64

import pytest
from botocore import httpchecksum
from hypothesis import given, settings
from hypothesis import strategies as st

from zeronode.aws import checksums

# The CRC "check" values (input b"123456789") from the CRC catalogue, and the FIPS/RFC
# vectors for b"abc".
KNOWN = [
    ("CRC32", b"123456789", "cbf43926"),
    ("CRC32C", b"123456789", "e3069283"),
    ("CRC64NVME", b"123456789", "ae8b14860a799888"),
    ("SHA1", b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("SHA256", b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("MD5", b"abc", "900150983cd24fb0d6963f7d28e17f72"),
]


@pytest.mark.parametrize(("algorithm", "data", "hex_digest"), KNOWN)
def test_known_vectors(algorithm: str, data: bytes, hex_digest: str) -> None:
    c = checksums.new_checksum(algorithm)
    c.update(data)
    assert c.hexdigest() == hex_digest
    assert c.b64digest() == base64.b64encode(bytes.fromhex(hex_digest)).decode()


@pytest.mark.parametrize(("algorithm", "data", "hex_digest"), KNOWN)
def test_pieces_give_the_same_digest(algorithm: str, data: bytes, hex_digest: str) -> None:
    c = checksums.new_checksum(algorithm.lower())
    for i in range(len(data)):
        c.update(data[i:i + 1])
    assert c.hexdigest() == hex_digest


def test_empty_crc_is_zero_bytes() -> None:
    assert checksums.checksum_of("CRC32", b"") == "AAAAAA=="
    assert checksums.checksum_of("CRC64NVME", b"") == "AAAAAAAAAAA="


def test_hello_world_crc32_as_botocore_sent_it_over_https() -> None:
    # Captured from botocore 1.44's aws-chunked trailer (research A3).
    assert checksums.checksum_of("CRC32", b"hello world") == "DUoRhQ=="


BOTOCORE = {
    "CRC32": httpchecksum.Crc32Checksum,
    "CRC32C": httpchecksum.CrtCrc32cChecksum,
    "CRC64NVME": httpchecksum.CrtCrc64NvmeChecksum,
    "SHA1": httpchecksum.Sha1Checksum,
    "SHA256": httpchecksum.Sha256Checksum,
}


@settings(max_examples=200)
@given(
    algorithm=st.sampled_from(sorted(BOTOCORE)),
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
)
def test_agrees_with_botocore(algorithm: str, data: bytes, cuts: list[int]) -> None:
    reference = BOTOCORE[algorithm]()
    reference.update(data)
    ours = checksums.new_checksum(algorithm)
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for start, stop in zip(bounds, bounds[1:]):
        ours.update(data[start:stop])
    assert ours.b64digest() == reference.b64digest()
    assert ours.digest() == reference.digest()


def test_accepts_memoryview_and_bytearray() -> None:
    for algorithm in checksums.ALGORITHMS:
        a = checksums.new_checksum(algorithm)
        a.update(memoryview(b"abc"))
        a.update(bytearray(b"def"))
        assert a.b64digest() == checksums.checksum_of(algorithm, b"abcdef")


def test_header_table() -> None:
    assert checksums.CHECKSUM_HEADERS == {
        "x-amz-checksum-crc32": "CRC32",
        "x-amz-checksum-crc32c": "CRC32C",
        "x-amz-checksum-crc64nvme": "CRC64NVME",
        "x-amz-checksum-sha1": "SHA1",
        "x-amz-checksum-sha256": "SHA256",
    }
    assert checksums.algorithm_for_header("X-Amz-Checksum-CRC32C") == "CRC32C"
    assert checksums.algorithm_for_header("content-md5") is None
    assert checksums.algorithm_for_header("x-amz-checksum-md5") is None
    for algorithm in checksums.FLEXIBLE_ALGORITHMS:
        assert checksums.algorithm_for_header(checksums.header_for_algorithm(algorithm)) == algorithm


def test_md5_has_no_checksum_header() -> None:
    with pytest.raises(ValueError):
        checksums.header_for_algorithm("MD5")


def test_unknown_algorithm() -> None:
    with pytest.raises(ValueError):
        checksums.new_checksum("XXHASH64")


@pytest.mark.parametrize(
    ("algorithm", "value", "valid"),
    [
        ("CRC32", "DUoRhQ==", True),
        ("CRC32", " DUoRhQ== ", True),
        ("CRC32", "DUoRhQ", False),  # missing padding
        ("CRC32", "DUoR", False),  # 3 bytes
        ("CRC32", "AAAAAAAAAAA=", False),  # 8 bytes: a CRC64 in a CRC32 header
        ("CRC64NVME", "AAAAAAAAAAA=", True),
        ("SHA256", "not base64!", False),
        ("SHA1", base64.b64encode(b"x" * 20).decode(), True),
    ],
)
def test_decode_b64_digest(algorithm: str, value: str, valid: bool) -> None:
    decoded = checksums.decode_b64_digest(algorithm, value)
    assert (decoded is not None) == valid
