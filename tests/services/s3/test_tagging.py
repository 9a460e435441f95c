"""Object and bucket tagging through boto3, and the tag rules (``tag_rules.py``) as pure code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of, s3_client
from zeronode.aws.errors import AWSError
from zeronode.services.s3 import tag_rules


def tags(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in pairs]}


def with_body(s3: Any, operation: str, body: bytes) -> None:
    """Send ``operation``'s request with ``body`` in place of the one boto3 serialized."""

    def replace(request: Any, **_: Any) -> None:
        request.data = body
        for name in ("Content-MD5", "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm"):
            del request.headers[name]

    s3.meta.events.register_first(f"before-sign.s3.{operation}", replace)


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="tagged")
    return "tagged"


@pytest.fixture
def unchecked(agent: Any) -> Any:
    """A client that sends what it is given (botocore would refuse an empty key itself)."""
    return s3_client(agent, parameter_validation=False)


# -- bucket tagging ---------------------------------------------------------------------------


def test_bucket_tags_put_get_replace_delete(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(e) == ("NoSuchTagSet", 404)
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tags(("team", "data"), ("cost", "")))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tags(("team", "data"), ("cost", ""))["TagSet"]
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tags(("only", "this")))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "only", "Value": "this"}]
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(e) == ("NoSuchTagSet", 404)
    s3.delete_bucket_tagging(Bucket=bucket)  # nothing to delete: still 204


def test_bucket_allows_fifty_tags_of_any_script(s3: Any, bucket: str) -> None:
    fifty = [(f"k{i} ü文+-=._:/@", "v" * 256) for i in range(49)] + [("𝐀" * 64, "")]  # astral letters count two
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tags(*fifty))
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50


def test_bucket_tagging_of_a_missing_bucket(s3: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: s3.put_bucket_tagging(Bucket="nope", Tagging=tags(("a", "b"))),
        lambda: s3.get_bucket_tagging(Bucket="nope"),
        lambda: s3.delete_bucket_tagging(Bucket="nope"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("NoSuchBucket", 404)
    assert s3.list_buckets()["Buckets"] == []


BAD_TAG_SETS = [
    ([(f"k{i}", "") for i in range(51)], "BadRequest"),
    ([("a", "1"), ("a", "2")], "InvalidTag"),
    ([("k" * 129, "")], "InvalidTag"),
    ([("𝐀" * 65, "")], "InvalidTag"),
    ([("😀", "v")], "InvalidTag"),
    ([("", "v")], "InvalidTag"),
    ([("k", "v" * 257)], "InvalidTag"),
    ([("a,b", "v")], "InvalidTag"),
    ([("k", "a*b")], "InvalidTag"),
    ([("aws:cost", "v")], "InvalidTag"),
    ([("AWS:cost", "v")], "InvalidTag"),
]


def test_bad_bucket_tags_change_nothing(s3: Any, unchecked: Any, bucket: str) -> None:
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tags(("kept", "yes")))
    for tag_set, code in BAD_TAG_SETS:
        with pytest.raises(ClientError) as e:
            unchecked.put_bucket_tagging(Bucket=bucket, Tagging=tags(*tag_set))
        assert error_of(e) == (code, 400), tag_set
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "kept", "Value": "yes"}]


MALFORMED_DOCUMENTS = [
    (b"<Tagging><TagSet>", "MalformedXML"),
    (b"<Tagging></Tagging>", "MalformedXML"),
    (b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>", "MalformedXML"),
    (b"<Tags><TagSet></TagSet></Tags>", "MalformedXML"),
    (b"", "MissingRequestBodyError"),
]


def test_malformed_tagging_documents_change_nothing(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tags(("kept", "yes")))
    for body, code in MALFORMED_DOCUMENTS:
        client = s3_client(agent)
        with_body(client, "PutBucketTagging", body)
        with pytest.raises(ClientError) as e:
            client.put_bucket_tagging(Bucket=bucket, Tagging=tags(("x", "y")))
        assert error_of(e) == (code, 400), body
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "kept", "Value": "yes"}]


# -- object tagging ---------------------------------------------------------------------------


def test_object_tags_put_get_delete(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a/b c", Body=b"data")
    assert s3.get_object_tagging(Bucket=bucket, Key="a/b c")["TagSet"] == []
    out = s3.put_object_tagging(Bucket=bucket, Key="a/b c", Tagging=tags(("k", "v"), ("e", "")))
    assert "VersionId" not in out  # never-versioned buckets report no version
    got = s3.get_object_tagging(Bucket=bucket, Key="a/b c")
    assert got["TagSet"] == tags(("k", "v"), ("e", ""))["TagSet"]
    assert s3.head_object(Bucket=bucket, Key="a/b c").get("TagCount") == 2
    s3.delete_object_tagging(Bucket=bucket, Key="a/b c")
    assert s3.get_object_tagging(Bucket=bucket, Key="a/b c")["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="a/b c")["Body"].read() == b"data"


def test_upload_tags_are_the_object_tags(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1&b%20c=d%2Be&empty=")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == tags(
        ("a", "1"), ("b c", "d+e"), ("empty", ""))["TagSet"]


def test_tagging_a_version_is_not_a_new_version(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    out = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=first, Tagging=tags(("v", "1")))
    assert out["VersionId"] == first
    assert s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tags(("v", "2")))["VersionId"] == second
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=first)["TagSet"] == [{"Key": "v", "Value": "1"}]
    current = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert (current["VersionId"], current["TagSet"]) == (second, [{"Key": "v", "Value": "2"}])
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted([first, second])
    assert s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId=first)["VersionId"] == first
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=first)["TagSet"] == []
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "v", "Value": "2"}]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"1"


def test_tags_of_missing_keys_versions_and_delete_markers(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    cases: list[tuple[Callable[[], Any], tuple[str, int]]] = [
        (lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"), ("NoSuchKey", 404)),
        (lambda: s3.get_object_tagging(Bucket=bucket, Key="k"), ("NoSuchKey", 404)),
        (lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tags(("a", "b"))),
         ("NoSuchKey", 404)),
        (lambda: s3.delete_object_tagging(Bucket=bucket, Key="missing"), ("NoSuchKey", 404)),
        (lambda: s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="0" * 32),
         ("NoSuchVersion", 404)),
        (lambda: s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="bad"),
         ("InvalidArgument", 400)),
        (lambda: s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=marker),
         ("MethodNotAllowed", 405)),
        (lambda: s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=marker,
                                       Tagging=tags(("a", "b"))), ("MethodNotAllowed", 405)),
        (lambda: s3.get_object_tagging(Bucket="no-such-bucket", Key="k"), ("NoSuchBucket", 404)),
    ]
    for call, expected in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == expected
    assert [m["VersionId"] for m in s3.list_object_versions(Bucket=bucket)["DeleteMarkers"]] == [marker]


def test_bad_object_tags_change_nothing(s3: Any, unchecked: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="kept=yes")
    for tag_set, code in [([(f"k{i}", "") for i in range(11)], "BadRequest"), *BAD_TAG_SETS[1:]]:
        with pytest.raises(ClientError) as e:
            unchecked.put_object_tagging(Bucket=bucket, Key="k", Tagging=tags(*tag_set))
        assert error_of(e) == (code, 400), tag_set
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "kept", "Value": "yes"}]


def test_object_tags_survive_a_restart(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tags(("k", "v")))
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tags(("b", "t")))
    agent.restart()
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "b", "Value": "t"}]


# -- the rules, pure --------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("a=1&b=2", {"a": "1", "b": "2"}),
    ("a&b=", {"a": "", "b": ""}),
    ("a%20b=c%2Bd&e+f=g=h", {"a b": "c+d", "e f": "g=h"}),
    ("%C3%BC=%E6%96%87", {"ü": "文"}),
    ("", {}),
    (None, {}),
])
def test_parse_tagging_header(header: str | None, expected: dict[str, str]) -> None:
    assert tag_rules.parse_tagging_header(header) == expected


@pytest.mark.parametrize(("header", "code"), [
    ("a=1&a=2", "InvalidArgument"),
    ("=1", "InvalidArgument"),
    ("a=%FF", "InvalidArgument"),
    ("&".join(f"k{i}=" for i in range(11)), "BadRequest"),
    ("a,b=1", "InvalidTag"),
    ("aws:cost=1", "InvalidTag"),
])
def test_bad_tagging_headers(header: str, code: str) -> None:
    with pytest.raises(AWSError) as e:
        tag_rules.parse_tagging_header(header)
    assert (e.value.code, e.value.status) == (code, 400)
    if code == "InvalidArgument":
        assert e.value.extra == {"ArgumentName": "x-amz-tagging", "ArgumentValue": header}


def test_check_tags_limits_and_order() -> None:
    tag_rules.check_tags({f"k{i}": "" for i in range(50)}, tag_rules.BUCKET_TAG_LIMIT)
    with pytest.raises(AWSError) as e:
        tag_rules.check_tags({f"k{i}": "" for i in range(11)}, tag_rules.OBJECT_TAG_LIMIT)
    assert e.value.message == "Object tags cannot be greater than 10"
    # each tag is checked before the count, as AWS does
    with pytest.raises(AWSError) as e:
        tag_rules.check_tags({**{f"k{i}": "" for i in range(60)}, "bad!": ""}, 50)
    assert (e.value.code, e.value.extra) == ("InvalidTag", {"TagKey": "bad!"})
    with pytest.raises(AWSError) as e:
        tag_rules.check_tags({"k": "v\t"}, 10)
    assert e.value.extra == {"TagKey": "k", "TagValue": "v\t"}
