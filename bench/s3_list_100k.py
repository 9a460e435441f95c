"""How long boto3 takes to list 100,000 keys from zeronode with ListObjectsV2.

    python bench/s3_list_100k.py [--keys 100000] [--workdir DIR]

Note: the keys are NOT created through the S3 API. Creating 100k objects with PutObject takes
minutes and measures PutObject, not listing (bench/s3_bench.py does that, end to end). Here
the object versions are written straight into a fresh node's journal, offline, as the object
states PutObject would commit (with no bytes behind them: a listing never reads bytes), in
batches of 1000 per journal mutation. Then ``zeronode up`` serves that data dir and the
script times, through boto3 (which asks for ``EncodingType=url`` and parses every page):

- every page of ListObjectsV2 over all the keys (100 pages of 1000);
- ListObjectsV2 with ``Delimiter="/"`` over the same keys (100 common prefixes of 1000
  keys: one page, each prefix skipped with one seek);
- ListObjectVersions over all the keys.

Prints one line per listing: seconds, pages, keys per second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import servers
import trio
from botocore.config import Config

sys.path.insert(0, str(servers.REPO_ROOT))

from zeronode.journal import Change, open_journal
from zeronode.services import all_projections
from zeronode.services.s3.projections import (
    BUCKET_KIND,
    OBJECT_KIND,
    bucket_entity,
    object_entity,
)
from zeronode.services.s3.versioning import NULL_VERSION, new_order

BUCKET = "list-bench"
BATCH = 1000
OWNER = "0" * 64


def object_state(key: str, now_ms: int) -> dict[str, Any]:
    """What PutObject commits for a 1-byte object (projections.py's layout), minus the bytes."""
    return {
        "bucket": BUCKET,
        "key": key,
        "version_id": NULL_VERSION,
        "ord": new_order(),
        "delete_marker": False,
        "last_modified_ms": now_ms,
        "owner": OWNER,
        "size": 1,
        "etag": "0cc175b9c0f1b6a831c399e269772661",
        "storage_class": "STANDARD",
        "content": {"ContentType": "binary/octet-stream"},
        "metadata": {},
        "tags": {},
        "checksum": {"algorithm": "CRC32", "value": "6Jpq2Q==", "type": "FULL_OBJECT"},
        "parts": None,
        "segments": [],
    }


async def populate(journal_path: Path, keys: list[str]) -> None:
    now_ms = int(time.time() * 1000)
    async with open_journal(journal_path, all_projections()) as journal:
        bucket = {"region": servers.REGION, "created_ms": now_ms, "owner": OWNER}
        await journal.submit(lambda db: [Change(bucket_entity(BUCKET), BUCKET_KIND, bucket)])
        for start in range(0, len(keys), BATCH):
            changes = [
                Change(
                    object_entity(BUCKET, NULL_VERSION, key), OBJECT_KIND, object_state(key, now_ms)
                )
                for key in keys[start : start + BATCH]
            ]
            await journal.submit(lambda db, changes=changes: changes)


def timed(label: str, pages: Any, count: Any) -> None:
    started = time.perf_counter()
    n_pages = n_items = 0
    for page in pages:
        n_pages += 1
        n_items += count(page)
    seconds = time.perf_counter() - started
    print(f"{label:<48} {seconds:7.2f} s  {n_pages:4d} pages  {n_items / seconds:9.0f} items/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="zeronode-list-"))
    data_dir = workdir / "zeronode-data"
    servers.zeronode_keys(
        [sys.executable, "-m", "zeronode.cli", "env", "--data-dir", str(data_dir)]
    )
    keys = [f"dir{n % 100:03d}/object-{n:07d}" for n in range(args.keys)]
    started = time.perf_counter()
    trio.run(populate, data_dir / "journal.sqlite3", keys)
    print(
        f"populated {len(keys)} keys in the journal in {time.perf_counter() - started:.1f} s ({workdir})"
    )

    server = servers.start("zeronode", workdir)
    try:
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=server.region,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

        def contents(page: dict[str, Any]) -> int:
            return len(page.get("Contents", ()))

        timed(
            "ListObjectsV2, all keys",
            client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET),
            contents,
        )
        timed(
            "ListObjectsV2, Delimiter=/",
            client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Delimiter="/"),
            lambda page: len(page.get("CommonPrefixes", ())),
        )
        timed(
            "ListObjectsV2, one prefix (1/100 of the keys)",
            client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="dir042/"),
            contents,
        )
        timed(
            "ListObjectVersions, all keys",
            client.get_paginator("list_object_versions").paginate(Bucket=BUCKET),
            lambda page: len(page.get("Versions", ())),
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
