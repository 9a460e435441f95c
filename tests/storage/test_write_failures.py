"""A failed or abandoned write leaves nothing behind, and says why in AWS terms."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest
import trio

from tests.storage.helpers import assert_nothing_left, chunks_of
from zeronode.aws.errors import AWSError
from zeronode.storage import BlobStore, open_blob_store

MiB = 1 << 20


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    return tmp_path / "disk"


@pytest.fixture
async def store(disk: Path):
    async with open_blob_store([disk], node_id="node-a") as opened:
        yield opened


@pytest.mark.parametrize("actual", [0, 3 * MiB - 1, 3 * MiB + 1, 5 * MiB])
async def test_expected_size_mismatch_is_incomplete_body(
    store: BlobStore, disk: Path, actual: int
) -> None:
    with pytest.raises(AWSError) as raised:
        await store.write(chunks_of(bytes(actual)), expected_size=3 * MiB)
    assert (raised.value.code, raised.value.status) == ("IncompleteBody", 400)
    assert raised.value.message.startswith("You did not provide the number of bytes")
    assert_nothing_left(disk)


async def test_over_max_size_fails_as_soon_as_exceeded(
    store: BlobStore, disk: Path
) -> None:
    received = 0

    async def endless():
        nonlocal received
        while True:
            received += 64 << 10
            yield bytes(64 << 10)

    with pytest.raises(AWSError) as raised:
        await store.write(endless(), max_size=2 * MiB)
    assert (raised.value.code, raised.value.status) == ("EntityTooLarge", 400)
    assert received == 2 * MiB + (64 << 10)
    assert_nothing_left(disk)


async def test_declared_size_over_max_fails_before_reading(
    store: BlobStore, disk: Path
) -> None:
    async def must_not_be_read():
        raise AssertionError("read")
        yield b""

    with pytest.raises(AWSError, match="EntityTooLarge"):
        await store.write(must_not_be_read(), expected_size=11, max_size=10)
    assert_nothing_left(disk)


async def test_exactly_max_size_is_fine(store: BlobStore) -> None:
    written = await store.write(chunks_of(bytes(MiB)), max_size=MiB, expected_size=MiB)
    assert written.ref.size == MiB


class ClientWentAway(Exception):
    pass


@pytest.mark.parametrize("after", [0, 1, 40])
async def test_stream_error_propagates_unwrapped_and_leaves_nothing(
    store: BlobStore, disk: Path, after: int
) -> None:
    async def failing():
        for _ in range(after):
            yield bytes(64 << 10)
        raise ClientWentAway()

    with pytest.raises(ClientWentAway):
        await store.write(failing(), checksums=["CRC32"])
    assert_nothing_left(disk)


async def test_aws_error_from_the_stream_is_passed_through(
    store: BlobStore, disk: Path
) -> None:
    async def bad_signature():
        yield bytes(3 * MiB)
        raise AWSError("SignatureDoesNotMatch", "chunk signature", 403)

    with pytest.raises(AWSError) as raised:
        await store.write(bad_signature())
    assert raised.value.code == "SignatureDoesNotMatch"
    assert_nothing_left(disk)


async def test_stream_oserror_is_not_reported_as_a_disk_failure(
    store: BlobStore, disk: Path
) -> None:
    async def reset():
        yield b"x"
        raise ConnectionResetError()

    with pytest.raises(ConnectionResetError):
        await store.write(reset())
    assert_nothing_left(disk)


@pytest.mark.parametrize("after", [0, 5, 50])
async def test_cancellation_mid_write_leaves_nothing(
    store: BlobStore, disk: Path, after: int
) -> None:
    with trio.CancelScope() as scope:

        async def stalls():
            for _ in range(after):
                yield bytes(64 << 10)
            scope.cancel()
            await trio.sleep_forever()
            yield b""

        await store.write(stalls())
    assert scope.cancelled_caught
    assert_nothing_left(disk)


async def test_cancellation_from_outside_with_a_deadline(
    store: BlobStore, disk: Path
) -> None:
    async def slow():
        while True:
            yield bytes(256 << 10)
            await trio.sleep(0.001)

    with trio.move_on_after(0.1) as scope:
        await store.write(slow())
    assert scope.cancelled_caught
    assert_nothing_left(disk)


async def test_disk_full_is_insufficient_storage(
    store: BlobStore, disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, buffers: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(AWSError) as raised:
        await store.write(chunks_of(bytes(3 * MiB)))
    assert (raised.value.code, raised.value.status) == ("InsufficientStorage", 507)
    assert_nothing_left(disk)


async def test_other_disk_errors_are_internal_errors(
    store: BlobStore, disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(AWSError) as raised:
        await store.write(chunks_of(b"data"))
    assert (raised.value.code, raised.value.status) == ("InternalError", 500)
    monkeypatch.undo()
    assert_nothing_left(disk)


async def test_an_upload_that_cannot_fit_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    async def must_not_be_read():
        raise AssertionError("read")
        yield b""

    async with open_blob_store(
        [tmp_path / "d"], node_id="n", space=lambda p: (100, 10)
    ) as store:
        with pytest.raises(AWSError) as raised:
            await store.write(must_not_be_read(), expected_size=11)
        assert raised.value.code == "InsufficientStorage"
        assert_nothing_left(tmp_path / "d")


# -- the small-body path: a body of at most one block is written in a single worker call --


@pytest.mark.parametrize("actual", [0, 4095, 4097, MiB + 1])
async def test_small_body_of_the_wrong_length_is_refused_with_nothing_on_disk(
    store: BlobStore, disk: Path, actual: int
) -> None:
    with pytest.raises(AWSError) as raised:
        await store.write(chunks_of(bytes(actual), [1000]), expected_size=4096)
    assert (raised.value.code, raised.value.status) == ("IncompleteBody", 400)
    assert_nothing_left(disk)


async def test_small_body_whose_stream_fails_at_its_end_leaves_nothing(
    store: BlobStore, disk: Path
) -> None:
    async def hash_mismatch_at_end():
        yield bytes(4096)
        raise AWSError("XAmzContentSHA256Mismatch", "mismatch", 400)

    with pytest.raises(AWSError) as raised:
        await store.write(hash_mismatch_at_end(), expected_size=4096)
    assert raised.value.code == "XAmzContentSHA256Mismatch"
    assert_nothing_left(disk)


async def test_small_body_over_max_size_is_too_large(store: BlobStore, disk: Path) -> None:
    with pytest.raises(AWSError) as raised:
        await store.write(chunks_of(bytes(11)), expected_size=10, max_size=10)
    assert raised.value.code == "EntityTooLarge"
    assert_nothing_left(disk)


async def test_small_body_disk_failure_removes_the_temp_file(
    store: BlobStore, disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(AWSError) as raised:
        await store.write(chunks_of(bytes(4096)), expected_size=4096)
    assert (raised.value.code, raised.value.status) == ("InternalError", 500)
    monkeypatch.undo()
    assert_nothing_left(disk)


async def test_small_body_takes_one_worker_call(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = 0
    run_sync = trio.to_thread.run_sync

    async def counting(*args, **kwargs):
        nonlocal hops
        hops += 1
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(trio.to_thread, "run_sync", counting)
    written = await store.write(chunks_of(bytes(4096)), expected_size=4096)
    assert hops == 1
    reader = store.read(written.ref)
    assert [len(block) async for block in reader] == [4096]
    assert hops == 2  # the read: open, pread and close in one call


@pytest.mark.parametrize("size", [0, 4096, 3 * MiB + 5])  # fast path and pipeline
@pytest.mark.parametrize("declared", [True, False])
async def test_signed_sha256_is_checked_before_anything_is_durable(
    store: BlobStore, disk: Path, size: int, declared: bool
) -> None:
    data = os.urandom(size)
    expected_size = size if declared else None
    wrong = hashlib.sha256(data + b"x").hexdigest()
    with pytest.raises(AWSError) as raised:
        await store.write(chunks_of(data), expected_size=expected_size, expected_sha256=wrong)
    err = raised.value
    assert (err.code, err.status) == ("XAmzContentSHA256Mismatch", 400)
    assert err.message == (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )
    assert err.extra == {"ClientComputedContentSHA256": wrong,
                         "S3ComputedContentSHA256": hashlib.sha256(data).hexdigest()}
    assert_nothing_left(disk)

    right = hashlib.sha256(data).hexdigest().upper()  # compared case-insensitively
    written = await store.write(
        chunks_of(data), expected_size=expected_size, expected_sha256=right, checksums=["CRC32"]
    )
    assert written.ref.size == size
    assert written.md5 == hashlib.md5(data).digest()
    assert b"".join([block async for block in store.read(written.ref)]) == data
