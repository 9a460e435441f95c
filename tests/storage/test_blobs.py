"""Round trips, ranges, digests, copies and deletes through the blob store."""

from __future__ import annotations

import base64
import hashlib
import random
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.storage.helpers import chunks_of, files_under
from zeronode.aws.checksums import FLEXIBLE_ALGORITHMS, checksum_of
from zeronode.storage import BLOCK_SIZE, BlobRef, BlobStore, open_blob_store

MiB = 1 << 20


@pytest.fixture
async def store(tmp_path: Path):
    async with open_blob_store([tmp_path / "disk"], node_id="node-a") as opened:
        yield opened


async def read_all(
    store: BlobStore, ref: BlobRef, start: int = 0, end: int | None = None
) -> bytes:
    parts = []
    async with store.read(ref, start, end) as blocks:
        async for block in blocks:
            assert 0 < len(block) <= BLOCK_SIZE
            parts.append(block)
    return b"".join(parts)


_example = 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    size=st.one_of(st.integers(0, 300), st.integers(0, 3 * MiB + 7)),
    cuts=st.lists(st.integers(1, 400_000), min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
async def test_round_trip_with_any_chunking(
    tmp_path: Path, size: int, cuts: list[int], seed: int
) -> None:
    global _example
    _example += 1
    data = random.Random(seed).randbytes(size)
    async with open_blob_store([tmp_path / f"disk{_example}"], node_id="n") as store:
        written = await store.write(
            chunks_of(data, cuts), checksums=FLEXIBLE_ALGORITHMS, expected_size=size
        )
        assert written.ref.size == size
        assert written.md5 == hashlib.md5(data).digest()
        assert written.checksums == {
            a: checksum_of(a, data) for a in FLEXIBLE_ALGORITHMS
        }
        assert await read_all(store, written.ref) == data


async def test_checksums_match_hashlib_and_s3_encoding(store: BlobStore) -> None:
    data = random.Random(1).randbytes(2 * MiB + 3)
    written = await store.write(chunks_of(data), checksums=["sha256", "crc32", "SHA1"])
    assert set(written.checksums) == {"SHA256", "CRC32", "SHA1"}
    assert (
        written.checksums["SHA256"]
        == base64.b64encode(hashlib.sha256(data).digest()).decode()
    )
    assert (
        written.checksums["SHA1"]
        == base64.b64encode(hashlib.sha1(data).digest()).decode()
    )
    assert written.checksums["CRC32"] == checksum_of("CRC32", data)
    assert written.md5.hex() == hashlib.md5(data).hexdigest()


async def test_no_checksums_requested_gives_md5_only(store: BlobStore) -> None:
    written = await store.write(chunks_of(b"hello"))
    assert written.checksums == {}
    assert written.md5 == hashlib.md5(b"hello").digest()


async def test_unknown_checksum_is_refused_up_front(
    store: BlobStore, tmp_path: Path
) -> None:
    for name in ("MD5", "CRC16"):
        with pytest.raises(ValueError):
            await store.write(chunks_of(b"x"), checksums=[name])
    assert files_under(tmp_path / "disk", "tmp") == []


async def test_empty_object(store: BlobStore) -> None:
    written = await store.write(chunks_of(b""), expected_size=0)
    assert written.ref.size == 0
    assert written.md5 == hashlib.md5(b"").digest()
    assert store.has(written.ref)
    assert await read_all(store, written.ref) == b""


async def test_bytes_like_chunks_are_copied_before_the_caller_reuses_them(
    store: BlobStore,
) -> None:
    buffer = bytearray(100_000)

    async def reusing_source():
        for fill in (1, 2, 3):
            buffer[:] = bytes([fill]) * len(buffer)
            yield buffer
            yield memoryview(buffer)[:10]

    written = await store.write(reusing_source())
    expected = b"".join(bytes([f]) * 100_000 + bytes([f]) * 10 for f in (1, 2, 3))
    assert await read_all(store, written.ref) == expected


SIZE = 2 * MiB + MiB // 2


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, SIZE),
        (0, 0),
        (SIZE, SIZE),
        (0, 1),
        (SIZE - 1, SIZE),
        (MiB - 1, MiB + 1),
        (MiB, 2 * MiB),
        (12345, SIZE - 54321),
    ],
)
async def test_ranges(store: BlobStore, start: int, end: int | None) -> None:
    data = random.Random(7).randbytes(SIZE)
    written = await store.write(chunks_of(data))
    assert await read_all(store, written.ref, start, end) == data[start:end]


@pytest.mark.parametrize(
    ("start", "end"), [(-1, 5), (5, 4), (0, SIZE + 1), (SIZE + 1, SIZE + 1)]
)
async def test_range_outside_the_blob_is_a_caller_error(
    store: BlobStore, start: int, end: int
) -> None:
    written = await store.write(chunks_of(bytes(SIZE)))
    with pytest.raises(ValueError):
        store.read(written.ref, start, end)


async def test_reader_closes_its_file_when_closed_early(store: BlobStore) -> None:
    written = await store.write(chunks_of(bytes(3 * MiB)))
    reader = store.read(written.ref)
    assert len(await reader.__anext__()) == MiB
    assert reader._fd is not None
    await reader.aclose()
    assert reader._fd is None
    with pytest.raises(StopAsyncIteration):
        await reader.__anext__()


async def test_reader_closes_its_file_when_exhausted(store: BlobStore) -> None:
    written = await store.write(chunks_of(bytes(MiB + 1)))
    reader = store.read(written.ref)
    blocks = [block async for block in reader]
    assert [len(b) for b in blocks] == [MiB, 1]
    assert reader._fd is None


async def test_copy_a_range_into_a_new_blob(store: BlobStore) -> None:
    data = random.Random(3).randbytes(3 * MiB)
    source = await store.write(chunks_of(data))
    part = await store.copy(source.ref, MiB - 10, 2 * MiB + 10, checksums=["CRC32C"])
    expected = data[MiB - 10 : 2 * MiB + 10]
    assert part.ref.blob != source.ref.blob
    assert part.ref.size == len(expected)
    assert part.md5 == hashlib.md5(expected).digest()
    assert part.checksums == {"CRC32C": checksum_of("CRC32C", expected)}
    assert await read_all(store, part.ref) == expected
    whole = await store.copy(source.ref)
    assert whole.md5 == hashlib.md5(data).digest()


async def test_delete_is_idempotent(store: BlobStore) -> None:
    written = await store.write(chunks_of(b"bye"))
    assert store.has(written.ref)
    await store.delete(written.ref)
    assert not store.has(written.ref)
    await store.delete(written.ref)
    await store.delete(BlobRef(written.ref.disk, "0" * 32, 3))


async def test_has_checks_the_size(store: BlobStore) -> None:
    written = await store.write(chunks_of(b"12345"))
    assert store.has(written.ref)
    assert not store.has(BlobRef(written.ref.disk, written.ref.blob, 4))


async def test_blob_ids_are_random_hex_and_laid_out_by_prefix(
    store: BlobStore, tmp_path: Path
) -> None:
    first = await store.write(chunks_of(b"same"))
    second = await store.write(chunks_of(b"same"))
    assert first.ref.blob != second.ref.blob
    for ref in (first.ref, second.ref):
        assert len(ref.blob) == 32 and int(ref.blob, 16) >= 0
        assert (
            tmp_path / "disk" / "blobs" / ref.blob[:2] / ref.blob
        ).read_bytes() == b"same"


def test_blob_ref_round_trips_through_msgpack() -> None:
    ref = BlobRef("ab" * 16, "cd" * 16, 12)
    assert BlobRef.from_dict(msgpack.unpackb(msgpack.packb(ref.to_dict()))) == ref
