"""Helper for test_crash.py: submit forever, print each write once its submit has returned.

    python -m tests.journal.crash_writer DB_PATH RUN_ID

Each output line is ``ENTITY VALUE`` and is flushed only after ``submit`` answered, so every
line the parent read is a write the journal acknowledged as durable. The parent kills this
process with SIGKILL mid-burst. (The blocking ``print`` on the trio thread is acceptable in a
test helper: the parent keeps draining the pipe.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from tests.journal.toy import kv_projections, put
from zeronode.journal import Journal, open_journal

WRITERS = 32


async def write_forever(journal: Journal, run: str, writer: int) -> None:
    for i in range(1, 1_000_000_000):
        unique = f"{run}/w{writer}/{i}"
        await journal.submit(put(unique, i))
        print(unique, i, flush=True)
        if i % 5 == 0:
            # an entity overwritten again and again: its last acknowledged value must survive
            shared = f"shared/w{writer}"
            await journal.submit(put(shared, f"{run}:{i:09d}"))
            print(shared, f"{run}:{i:09d}", flush=True)


async def main(path: Path, run: str) -> None:
    async with open_journal(path, kv_projections()) as journal:
        async with trio.open_nursery() as nursery:
            for writer in range(WRITERS):
                nursery.start_soon(write_forever, journal, run, writer)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2])
