"""How long a journal snapshot of 100,000 objects takes to take and to install.

    python bench/snapshot_install.py [--objects 100000] [--workdir DIR]

Builds journal A with N entities of the test toy projection (one row each, a state of about
200 bytes, about the size of an S3 object's metadata), written 1000 per mutation, then times:

- ``snapshot``: ``A.snapshot(file)`` (SQLite backup API, fsync, SHA-256 of the file);
- ``install``: ``B.install_snapshot(file)`` into a fresh running journal B: the checked copy
  beside B's database, the integrity check, and the swap (the writer's part) — while a task
  keeps submitting writes to B, whose slowest submit says how long B's writes were held.

Prints one line per phase, in seconds, and the snapshot's size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.journal.toy import KV, kv_projections, put  # noqa: E402
from zeronode.journal import Change, Journal, open_journal  # noqa: E402

BATCH = 1000


async def fill(journal: Journal, objects: int) -> None:
    filler = "m" * 160
    for start in range(0, objects, BATCH):
        await journal.submit(
            lambda db, start=start: [
                Change(f"bucket/key-{i:08d}", KV, {"v": filler, "size": i, "etag": f"{i:032x}"})
                for i in range(start, min(start + BATCH, objects))
            ]
        )


async def main(objects: int, workdir: Path) -> None:
    async with (
        open_journal(workdir / "a.db", kv_projections()) as a,
        open_journal(workdir / "b.db", kv_projections()) as b,
    ):
        started = time.perf_counter()
        await fill(a, objects)
        print(f"fill      {time.perf_counter() - started:8.3f} s  ({objects} objects)")

        started = time.perf_counter()
        info = await a.snapshot(workdir / "snapshot.db")
        print(f"snapshot  {time.perf_counter() - started:8.3f} s  ({info.size / 2**20:.1f} MiB)")

        slowest = 0.0
        installed = trio.Event()

        async def keep_writing() -> None:
            nonlocal slowest
            i = 0
            while not installed.is_set():
                begun = time.perf_counter()
                await b.submit(put(f"b/{i}", i))
                slowest = max(slowest, time.perf_counter() - begun)
                i += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_writing)
            started = time.perf_counter()
            await b.install_snapshot(info.path, sha256=info.sha256)
            elapsed = time.perf_counter() - started
            installed.set()
        print(f"install   {elapsed:8.3f} s  (slowest write on B meanwhile {slowest:.3f} s)")
        shown = await b.read(lambda db: db.execute("SELECT count(*) FROM kv").fetchone()[0])
        assert shown >= objects, shown


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, help="a directory on the disk to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as directory:
        trio.run(main, args.objects, Path(directory))
