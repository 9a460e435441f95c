"""What the durable parts of a 4 KiB PutObject cost, without HTTP, SigV4 or the S3 handler.

    python bench/put_pieces.py [--ops 1000]

Opens a journal with the real projections and a blob store in a temp dir, in this process,
and times each storage step a PUT that overwrites a key makes, one after the other: the
bucket lookup (a journal read), the blob write (temp file, MD5 + CRC64NVME, fsync, rename,
directory fsync), the journal commit (event + projection, WAL fsync) and the freeing of the
replaced blob. CPU is split between the event loop's thread and the worker threads
(``time.thread_time`` against ``time.process_time``). Their sum is the floor under the
agent's server CPU per PUT that no HTTP layer can remove; issue 3's target is a quarter of
moto's whole PUT. Compare figures within one machine only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zeronode.journal import Change, open_journal  # noqa: E402
from zeronode.services import all_projections  # noqa: E402
from zeronode.services.s3.buckets import require_bucket_in  # noqa: E402
from zeronode.services.s3.projections import BUCKET_KIND, bucket_entity  # noqa: E402
from zeronode.services.s3.versioning import put_version, segments_of  # noqa: E402
from zeronode.storage import BlobRef, WrittenBlob, open_blob_store  # noqa: E402

BODY = b"x" * 4096
KEYS = 100  # the keys are overwritten in turn, as in s3_bench's PUT phase


async def _body() -> AsyncIterator[bytes]:
    yield BODY


async def timed(label: str, ops: int, step: Callable[[int], Awaitable[Any]]) -> float:
    loop0, all0, wall = time.thread_time(), time.process_time(), time.monotonic()
    for i in range(ops):
        await step(i)
    loop, total = time.thread_time() - loop0, time.process_time() - all0
    wall = time.monotonic() - wall
    print(
        f"{label:16} loop thread {1e3 * loop / ops:.3f}  workers {1e3 * (total - loop) / ops:.3f}"
        f"  = {1e3 * total / ops:.3f} ms CPU/op   ({1e3 * wall / ops:.3f} ms wall)"
    )
    return 1e3 * total / ops


async def main(ops: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with (
            open_journal(root / "journal.sqlite", all_projections()) as journal,
            open_blob_store([root / "disk"], node_id=journal.node_id) as blobs,
        ):
            bucket = {"region": "us-east-1", "created_ms": 1, "owner": "bench"}
            await journal.submit(lambda db: [Change(bucket_entity("b"), BUCKET_KIND, bucket)])
            written: list[WrittenBlob] = []
            replaced: list[Any] = []

            async def lookup(i: int) -> None:
                await journal.read(lambda db: require_bucket_in(db, "b"))

            async def write(i: int) -> None:
                written.append(await blobs.write(
                    _body(), checksums=("CRC64NVME",), expected_size=len(BODY)
                ))  # fmt: skip

            async def commit(i: int) -> None:
                ref = written[i].ref
                fields = {
                    "content": {}, "metadata": {}, "storage_class": "STANDARD", "tags": {},
                    "last_modified_ms": 1, "owner": "bench", "size": ref.size,
                    "etag": written[i].md5.hex(), "checksum": None, "parts": None,
                    "segments": [{"node": journal.node_id, **ref.to_dict()}],
                }  # fmt: skip

                def mutation(db: Any) -> Any:
                    require_bucket_in(db, "b")
                    write = put_version(db, "b", f"k{i % KEYS}", fields)
                    replaced.extend(segments_of(write.replaced))
                    return write.changes

                await journal.submit(mutation)

            async def free(i: int) -> None:
                if i < len(replaced):
                    await blobs.free([BlobRef.from_dict(replaced[i])])

            print(f"4 KiB PutObject storage steps x {ops} (overwriting {KEYS} keys)")
            total = sum([
                await timed("bucket lookup", ops, lookup),
                await timed("blob write", ops, write),
                await timed("journal commit", ops, commit),
                await timed("free replaced", ops, free),
            ])  # fmt: skip
            print(f"{'all four':16} {total:.3f} ms CPU/op")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1000)
    trio.run(main, parser.parse_args().ops)
