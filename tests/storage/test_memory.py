"""A big transfer holds a few MiB, not the object: the bound the 150 MiB agent budget needs."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

from zeronode.storage import open_blob_store

MiB = 1 << 20
TOTAL = 256 * MiB


async def network_like(total: int) -> AsyncIterator[bytes]:
    """Fresh 64 KiB bytes objects, as a socket hands them over."""
    pattern = os.urandom(MiB)
    sent = 0
    while sent < total:
        for offset in range(0, MiB, 64 << 10):
            yield pattern[offset : offset + (64 << 10)]
        sent += MiB


async def test_writing_and_reading_256_mib_stays_under_16_mib(tmp_path: Path) -> None:
    async with open_blob_store([tmp_path / "d"], node_id="n") as store:
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            written = await store.write(
                network_like(TOTAL), checksums=["CRC32"], expected_size=TOTAL
            )
            write_peak = tracemalloc.get_traced_memory()[1] - baseline
            tracemalloc.reset_peak()
            seen = 0
            async for block in store.read(written.ref):
                seen += len(block)
            read_peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        assert seen == TOTAL
        assert write_peak < 16 * MiB, f"write held {write_peak / MiB:.1f} MiB"
        assert read_peak < 16 * MiB, f"read held {read_peak / MiB:.1f} MiB"
