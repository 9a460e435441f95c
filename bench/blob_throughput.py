"""Micro-benchmark: 1 GiB through the blob store in-process, write then read.

    python bench/blob_throughput.py [--size-mib 1024] [--repeat 3] [--dir DIR]
                                    [--no-drop-cache] [--single-lane] [--checksums CRC32]

The source is an async generator yielding fresh 64 KiB ``bytes`` (as a socket would), MD5 plus
the requested checksums are computed, and every write ends durable (fsync + rename + dir
fsync). Reads are timed cold (the blob's pages evicted with ``POSIX_FADV_DONTNEED`` first) and
warm (right after a full read). Peak RSS is the process high-water mark (``ru_maxrss``), printed
next to the baseline before the first write; run one configuration per process to compare.

``--single-lane`` moves MD5 into the disk lane (one thread per block instead of two) and
``--no-drop-cache`` turns off the write-side page-cache hint: they exist to re-measure the two
choices ``zeronode/storage/sink.py`` documents.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zeronode.storage import BlobRef, BlobStore, open_blob_store
from zeronode.storage.sink import BlobSink, Block

MiB = 1 << 20
CHUNK = 64 << 10


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _source(total: int, pattern: bytes) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        for offset in range(0, len(pattern), CHUNK):
            if sent >= total:
                return
            piece = pattern[offset : offset + min(CHUNK, total - sent)]  # a fresh copy
            sent += len(piece)
            yield piece


def _evict(store: BlobStore, ref: BlobRef) -> None:
    path = store._disks[ref.disk].blob_path(ref.blob)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


async def _read_all(store: BlobStore, ref: BlobRef) -> float:
    started = time.perf_counter()
    total = 0
    async with store.read(ref) as blocks:
        async for block in blocks:
            total += len(block)
    assert total == ref.size
    return time.perf_counter() - started


def _single_lane() -> None:
    """Fold MD5 into the disk lane, for comparison with the default two lanes."""
    write_block = BlobSink.write_block

    def write_and_md5(self: BlobSink, block: Block) -> None:
        write_block(self, block)
        for data in block:
            self._md5.update(data)

    def nothing(self: BlobSink, block: Block) -> None:
        return None

    BlobSink.write_block = write_and_md5  # type: ignore[method-assign]
    BlobSink.md5_block = nothing  # type: ignore[method-assign]


async def main(args: argparse.Namespace) -> None:
    size = args.size_mib * MiB
    pattern = os.urandom(MiB)
    base = Path(args.dir) if args.dir else None
    with tempfile.TemporaryDirectory(dir=base) as root:
        async with open_blob_store(
            [Path(root)], node_id="bench", drop_cache=not args.no_drop_cache
        ) as store:
            print(
                f"baseline rss {_rss_mib():.0f} MiB; {args.size_mib} MiB per run; "
                f"drop_cache={not args.no_drop_cache} lanes={1 if args.single_lane else 2} "
                f"checksums=MD5+{','.join(args.checksums) or '-'}"
            )
            for run in range(args.repeat):
                started = time.perf_counter()
                written = await store.write(
                    _source(size, pattern), checksums=args.checksums, expected_size=size
                )
                put = time.perf_counter() - started
                await trio.to_thread.run_sync(_evict, store, written.ref)
                cold = await _read_all(store, written.ref)
                warm = await _read_all(store, written.ref)
                mib = size / MiB
                print(
                    f"run {run}: write {mib / put:7.0f} MiB/s  read cold {mib / cold:7.0f} "
                    f"MiB/s  read warm {mib / warm:7.0f} MiB/s  peak rss {_rss_mib():.0f} MiB"
                )
                await store.delete(written.ref)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dir", help="where the disk lives (default: the system temp dir)"
    )
    parser.add_argument("--no-drop-cache", action="store_true")
    parser.add_argument("--single-lane", action="store_true")
    parser.add_argument("--checksums", nargs="*", default=["CRC32"])
    arguments = parser.parse_args()
    if arguments.single_lane:
        _single_lane()
    trio.run(main, arguments)
