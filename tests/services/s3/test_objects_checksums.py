"""Content-MD5 and flexible checksums (header form) through boto3: stored, returned, refused."""

from __future__ import annotations

import base64
import hashlib

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of, s3_client
from tests.services.s3.test_objects_raw_http import blob_files
from zeronode.aws.checksums import checksum_of

BUCKET = "sums"
BODY = b"The quick brown fox jumps over the lazy dog"


def stored_checksums(client, key: str) -> dict[str, str]:
    head = client.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    return {k: v for k, v in head.items() if k.startswith("Checksum")}


def test_boto3_default_crc32_is_stored_and_returned_with_checksum_mode(s3b) -> None:
    put = s3b.put_object(Bucket=BUCKET, Key="k", Body=BODY)
    crc = checksum_of("CRC32", BODY)
    assert put["ChecksumCRC32"] == crc
    assert stored_checksums(s3b, "k") == {"ChecksumCRC32": crc, "ChecksumType": "FULL_OBJECT"}
    got = s3b.get_object(Bucket=BUCKET, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc
    assert got["Body"].read() == BODY
    # without ChecksumMode no checksum is sent
    assert "ChecksumCRC32" not in s3b.head_object(Bucket=BUCKET, Key="k")


def test_each_algorithm(s3b) -> None:
    for algorithm in ("CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        s3b.put_object(Bucket=BUCKET, Key=algorithm, Body=BODY, ChecksumAlgorithm=algorithm)
        assert stored_checksums(s3b, algorithm) == {
            f"Checksum{algorithm}": checksum_of(algorithm, BODY), "ChecksumType": "FULL_OBJECT"}
        # a precomputed value is checked and kept
        value = checksum_of(algorithm, BODY)
        s3b.put_object(Bucket=BUCKET, Key=f"{algorithm}-pre", Body=BODY,
                       **{f"Checksum{algorithm}": value})
        assert stored_checksums(s3b, f"{algorithm}-pre")[f"Checksum{algorithm}"] == value


def test_no_checksum_at_all_gets_crc64nvme(agent) -> None:
    client = s3_client(agent, request_checksum_calculation="when_required")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="plain", Body=BODY)
    assert stored_checksums(client, "plain") == {
        "ChecksumCRC64NVME": checksum_of("CRC64NVME", BODY), "ChecksumType": "FULL_OBJECT"}


def test_content_md5(s3b) -> None:
    good = base64.b64encode(hashlib.md5(BODY).digest()).decode()
    s3b.put_object(Bucket=BUCKET, Key="md5", Body=BODY, ContentMD5=good)
    assert s3b.get_object(Bucket=BUCKET, Key="md5")["Body"].read() == BODY


def test_wrong_digests_are_refused_and_nothing_is_stored(s3b, agent) -> None:
    s3b.put_object(Bucket=BUCKET, Key="kept", Body=b"original")
    other_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    cases = [
        ({"ContentMD5": other_md5}, ("BadDigest", 400)),
        ({"ContentMD5": "not base64!"}, ("InvalidDigest", 400)),
        ({"ContentMD5": base64.b64encode(b"short").decode()}, ("InvalidDigest", 400)),
        ({"ChecksumSHA256": checksum_of("SHA256", b"other")}, ("BadDigest", 400)),
        ({"ChecksumCRC32C": checksum_of("CRC32C", b"other")}, ("BadDigest", 400)),
        ({"ChecksumCRC64NVME": checksum_of("CRC64NVME", b"other")}, ("BadDigest", 400)),
        ({"ChecksumSHA1": "AAAA"}, ("InvalidRequest", 400)),  # not a SHA-1's size
        ({"ChecksumAlgorithm": "SHA1", "ChecksumSHA256": checksum_of("SHA256", BODY)},
         ("InvalidRequest", 400)),
    ]
    for key in ("kept", "new"):
        for kwargs, expected in cases:
            with pytest.raises(ClientError) as exc:
                s3b.put_object(Bucket=BUCKET, Key=key, Body=BODY, **kwargs)
            assert error_of(exc) == expected, kwargs
    assert s3b.get_object(Bucket=BUCKET, Key="kept")["Body"].read() == b"original"
    with pytest.raises(ClientError):
        s3b.head_object(Bucket=BUCKET, Key="new")
    assert len(blob_files(agent)) == 1  # only "kept": refused uploads left no bytes behind


def test_copy_keeps_or_changes_the_checksum_algorithm(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="src", Body=BODY, ChecksumAlgorithm="SHA256")
    s3b.copy_object(Bucket=BUCKET, Key="same", CopySource=f"{BUCKET}/src")
    assert stored_checksums(s3b, "same")["ChecksumSHA256"] == checksum_of("SHA256", BODY)
    out = s3b.copy_object(Bucket=BUCKET, Key="other", CopySource=f"{BUCKET}/src",
                          ChecksumAlgorithm="CRC32C")
    assert out["CopyObjectResult"]["ChecksumCRC32C"] == checksum_of("CRC32C", BODY)
    assert stored_checksums(s3b, "other")["ChecksumCRC32C"] == checksum_of("CRC32C", BODY)
    # changing only the checksum algorithm is a legal self-copy
    s3b.copy_object(Bucket=BUCKET, Key="src", CopySource=f"{BUCKET}/src",
                    ChecksumAlgorithm="CRC32")
    assert stored_checksums(s3b, "src")["ChecksumCRC32"] == checksum_of("CRC32", BODY)
