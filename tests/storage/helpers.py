"""Shared helpers for the blob store tests: byte sources and a look at what is on disk."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path


async def chunks_of(data: bytes, sizes: Iterable[int] = ()) -> AsyncIterator[bytes]:
    """Yield ``data`` cut at the given sizes (cycled), 64 KiB pieces if none are given."""
    sizes = list(sizes) or [64 << 10]
    offset, i = 0, 0
    while offset < len(data):
        size = sizes[i % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        i += 1


def files_under(disk: Path, sub: str) -> list[Path]:
    """Regular files below ``<disk>/<sub>``."""
    found = []
    for root, _dirs, names in os.walk(disk / sub):
        found.extend(Path(root) / name for name in names)
    return found


def assert_nothing_left(disk: Path) -> None:
    assert files_under(disk, "blobs") == []
    assert files_under(disk, "tmp") == []
