"""ListObjectsV2, ListObjects and ListObjectVersions through boto3 against a real agent.

One agent serves the whole module (each test has its own bucket): listings only read, and
starting an agent per test would cost more than the tests themselves.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.agent_process import AgentProcess
from tests.services.s3.helpers import error_of, s3_client
from tests.test_aws_cli import run_cli

_bucket_numbers = itertools.count()


@pytest.fixture(scope="module")
def listing_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    root: Path = tmp_path_factory.mktemp("listing")
    process = AgentProcess(root / "node", log_dir=root).start()
    yield process
    assert process.stop() == 0, process.output()


@pytest.fixture
def client(listing_agent: AgentProcess) -> Any:
    return s3_client(listing_agent)


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"listing-{next(_bucket_numbers)}"
    client.create_bucket(Bucket=name)
    return name


def put_keys(client: Any, bucket: str, keys: list[str], threads: int = 8) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(
            pool.map(
                lambda key: client.put_object(Bucket=bucket, Key=key, Body=key.encode()[:64]), keys
            )
        )


def keys_of(response: dict[str, Any]) -> list[str]:
    return [entry["Key"] for entry in response.get("Contents", [])]


def prefixes_of(response: dict[str, Any]) -> list[str]:
    return [entry["Prefix"] for entry in response.get("CommonPrefixes", [])]


def utf8_sorted(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda key: key.encode("utf-8"))


TREE = [
    "photos/2024/a.jpg",
    "photos/2024/b.jpg",
    "photos/2025/c.jpg",
    "photos/top.jpg",
    "photosynthesis",
    "readme",
]


# --- ListObjectsV2 ---------------------------------------------------------------------------


def test_v2_lists_keys_with_their_fields(client: Any, bucket: str) -> None:
    empty = client.list_objects_v2(Bucket=bucket)
    assert empty["KeyCount"] == 0 and "Contents" not in empty and empty["IsTruncated"] is False
    assert (empty["Name"], empty["Prefix"], empty["MaxKeys"]) == (bucket, "", 1000)

    put = {
        key: client.put_object(Bucket=bucket, Key=key, Body=b"x" * n)
        for n, key in enumerate(["b", "a", "c"], start=1)
    }
    listing = client.list_objects_v2(Bucket=bucket)
    assert keys_of(listing) == ["a", "b", "c"] and listing["KeyCount"] == 3
    now = datetime.now(UTC)
    for entry in listing["Contents"]:
        assert entry["ETag"] == put[entry["Key"]]["ETag"] and entry["ETag"].startswith('"')
        assert entry["Size"] == {"b": 1, "a": 2, "c": 3}[entry["Key"]]
        assert entry["StorageClass"] == "STANDARD"
        assert entry["ChecksumAlgorithm"] == ["CRC32"] and entry["ChecksumType"] == "FULL_OBJECT"
        assert abs(entry["LastModified"] - now) < timedelta(minutes=1)
        assert "Owner" not in entry

    owned = client.list_objects_v2(Bucket=bucket, FetchOwner=True)
    owner_id = client.list_buckets()["Owner"]["ID"]
    assert all(e["Owner"] == {"DisplayName": "zeronode", "ID": owner_id} for e in owned["Contents"])


def test_prefix_and_delimiter(client: Any, bucket: str) -> None:
    put_keys(client, bucket, TREE)
    top = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert prefixes_of(top) == ["photos/"] and keys_of(top) == ["photosynthesis", "readme"]
    assert top["KeyCount"] == 3 and top["Delimiter"] == "/"

    inside = client.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/")
    assert prefixes_of(inside) == ["photos/2024/", "photos/2025/"]
    assert keys_of(inside) == ["photos/top.jpg"] and inside["Prefix"] == "photos/"

    assert keys_of(client.list_objects_v2(Bucket=bucket, Prefix="photo")) == TREE[:5]
    assert keys_of(client.list_objects_v2(Bucket=bucket, Prefix="nothing")) == []

    multi = client.list_objects_v2(Bucket=bucket, Prefix="photos", Delimiter="/20")
    assert prefixes_of(multi) == ["photos/20"]
    assert keys_of(multi) == ["photos/top.jpg", "photosynthesis"]
    odd = client.list_objects_v2(Bucket=bucket, Delimiter="o")
    assert prefixes_of(odd) == ["pho"] and keys_of(odd) == ["readme"]

    no_delimiter = client.list_objects_v2(Bucket=bucket, Delimiter="")
    assert keys_of(no_delimiter) == TREE and "Delimiter" not in no_delimiter


def test_v2_pages_count_common_prefixes_toward_max_keys(client: Any, bucket: str) -> None:
    put_keys(client, bucket, TREE + ["zz/1", "zz/2"])
    pages = list(
        client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )
    items = [(keys_of(p), prefixes_of(p)) for p in pages]
    assert items == [(["photosynthesis"], ["photos/"]), (["readme"], ["zz/"])]
    assert [p["KeyCount"] for p in pages] == [2, 2]
    assert pages[0]["IsTruncated"] and not pages[1]["IsTruncated"]
    assert "NextContinuationToken" not in pages[1]
    assert pages[1]["ContinuationToken"] == pages[0]["NextContinuationToken"]

    one_by_one = list(
        client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 1}
        )
    )
    assert [k for p in one_by_one for k in keys_of(p)] == TREE + ["zz/1", "zz/2"]


def test_v2_start_after(client: Any, bucket: str) -> None:
    put_keys(client, bucket, TREE)
    after = client.list_objects_v2(Bucket=bucket, StartAfter="photos/2024/a.jpg")
    assert keys_of(after) == TREE[1:] and after["StartAfter"] == "photos/2024/a.jpg"
    # A start inside a common prefix is past it; one before it is not.
    inside = client.list_objects_v2(Bucket=bucket, StartAfter="photos/2024/a.jpg", Delimiter="/")
    assert prefixes_of(inside) == [] and keys_of(inside) == ["photosynthesis", "readme"]
    before = client.list_objects_v2(Bucket=bucket, StartAfter="photos", Delimiter="/")
    assert prefixes_of(before) == ["photos/"]
    # A continuation token wins over StartAfter.
    first = client.list_objects_v2(Bucket=bucket, MaxKeys=2)
    rest = client.list_objects_v2(
        Bucket=bucket, StartAfter="readme", ContinuationToken=first["NextContinuationToken"]
    )
    assert keys_of(rest) == TREE[2:]


def test_max_keys_zero_and_above_the_cap(client: Any, bucket: str) -> None:
    put_keys(client, bucket, ["a", "b"])
    zero = client.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert zero["KeyCount"] == 0 and zero["IsTruncated"] is False and zero["MaxKeys"] == 0
    assert "Contents" not in zero and "NextContinuationToken" not in zero
    assert client.list_objects(Bucket=bucket, MaxKeys=0)["IsTruncated"] is False
    big = client.list_objects_v2(Bucket=bucket, MaxKeys=5000)
    assert keys_of(big) == ["a", "b"]


# --- ListObjects (v1) ------------------------------------------------------------------------


def test_v1_marker_next_marker_and_owner(client: Any, bucket: str) -> None:
    put_keys(client, bucket, TREE)
    full = client.list_objects(Bucket=bucket)
    assert keys_of(full) == TREE and full["Marker"] == "" and full["IsTruncated"] is False
    owner_id = client.list_buckets()["Owner"]["ID"]
    assert all(e["Owner"] == {"DisplayName": "zeronode", "ID": owner_id} for e in full["Contents"])

    page = client.list_objects(Bucket=bucket, MaxKeys=2)
    assert keys_of(page) == TREE[:2] and page["IsTruncated"] and "NextMarker" not in page
    assert keys_of(client.list_objects(Bucket=bucket, Marker=TREE[1])) == TREE[2:]

    grouped = client.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=1)
    assert prefixes_of(grouped) == ["photos/"] and grouped["NextMarker"] == "photos/"
    following = client.list_objects(Bucket=bucket, Delimiter="/", Marker="photos/")
    assert keys_of(following) == ["photosynthesis", "readme"] and following["Marker"] == "photos/"

    pages = list(
        client.get_paginator("list_objects").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 4}
        )
    )
    assert [k for p in pages for k in keys_of(p)] == TREE
    pages = list(
        client.get_paginator("list_objects").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}
        )
    )
    assert [(keys_of(p), prefixes_of(p)) for p in pages] == [
        ([], ["photos/"]),
        (["photosynthesis"], []),
        (["readme"], []),
    ]


def test_aws_cli_ls_and_recursive_rm(listing_agent: AgentProcess, client: Any, bucket: str) -> None:
    put_keys(client, bucket, [*TREE, "with space/é+%.txt"])
    done = run_cli(
        listing_agent,
        (
            f"aws s3 ls s3://{bucket}/ && echo --- && "
            f"aws s3 ls --recursive --page-size 2 s3://{bucket}/ && echo --- && "
            f"aws s3 rm --recursive --quiet s3://{bucket}/photos/"
        ),
    )
    assert done.returncode == 0, done.stderr
    top, recursive, _ = done.stdout.split("---\n")
    assert [
        line.split("PRE ")[1] if "PRE " in line else line.split(maxsplit=3)[-1]
        for line in top.splitlines()
    ] == ["photos/", "with space/", "photosynthesis", "readme"]
    assert [line.split(maxsplit=3)[-1] for line in recursive.splitlines()] == [
        *TREE,
        "with space/é+%.txt",
    ]
    remaining = keys_of(client.list_objects_v2(Bucket=bucket))
    assert remaining == ["photosynthesis", "readme", "with space/é+%.txt"]


# --- keys that XML cannot carry, and EncodingType --------------------------------------------

UNUSUAL_KEYS = [
    "ctl\x01\x02\x1fchars",
    "tab\tnew\nline",
    "cr\rkey",
    "space key",
    "plus+key",
    "percent%20key",
    "amp&<lt>\"'",
    "../../x",
    "a//b",
    "/leading",
    "ümlaut/ключ/键",
    "emoji😀",
    "del\x7f",
    "dir\x01/inside",
    "q?x=1#frag",
    "é" * 512,
]


def test_unusual_keys_round_trip_through_every_listing(client: Any, bucket: str) -> None:
    put_keys(client, bucket, UNUSUAL_KEYS)
    expected = utf8_sorted(UNUSUAL_KEYS)
    assert keys_of(client.list_objects_v2(Bucket=bucket)) == expected
    assert keys_of(client.list_objects(Bucket=bucket)) == expected
    versions = client.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in versions["Versions"]] == expected
    grouped = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert "dir\x01/" in prefixes_of(grouped) and "ümlaut/" in prefixes_of(grouped)
    under = client.list_objects_v2(Bucket=bucket, Prefix="dir\x01/")
    assert keys_of(under) == ["dir\x01/inside"] and under["Prefix"] == "dir\x01/"
    paged = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, StartAfter="ctl\x01", PaginationConfig={"PageSize": 3}
    )
    assert [k for p in paged for k in keys_of(p)] == [k for k in expected if k > "ctl\x01"]


def test_explicit_url_encoding_is_returned_encoded(client: Any, bucket: str) -> None:
    put_keys(client, bucket, ["a b/c+d%e", "a b/x", "ключ"])
    # boto3 decodes only what it asked for itself; asking explicitly shows the wire values.
    v2 = client.list_objects_v2(
        Bucket=bucket, EncodingType="url", Prefix="a b/", StartAfter="a b/", Delimiter="+"
    )
    assert v2["EncodingType"] == "url"
    assert v2["Prefix"] == "a+b/" and v2["StartAfter"] == "a+b/" and v2["Delimiter"] == "%2B"
    assert prefixes_of(v2) == ["a+b/c%2B"] and keys_of(v2) == ["a+b/x"]
    v1 = client.list_objects(Bucket=bucket, EncodingType="url", Marker="a b/x")
    assert keys_of(v1) == ["%D0%BA%D0%BB%D1%8E%D1%87"] and v1["Marker"] == "a+b/x"
    versions = client.list_object_versions(Bucket=bucket, EncodingType="url", KeyMarker="a b/x")
    assert [v["Key"] for v in versions["Versions"]] == ["%D0%BA%D0%BB%D1%8E%D1%87"]
    assert versions["KeyMarker"] == "a+b/x"
    # ListObjects (v1) echoes Prefix encoded and botocore does not decode it, as with S3.
    assert client.list_objects(Bucket=bucket, Prefix="a b/")["Prefix"] == "a+b/"
    assert client.list_objects_v2(Bucket=bucket, Prefix="a b/")["Prefix"] == "a b/"


# --- bad input -------------------------------------------------------------------------------

BAD_REQUESTS = [
    (
        "list_objects_v2",
        {"ContinuationToken": "not-a-token"},
        "The continuation token provided is incorrect",
        "continuation-token",
    ),
    (
        "list_objects_v2",
        {"ContinuationToken": "eyJsIjoiczMuTGlzdEJ1Y2tldHMiLCJwIjp7ImFmdGVyIjoiYSJ9fQ"},
        "The continuation token provided is incorrect",
        "continuation-token",
    ),
    (
        "list_objects_v2",
        {"EncodingType": "base64"},
        "Invalid Encoding Method specified in Request",
        "encoding-type",
    ),
    (
        "list_objects",
        {"EncodingType": "xml"},
        "Invalid Encoding Method specified in Request",
        "encoding-type",
    ),
    (
        "list_object_versions",
        {"EncodingType": "nope"},
        "Invalid Encoding Method specified in Request",
        "encoding-type",
    ),
    (
        "list_objects_v2",
        {"MaxKeys": -1},
        "Argument maxKeys must be an integer between 0 and 2147483647",
        "maxKeys",
    ),
    (
        "list_objects",
        {"MaxKeys": -5},
        "Argument maxKeys must be an integer between 0 and 2147483647",
        "maxKeys",
    ),
    ("list_object_versions", {"MaxKeys": -1}, "max-keys cannot be negative", "max-keys"),
    (
        "list_object_versions",
        {"VersionIdMarker": "null"},
        "A version-id marker cannot be specified without a key marker.",
        "version-id-marker",
    ),
    (
        "list_object_versions",
        {"KeyMarker": "a", "VersionIdMarker": "not-a-version"},
        "Invalid version id specified",
        "version-id-marker",
    ),
]


@pytest.mark.parametrize("operation, extra, message, argument", BAD_REQUESTS)
def test_bad_requests_are_refused_and_change_nothing(
    client: Any, bucket: str, operation: str, extra: dict[str, Any], message: str, argument: str
) -> None:
    put_keys(client, bucket, ["a", "b"])
    with pytest.raises(ClientError) as exc:
        getattr(client, operation)(Bucket=bucket, **extra)
    assert error_of(exc) == ("InvalidArgument", 400)
    error = exc.value.response["Error"]
    assert error["Message"] == message and error["ArgumentName"] == argument
    assert keys_of(client.list_objects_v2(Bucket=bucket)) == ["a", "b"]


def test_token_of_a_listing_works_only_for_it(client: Any, bucket: str) -> None:
    put_keys(client, bucket, ["a", "b", "c"])
    token = client.list_objects_v2(Bucket=bucket, MaxKeys=1)["NextContinuationToken"]
    assert token != "a"  # opaque, not the key itself
    assert keys_of(client.list_objects_v2(Bucket=bucket, ContinuationToken=token)) == ["b", "c"]
    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=bucket, ContinuationToken=token[:-3] + "!!!")
    assert error_of(exc) == ("InvalidArgument", 400)


@pytest.mark.parametrize("operation", ["list_objects_v2", "list_objects", "list_object_versions"])
def test_missing_bucket(client: Any, operation: str) -> None:
    with pytest.raises(ClientError) as exc:
        getattr(client, operation)(Bucket="no-such-listing-bucket")
    assert error_of(exc) == ("NoSuchBucket", 404)
    assert exc.value.response["Error"]["BucketName"] == "no-such-listing-bucket"
    assert "no-such-listing-bucket" not in [b["Name"] for b in client.list_buckets()["Buckets"]]


# --- ListObjectVersions ----------------------------------------------------------------------


Item = tuple[str, str, bool, bool]


def version_items(response: dict[str, Any], listing_order: list[Item]) -> list[Item]:
    """(key, version id, is latest, is delete marker) of a page, in ``listing_order``.

    The response has versions and delete markers in two lists (S3 interleaves them in its
    XML; botocore separates them), so their relative order comes from ``listing_order``;
    each list's own order is checked against it.
    """
    versions = [
        (v["Key"], v["VersionId"], v["IsLatest"], False) for v in response.get("Versions", [])
    ]
    markers = [
        (m["Key"], m["VersionId"], m["IsLatest"], True) for m in response.get("DeleteMarkers", [])
    ]
    for part in (versions, markers):
        assert part == sorted(part, key=listing_order.index)
    return sorted(versions + markers, key=listing_order.index)


def test_versions_newest_first_with_markers_and_pagination(client: Any, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="k", Body=b"before versioning")
    client.put_object(Bucket=bucket, Key="j", Body=b"j")
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    k1 = client.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    k2 = client.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    k_marker = client.delete_object(Bucket=bucket, Key="k")["VersionId"]
    j_marker = client.delete_object(Bucket=bucket, Key="j")["VersionId"]
    client.put_object(Bucket=bucket, Key="l", Body=b"l")
    l1 = client.list_object_versions(Bucket=bucket, Prefix="l")["Versions"][0]["VersionId"]

    expected = [
        ("j", j_marker, True, True),
        ("j", "null", False, False),
        ("k", k_marker, True, True),
        ("k", k2, False, False),
        ("k", k1, False, False),
        ("k", "null", False, False),
        ("l", l1, True, False),
    ]
    full = client.list_object_versions(Bucket=bucket)
    assert version_items(full, expected) == expected and full["IsTruncated"] is False
    assert full["KeyMarker"] == "" and full["VersionIdMarker"] == ""
    owner_id = client.list_buckets()["Owner"]["ID"]
    for version in full["Versions"]:
        assert version["ETag"].startswith('"') and version["StorageClass"] == "STANDARD"
        assert version["Owner"]["ID"] == owner_id and version["ChecksumAlgorithm"] == ["CRC32"]
    assert [m["Owner"]["ID"] for m in full["DeleteMarkers"]] == [owner_id, owner_id]
    assert keys_of(client.list_objects_v2(Bucket=bucket)) == ["l"]

    # One item a page, by NextKeyMarker / NextVersionIdMarker.
    seen, markers = [], {}
    for _ in range(len(expected) + 1):
        page = client.list_object_versions(Bucket=bucket, MaxKeys=1, **markers)
        seen += version_items(page, expected)
        if not page["IsTruncated"]:
            break
        markers = {
            "KeyMarker": page["NextKeyMarker"],
            "VersionIdMarker": page["NextVersionIdMarker"],
        }
    assert seen == expected
    pages = client.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 3}
    )
    assert [item for p in pages for item in version_items(p, expected)] == expected

    # KeyMarker alone starts after every version of that key.
    assert (
        version_items(client.list_object_versions(Bucket=bucket, KeyMarker="j"), expected)
        == expected[2:]
    )
    after_k2 = client.list_object_versions(Bucket=bucket, KeyMarker="k", VersionIdMarker=k2)
    assert version_items(after_k2, expected) == expected[4:]
    after_null = client.list_object_versions(Bucket=bucket, KeyMarker="j", VersionIdMarker="null")
    assert version_items(after_null, expected) == expected[2:]


def test_versions_with_prefix_and_delimiter(client: Any, bucket: str) -> None:
    put_keys(client, bucket, ["d/1", "d/2", "e", "f/1"])
    grouped = client.list_object_versions(Bucket=bucket, Delimiter="/")
    assert prefixes_of(grouped) == ["d/", "f/"] and [v["Key"] for v in grouped["Versions"]] == ["e"]
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in grouped["Versions"])
    first = client.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=1)
    assert prefixes_of(first) == ["d/"] and first["NextKeyMarker"] == "d/"
    assert "NextVersionIdMarker" not in first
    rest = client.list_object_versions(Bucket=bucket, Delimiter="/", KeyMarker="d/")
    assert [v["Key"] for v in rest["Versions"]] == ["e"] and prefixes_of(rest) == ["f/"]
    under = client.list_object_versions(Bucket=bucket, Prefix="d/")
    assert [v["Key"] for v in under["Versions"]] == ["d/1", "d/2"] and under["Prefix"] == "d/"


# --- many keys -------------------------------------------------------------------------------


def test_fifteen_hundred_keys_page_by_a_thousand(client: Any, bucket: str) -> None:
    keys = [f"dir{n % 7}/key-{n:05d}" for n in range(1500)]
    started = time.monotonic()
    put_keys(client, bucket, keys, threads=16)
    put_seconds = time.monotonic() - started
    pages = list(client.get_paginator("list_objects_v2").paginate(Bucket=bucket))
    assert [p["KeyCount"] for p in pages] == [1000, 500]
    assert [k for p in pages for k in keys_of(p)] == sorted(keys)
    grouped = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert prefixes_of(grouped) == [f"dir{n}/" for n in range(7)] and grouped["KeyCount"] == 7
    v1_pages = list(client.get_paginator("list_objects").paginate(Bucket=bucket, Prefix="dir3/"))
    assert [k for p in v1_pages for k in keys_of(p)] == sorted(
        k for k in keys if k.startswith("dir3/")
    )
    assert put_seconds < 60
