"""S3 multipart uploads through boto3 against a real agent."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
import zlib
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of, s3_client

MiB = 1024 * 1024
PART = 5 * MiB


def blob_files(agent: Any) -> set[Path]:
    """The blob files on the agent's disks (a blob is never a key-named file)."""
    return {p for p in Path(agent.data_dir).rglob("*") if p.is_file() and "blobs" in p.parts}


def data(size: int, seed: int) -> bytes:
    """``size`` incompressible-looking bytes, different per ``seed``, cheap to make."""
    block = hashlib.sha256(str(seed).encode()).digest() * (64 * 1024 // 32)
    out = (block * (size // len(block) + 1))[:size]
    return bytes([seed % 256]) + out[1:] if size else b""


def upload_parts(s3: Any, bucket: str, key: str, upload_id: str, chunks: list[bytes], **kw: Any) -> list[dict]:
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        out = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                             Body=chunk, **kw)
        entry = {"PartNumber": number, "ETag": out["ETag"]}
        for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
            if name in out and kw.get("ChecksumAlgorithm", "").upper() == name[8:]:
                entry[name] = out[name]
        parts.append(entry)
    return parts


def multipart_etag(chunks: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest()
    return f'"{digest}-{len(chunks)}"'


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="mpu")
    return "mpu"


def uploads_of(s3: Any, bucket: str) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def assert_missing(s3: Any, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key=key)
    assert error_of(exc)[1] == 404


# -- the whole flow ----------------------------------------------------------------------------


def test_create_upload_complete(s3, bucket) -> None:
    chunks = [data(PART, 1), data(PART, 2), data(1000, 3)]
    created = s3.create_multipart_upload(Bucket=bucket, Key="big/object", ContentType="text/x-test",
                                         Metadata={"color": "blue"}, Tagging="a=1")
    upload_id = created["UploadId"]
    assert created["Key"] == "big/object" and "/" not in upload_id
    parts = upload_parts(s3, bucket, "big/object", upload_id, chunks)
    assert parts[0]["ETag"] == f'"{hashlib.md5(chunks[0]).hexdigest()}"'
    assert_missing(s3, bucket, "big/object")  # invisible until completed
    assert uploads_of(s3, bucket) == [upload_id]

    done = s3.complete_multipart_upload(Bucket=bucket, Key="big/object", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"] == multipart_etag(chunks)
    assert done["Key"] == "big/object" and done["Bucket"] == bucket
    assert done["Location"].endswith("/mpu/big/object")

    got = s3.get_object(Bucket=bucket, Key="big/object")
    assert got["Body"].read() == b"".join(chunks)
    assert got["ETag"] == multipart_etag(chunks)
    assert got["ContentType"] == "text/x-test" and got["Metadata"] == {"color": "blue"}
    assert got["ContentLength"] == 2 * PART + 1000
    assert s3.get_object_tagging(Bucket=bucket, Key="big/object")["TagSet"] == [{"Key": "a", "Value": "1"}]
    assert uploads_of(s3, bucket) == []

    second = s3.get_object(Bucket=bucket, Key="big/object", PartNumber=2)
    assert second["PartsCount"] == 3 and second["ContentLength"] == PART
    assert second["Body"].read() == chunks[1]
    assert s3.head_object(Bucket=bucket, Key="big/object", PartNumber=3)["ContentLength"] == 1000


def test_high_level_transfer_uses_multipart(agent, s3, bucket) -> None:
    payload = data(20 * MiB + 123, 7)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)
    s3.upload_fileobj(io.BytesIO(payload), bucket, "transfer", Config=config)
    head = s3.head_object(Bucket=bucket, Key="transfer", ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-5"')
    assert head["ContentLength"] == len(payload)
    # s3transfer asks for CRC32 on the upload, so the object has a composite CRC32.
    assert head["ChecksumCRC32"].endswith("-5") and head["ChecksumType"] == "COMPOSITE"
    out = io.BytesIO()
    s3.download_fileobj(bucket, "transfer", out, Config=config)
    assert out.getvalue() == payload
    assert uploads_of(s3, bucket) == []
    assert len(blob_files(agent)) == 5


# -- Complete's refusals leave everything as it was ----------------------------------------------


def _two_parts(s3: Any, bucket: str, key: str, sizes: tuple[int, int]) -> tuple[str, list[dict]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = upload_parts(s3, bucket, key, upload_id, [data(sizes[0], 1), data(sizes[1], 2)])
    return upload_id, parts


def _refused(s3: Any, bucket: str, key: str, upload_id: str, parts: list[dict]) -> str:
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    assert error_of(exc)[1] == 400
    # Nothing changed: no object, the upload and its parts are still there.
    assert_missing(s3, bucket, key)
    assert uploads_of(s3, bucket) == [upload_id]
    assert len(s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]) == 2
    return error_of(exc)[0]


def test_entity_too_small(s3, bucket) -> None:
    upload_id, parts = _two_parts(s3, bucket, "small", (100, 100))
    assert _refused(s3, bucket, "small", upload_id, parts) == "EntityTooSmall"


def test_invalid_part_and_order(s3, bucket) -> None:
    upload_id, parts = _two_parts(s3, bucket, "k", (PART, 10))
    wrong = [parts[0], {**parts[1], "ETag": '"' + "0" * 32 + '"'}]
    assert _refused(s3, bucket, "k", upload_id, wrong) == "InvalidPart"
    assert _refused(s3, bucket, "k", upload_id, [parts[0], {**parts[1], "PartNumber": 3}]) == "InvalidPart"
    assert _refused(s3, bucket, "k", upload_id, [parts[1], parts[0]]) == "InvalidPartOrder"
    assert _refused(s3, bucket, "k", upload_id, [parts[0], parts[0]]) == "InvalidPartOrder"
    # and then the right list still completes
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == PART + 10


def test_no_such_upload_after_abort(agent, s3, bucket) -> None:
    upload_id, parts = _two_parts(s3, bucket, "gone", (PART, 10))
    assert len(blob_files(agent)) == 2
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert blob_files(agent) == set()  # the parts' bytes are freed
    calls = [
        lambda: s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload_id, PartNumber=3, Body=b"x"),
        lambda: s3.complete_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id,
                                             MultipartUpload={"Parts": parts}),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id),
        lambda: s3.list_parts(Bucket=bucket, Key="gone", UploadId=upload_id),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("NoSuchUpload", 404)
        assert exc.value.response["Error"]["UploadId"] == upload_id
    assert blob_files(agent) == set()  # the refused UploadPart left no blob behind
    assert_missing(s3, bucket, "gone")


def test_upload_id_belongs_to_its_key_and_bucket(s3, bucket) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mine")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="other", UploadId=upload_id)
    assert error_of(exc) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket="nobucket", Key="mine", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert error_of(exc) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket="nobucket", Key="k")
    assert error_of(exc) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket=bucket, Key="k" * 1025)
    assert error_of(exc) == ("KeyTooLongError", 400)
    assert uploads_of(s3, bucket) == [upload_id]


@pytest.mark.parametrize("number", [0, 10_001])
def test_part_number_out_of_range(agent, s3, bucket, number) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=b"x")
    assert error_of(exc) == ("InvalidArgument", 400)
    assert s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id).get("Parts", []) == []
    assert blob_files(agent) == set()


def test_bad_part_checksum_stores_nothing(agent, s3, bucket) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"abc",
                       ContentMD5=base64.b64encode(hashlib.md5(b"abd").digest()).decode())
    assert error_of(exc) == ("BadDigest", 400)
    assert s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id).get("Parts", []) == []
    assert blob_files(agent) == set()


def test_reuploaded_part_replaces_the_old_one(agent, s3, bucket) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"old")
    new = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"newer")
    listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, new["ETag"], 5)]
    assert len(blob_files(agent)) == 1  # the old part's bytes are gone
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": new["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"newer"


def test_parts_left_out_of_complete_are_freed(agent, s3, bucket) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    parts = upload_parts(s3, bucket, "k", upload_id, [data(PART, 1), data(10, 2), data(10, 3)])
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts[:2]})
    assert len(blob_files(agent)) == 2
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data(PART, 1) + data(10, 2)


def test_overwrite_frees_the_replaced_object(agent, s3, bucket) -> None:
    for seed in (1, 2):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
        parts = upload_parts(s3, bucket, "k", upload_id, [data(10, seed)])
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    assert len(blob_files(agent)) == 1
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data(10, 2)


def test_a_get_in_progress_keeps_the_replaced_objects_bytes(agent, s3, bucket) -> None:
    """A long GET of a multipart object opens its later parts as the body goes: an overwrite
    and a delete meanwhile must not free them under it. Four 5 MiB parts are more than the
    loopback socket buffers hold, so the agent is still reading them when the object goes."""
    chunks = [data(PART, seed) for seed in (1, 2, 3, 4)] + [data(1000, 5)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    parts = upload_parts(s3, bucket, "k", upload_id, chunks)
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
    body = s3.get_object(Bucket=bucket, Key="k")["Body"]
    start = body.read(1024)
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    s3.delete_object(Bucket=bucket, Key="k")
    assert len(blob_files(agent)) == len(chunks)  # still being read: nothing freed yet
    assert start + body.read() == b"".join(chunks)
    body.close()
    assert_all_freed(agent)


def test_a_get_cut_off_midway_frees_its_hold(agent, s3, bucket) -> None:
    """A client that hangs up mid-body must not keep the bytes from being freed."""
    chunks = [data(PART, seed) for seed in (1, 2, 3, 4)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    parts = upload_parts(s3, bucket, "k", upload_id, chunks)
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
    body = s3.get_object(Bucket=bucket, Key="k")["Body"]
    assert body.read(1024) == chunks[0][:1024]
    s3.delete_object(Bucket=bucket, Key="k")
    assert len(blob_files(agent)) == len(chunks)
    body.close()  # drops the connection with most of the body unsent
    assert_all_freed(agent)


def assert_all_freed(agent: Any) -> None:
    deadline = time.monotonic() + 10
    while blob_files(agent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert blob_files(agent) == set()


def race(*calls: Any) -> list[str]:
    """Run ``calls`` at the same moment in threads; each one's outcome: "ok" or its error code."""
    outcomes = [""] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        try:
            calls[index]()
            outcomes[index] = "ok"
        except ClientError as error:
            outcomes[index] = error.response["Error"]["Code"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_complete_and_abort_have_one_outcome(agent, s3, bucket) -> None:
    clients = [s3_client(agent), s3_client(agent)]
    for attempt in range(4):
        key = f"race{attempt}"
        upload_id, parts = _two_parts(s3, bucket, key, (PART, 10))
        completed, aborted = race(
            partial(clients[0].complete_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts}),
            partial(clients[1].abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id),
        )
        assert sorted([completed, aborted]) == ["NoSuchUpload", "ok"]
        if completed == "ok":
            assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == PART + 10
        else:
            assert_missing(s3, bucket, key)
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert len(blob_files(agent)) == 2 * len(objects)
    assert uploads_of(s3, bucket) == []


def test_complete_if_none_match(s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"there")
    upload_id, parts = _two_parts(s3, bucket, "k", (PART, 10))
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, IfNoneMatch="*",
                                     MultipartUpload={"Parts": parts})
    assert error_of(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"there"
    assert uploads_of(s3, bucket) == [upload_id]


def test_versioned_bucket_gets_a_version(s3, bucket) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    upload_id, parts = _two_parts(s3, bucket, "k", (PART, 10))
    done = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    assert done["VersionId"] not in (None, "null")
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=done["VersionId"])
    assert head["ContentLength"] == PART + 10


# -- checksums ---------------------------------------------------------------------------------


def test_composite_crc32(s3, bucket) -> None:
    chunks = [data(PART, 4), data(77, 5)]
    created = s3.create_multipart_upload(Bucket=bucket, Key="c", ChecksumAlgorithm="CRC32")
    assert created["ChecksumAlgorithm"] == "CRC32" and created["ChecksumType"] == "COMPOSITE"
    upload_id = created["UploadId"]
    parts = upload_parts(s3, bucket, "c", upload_id, chunks, ChecksumAlgorithm="CRC32")
    listed = s3.list_parts(Bucket=bucket, Key="c", UploadId=upload_id)
    assert [p["ChecksumCRC32"] for p in listed["Parts"]] == [p["ChecksumCRC32"] for p in parts]
    assert listed["ChecksumAlgorithm"] == "CRC32"
    with pytest.raises(ClientError) as exc:  # Complete must repeat each part's checksum
        s3.complete_multipart_upload(
            Bucket=bucket, Key="c", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})
    assert error_of(exc) == ("InvalidRequest", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    crcs = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in parts)
    expected = base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode() + "-2"
    assert done["ChecksumCRC32"] == expected and done["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == expected
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(chunks)


def test_part_checksum_must_match_the_upload_algorithm(agent, s3, bucket) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="c", ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as exc:  # boto3 sends CRC32 unless told otherwise
        s3.upload_part(Bucket=bucket, Key="c", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert error_of(exc) == ("InvalidRequest", 400)
    assert s3.list_parts(Bucket=bucket, Key="c", UploadId=upload_id).get("Parts", []) == []
    assert blob_files(agent) == set()


def test_full_object_crc32c(s3, bucket) -> None:
    chunks = [data(PART, 8), data(PART, 9), data(3, 10)]
    created = s3.create_multipart_upload(Bucket=bucket, Key="f", ChecksumAlgorithm="CRC32C",
                                         ChecksumType="FULL_OBJECT")
    assert created["ChecksumType"] == "FULL_OBJECT"
    upload_id = created["UploadId"]
    parts = upload_parts(s3, bucket, "f", upload_id, chunks, ChecksumAlgorithm="CRC32C")
    whole = base64.b64encode(crt.crc32c(b"".join(chunks)).to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="f", UploadId=upload_id, ChecksumType="FULL_OBJECT",
                                     ChecksumCRC32C="AAAAAA==", MultipartUpload={"Parts": parts})
    assert error_of(exc) == ("BadDigest", 400)
    assert_missing(s3, bucket, "f")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="f", UploadId=upload_id, ChecksumType="FULL_OBJECT",
                                        ChecksumCRC32C=whole, MultipartUpload={"Parts": parts})
    assert done["ChecksumCRC32C"] == whole and done["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="f", ChecksumMode="ENABLED")  # botocore checks it
    assert got["ChecksumCRC32C"] == whole
    assert got["Body"].read() == b"".join(chunks)


def test_default_checksum_is_full_object_crc64nvme(s3, bucket) -> None:
    chunks = [data(PART, 11), data(12345, 12)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="d")["UploadId"]
    parts = upload_parts(s3, bucket, "d", upload_id, chunks)  # boto3 sends a CRC32 per part
    s3.complete_multipart_upload(Bucket=bucket, Key="d", UploadId=upload_id, MultipartUpload={"Parts": parts})
    expected = base64.b64encode(crt.crc64nvme(b"".join(chunks)).to_bytes(8, "big")).decode()
    got = s3.get_object(Bucket=bucket, Key="d", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == expected and got["ChecksumType"] == "FULL_OBJECT"
    assert got["Body"].read() == b"".join(chunks)


# -- listings ----------------------------------------------------------------------------------


def test_list_parts_pagination(s3, bucket) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="p")["UploadId"]
    parts = upload_parts(s3, bucket, "p", upload_id, [bytes([n]) * (n + 1) for n in range(5)])
    first = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2]
    assert first["IsTruncated"] and first["NextPartNumberMarker"] == 2 and first["MaxParts"] == 2
    assert first["Initiator"]["ID"] == first["Owner"]["ID"]
    assert first["StorageClass"] == "STANDARD"
    rest = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload_id, PartNumberMarker=2)
    assert [p["PartNumber"] for p in rest["Parts"]] == [3, 4, 5] and not rest["IsTruncated"]
    assert [p["ETag"] for p in rest["Parts"]] == [p["ETag"] for p in parts[2:]]
    assert [p["Size"] for p in rest["Parts"]] == [3, 4, 5]
    paged = [p["PartNumber"] for page in s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key="p", UploadId=upload_id, PaginationConfig={"PageSize": 2}) for p in page["Parts"]]
    assert paged == [1, 2, 3, 4, 5]


def test_list_multipart_uploads_pagination_and_prefixes(s3, bucket) -> None:
    keys = ["a/1", "a/2", "b", "b", "c/x/1", "d"]
    ids = [(key, s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]) for key in keys]
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == ids  # key, then initiation
    assert listed["Uploads"][0]["Initiator"]["ID"] and not listed["IsTruncated"]

    first = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=3)
    assert [(u["Key"], u["UploadId"]) for u in first["Uploads"]] == ids[:3]
    assert first["IsTruncated"] and first["NextKeyMarker"] == "b"
    assert first["NextUploadIdMarker"] == ids[2][1]
    rest = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b", UploadIdMarker=ids[2][1])
    assert [(u["Key"], u["UploadId"]) for u in rest["Uploads"]] == ids[3:]
    after_b = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b")
    assert [u["Key"] for u in after_b["Uploads"]] == ["c/x/1", "d"]

    rolled = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["a/", "c/"]
    assert [u["Key"] for u in rolled["Uploads"]] == ["b", "b", "d"]
    page1 = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/", MaxUploads=1)
    assert [p["Prefix"] for p in page1["CommonPrefixes"]] == ["a/"] and page1["NextKeyMarker"] == "a/"
    page2 = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/", MaxUploads=1, KeyMarker="a/")
    assert [u["Key"] for u in page2["Uploads"]] == ["b"]
    under = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["c/x/"] and under["Prefix"] == "c/"

    paged = [(u["Key"], u["UploadId"]) for page in s3.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}) for u in page.get("Uploads", [])]
    assert paged == ids


# -- UploadPartCopy ----------------------------------------------------------------------------


def test_upload_part_copy(s3, bucket) -> None:
    source = data(PART + 100, 20)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "src"},
                                CopySourceRange=f"bytes=0-{PART - 1}")
    assert first["CopyPartResult"]["ETag"] == f'"{hashlib.md5(source[:PART]).hexdigest()}"'
    second = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=2,
                                 CopySource=f"{bucket}/src")
    parts = [{"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
             {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == source[:PART] + source


@pytest.mark.parametrize("kwargs, expected", [
    ({"CopySourceRange": "bytes=0-100000000"}, ("InvalidArgument", 400)),
    ({"CopySourceRange": "0-5"}, ("InvalidArgument", 400)),
    ({"CopySourceIfMatch": '"nope"'}, ("PreconditionFailed", 412)),
    ({"CopySource": "mpu/absent"}, ("NoSuchKey", 404)),
])
def test_upload_part_copy_refusals(agent, s3, bucket, kwargs, expected) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    call = {"Bucket": bucket, "Key": "dst", "UploadId": upload_id, "PartNumber": 1,
            "CopySource": f"{bucket}/src", **kwargs}
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(**call)
    assert error_of(exc) == expected
    assert s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload_id).get("Parts", []) == []
    assert len(blob_files(agent)) == 1  # the source only


def test_delete_bucket_with_an_upload_in_progress_frees_it(agent, s3, bucket) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"abc")
    s3.delete_bucket(Bucket=bucket)
    assert blob_files(agent) == set()
