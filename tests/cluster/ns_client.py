"""Calls to an agent made from inside a network namespace, for the partition tests.

    python -m tests.cluster.ns_client ENDPOINT '[["put", "bucket", "key", "value"], ...]'

Runs the calls in order and prints one JSON list with each call's result: ``health``,
``journal`` and ``status`` answer the admin document (``GET /_zeronode/<name>``);
``create_bucket B``, ``put B K V``, ``get B K`` (the body as text) and ``list B`` (the keys)
go through boto3, signed with ``ZERONODE_ACCESS_KEY_ID``/``ZERONODE_SECRET_ACCESS_KEY``. A
failed call answers ``{"error": code, "status": http status}`` and the next one still runs.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def admin(endpoint: str, name: str) -> Any:
    with urllib.request.urlopen(f"{endpoint}/_zeronode/{name}", timeout=5) as response:
        return json.load(response)


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=os.environ["ZERONODE_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["ZERONODE_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20,
                      s3={"addressing_style": "path"}),
    )  # fmt: skip


def call(endpoint: str, operation: list[str], client: Any) -> Any:
    name, *args = operation
    if name in ("health", "journal", "status"):
        return admin(endpoint, name)
    if name == "create_bucket":
        return client.create_bucket(Bucket=args[0])["ResponseMetadata"]["HTTPStatusCode"]
    if name == "put":
        return client.put_object(Bucket=args[0], Key=args[1], Body=args[2].encode())["ETag"]
    if name == "get":
        return client.get_object(Bucket=args[0], Key=args[1])["Body"].read().decode()
    if name == "list":
        listing = client.list_objects_v2(Bucket=args[0])
        return [item["Key"] for item in listing.get("Contents", [])]
    raise ValueError(f"unknown call {name!r}")


def main(endpoint: str, operations: list[list[str]]) -> list[Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    needs_s3 = any(op[0] not in ("health", "journal", "status") for op in operations)
    client = s3_client(endpoint) if needs_s3 else None
    results = []
    for operation in operations:
        try:
            results.append(call(endpoint, operation, client))
        except ClientError as error:
            response = error.response
            results.append({"error": response["Error"]["Code"],
                            "status": response["ResponseMetadata"]["HTTPStatusCode"]})
        except (OSError, urllib.error.URLError, BotoCoreError) as error:
            results.append({"error": type(error).__name__, "status": None})
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
