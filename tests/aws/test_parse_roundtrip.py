"""Every operation of every served model survives botocore's serializer and our parser.

For each operation: generate an input (every member, and separately only the required
ones), serialize it with botocore's own client serializer, build the HTTP request exactly as
botocore would send it (``prepare_request_dict`` + ``AWSRequest.prepare()``: the same URL
path, query string, headers and body bytes), route it, parse it, and compare with the input.

Nothing is normalised: the generated values avoid what HTTP or a wire format legitimately
changes (timestamps at whole seconds since RFC 822 header dates have none; lower-case
``x-amz-meta-*`` keys since header names are case-insensitive; no empty lists, which the
query protocols and flattened XML cannot tell from absent ones -- see shape_values.py).

Known exceptions are listed in ``ROUTED_ELSEWHERE`` with the reason; they are still parsed
(with their own model) and compared, only the routing assertion differs.

Streaming payloads (S3 ``Body``) are handed to the parser as a stream and must come back as
that very stream object, unread.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.model import OperationModel, ServiceModel
from botocore.serialize import create_serializer

from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers, HttpRequest
from zeronode.aws.models import service_model, sqs_query_model
from zeronode.aws.parse import RequestParts, has_streaming_body, parse_request
from zeronode.aws.parse.rest_binding import split_header_list
from zeronode.aws.parse.rest_xml import MALFORMED_XML, parse_xml
from zeronode.aws.routing import (
    json_operation,
    match_rest_operation,
    query_operation,
    query_params,
)

from tests.aws.shape_values import generate

UTC = datetime.timezone.utc

MODELS: dict[str, ServiceModel] = {
    "s3": service_model("s3"),
    "dynamodb": service_model("dynamodb"),
    "sqs": service_model("sqs"),
    "sqs-query": sqs_query_model(),
    "lambda": service_model("lambda"),
    "elbv2": service_model("elbv2"),
    "ec2": service_model("ec2"),
}

# (model, operation, variant) -> (operation the router picks, why).
_LIFECYCLE = "same wire form as the current {}; the non-deprecated operation wins"
ROUTED_ELSEWHERE: dict[tuple[str, str, str], tuple[str, str]] = {
    **{
        ("s3", old, variant): (new, _LIFECYCLE.format(new))
        for old, new in [
            ("GetBucketLifecycle", "GetBucketLifecycleConfiguration"),
            ("PutBucketLifecycle", "PutBucketLifecycleConfiguration"),
            ("GetBucketNotification", "GetBucketNotificationConfiguration"),
            ("PutBucketNotification", "PutBucketNotificationConfiguration"),
        ]
        for variant in ("all", "required")
    },
    ("s3", "ListDirectoryBuckets", "required"): (
        "ListBuckets",
        "a bare GET / is ListBuckets; only max-directory-buckets marks the S3 Express listing",
    ),
}

CASES = [
    pytest.param(key, name, variant, id=f"{key}.{name}.{variant}")
    for key, model in MODELS.items()
    for name in model.operation_names
    for variant in ("all", "required")
]


class _Stream:
    """An async byte stream that remembers its bytes; the parser must not consume it."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        raise AssertionError("the parser read a streaming body")


def wire_request(
    model: ServiceModel, op: OperationModel, params: dict[str, Any]
) -> tuple[HttpRequest, bytes]:
    """The request botocore would send for ``params``, as the ASGI shell would hand it over,
    and its body bytes."""
    serialized = create_serializer(model.protocol).serialize_to_request(params, op)
    prepare_request_dict(serialized, endpoint_url="http://zeronode.test:4566")
    prepared = create_request_object(serialized).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    headers = [("host", url.netloc)]
    for name, value in prepared.headers.items():
        headers.append((name, value.decode("latin-1") if isinstance(value, bytes) else value))

    async def body_iter() -> AsyncIterator[bytes]:
        yield body

    request = HttpRequest(
        method=prepared.method,
        raw_path=url.path,
        path=unquote(url.path),
        query_string=url.query,
        headers=Headers(headers),
        body=body_iter(),
    )
    return request, body


def route(
    model: ServiceModel, request: HttpRequest, body: bytes
) -> tuple[OperationModel, dict[str, str], list[tuple[str, str]]]:
    """Route as the server does: operation, URI labels, and the parameters to parse."""
    protocol = model.protocol
    labels: dict[str, str] = {}
    query = request.query
    if protocol in ("rest-xml", "rest-json"):
        op, labels = match_rest_operation(
            model, request.method, request.raw_path, query, request.headers
        )
    elif protocol == "json":
        op = json_operation(model, request.headers)
    else:
        query = query_params(request, body)
        op = query_operation(model, query)
    return op, labels, query


def roundtrip(
    model: ServiceModel, op: OperationModel, params: dict[str, Any]
) -> tuple[str, dict[str, Any], _Stream | None]:
    request, body = wire_request(model, op, params)
    routed, labels, query = route(model, request, body)
    stream = _Stream(body) if has_streaming_body(op) else None
    parts = RequestParts(
        headers=request.headers, query=query, uri_labels=labels, body=stream or body
    )
    return routed.name, parse_request(op, parts), stream


@pytest.mark.parametrize(("key", "name", "variant"), CASES)
def test_roundtrip(key: str, name: str, variant: str) -> None:
    model = MODELS[key]
    op = model.operation_model(name)
    if op.input_shape is None:
        params: dict[str, Any] = {}
    else:
        params = generate(op.input_shape, seed=hash_seed(key, name), required_only=variant == "required")
        drop_wire_name_clashes(op.input_shape, params)
    routed, parsed, stream = roundtrip(model, op, params)

    expected_route = ROUTED_ELSEWHERE.get((key, name, variant), (name, ""))[0]
    assert routed == expected_route
    if stream is not None:
        member = op.input_shape.serialization["payload"]
        assert parsed.pop(member) is stream
        assert stream.data == params.pop(member, b"")
    if "ContentLength" in parsed and "ContentLength" not in params:
        # The HTTP layer adds Content-Length; S3 binds it to the ContentLength member.
        assert parsed.pop("ContentLength") == len(stream.data if stream else b"")
    if op.input_shape is not None:
        drop_wire_name_clashes(op.input_shape, parsed)
        if model.protocol in ("query", "ec2"):
            pruned = without_empty_structures(op.input_shape, params)
            params = {} if pruned is _EMPTY else pruned
    assert parsed == params


def drop_wire_name_clashes(shape: Any, value: Any) -> None:
    """Known exception: S3's deprecated notification configurations (``TopicConfiguration``,
    ``QueueConfiguration``, ``CloudFunctionConfiguration``) have a single ``Event`` and a
    flattened ``Events`` list that are both ``<Event>`` elements: on the wire they are one
    list, so the parser returns them as ``Events``. Generated inputs keep only the list.
    """
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        lists = {
            m.serialization.get("name", n)
            for n, m in shape.members.items()
            if m.type_name == "list" and m.serialization.get("flattened")
        }
        for n, m in shape.members.items():
            if m.type_name != "list" and m.serialization.get("name", n) in lists:
                value.pop(n, None)
        for n, v in value.items():
            drop_wire_name_clashes(shape.members[n], v)
    elif kind == "list" and isinstance(value, list):
        for item in value:
            drop_wire_name_clashes(shape.member, item)
    elif kind == "map" and isinstance(value, dict):
        for item in value.values():
            drop_wire_name_clashes(shape.value, item)


def without_empty_structures(shape: Any, value: Any) -> Any:
    """Known loss of the query protocols: a structure with no members set writes no
    parameter at all, so ``{}`` (and a list holding only such items) arrives as absent."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict) and not shape.is_document_type:
        pruned = {}
        for n, v in value.items():
            v = without_empty_structures(shape.members[n], v)
            if v is not _EMPTY:
                pruned[n] = v
        return pruned if pruned else _EMPTY
    if kind == "list":
        items = [without_empty_structures(shape.member, item) for item in value]
        items = [item for item in items if item is not _EMPTY]
        return items if items else _EMPTY
    if kind == "map":
        entries = {k: without_empty_structures(shape.value, v) for k, v in value.items()}
        entries = {k: v for k, v in entries.items() if v is not _EMPTY}
        return entries if entries else _EMPTY
    return value


_EMPTY = object()


def hash_seed(key: str, name: str) -> int:
    """A seed stable across runs (``hash()`` of a str is salted per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(f"{key}.{name}"))


# -- wire behaviours the generated round trip does not pin down -------------------------------



def parse_s3(name: str, labels: dict[str, str], body: bytes = b"", query=(), headers=()) -> dict:
    op = MODELS["s3"].operation_model(name)
    parts = RequestParts(headers=Headers(list(headers)), query=list(query), uri_labels=labels, body=body)
    return parse_request(op, parts)


def parse_body(key: str, name: str, body: bytes, query=()) -> dict:
    op = MODELS[key].operation_model(name)
    return parse_request(op, RequestParts(query=list(query), body=body))


def test_s3_acl_grantee_xsi_type_attribute_is_read() -> None:
    body = (
        b'<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Owner><ID>owner-id</ID></Owner><AccessControlList><Grant>"
        b'<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
        b"<ID>grantee-id</ID></Grantee><Permission>FULL_CONTROL</Permission>"
        b"</Grant></AccessControlList></AccessControlPolicy>"
    )
    parsed = parse_s3("PutBucketAcl", {"Bucket": "b"}, body, [("acl", "")])
    assert parsed["AccessControlPolicy"] == {
        "Owner": {"ID": "owner-id"},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": "grantee-id"}, "Permission": "FULL_CONTROL"}
        ],
    }


def test_s3_xml_without_namespace_is_accepted() -> None:
    body = b"<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object><Quiet>true</Quiet></Delete>"
    parsed = parse_s3("DeleteObjects", {"Bucket": "b"}, body, [("delete", "")])
    assert parsed["Delete"] == {"Objects": [{"Key": "a"}, {"Key": "b"}], "Quiet": True}


@pytest.mark.parametrize(
    "body",
    [
        b"<Delete><Object>",
        b"not xml at all",
        b"<Delete></Wrong>",
        b"<Other><Object><Key>a</Key></Object></Other>",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<Delete><Object><Key>&lol2;</Key></Object></Delete>",
        b'<!DOCTYPE d SYSTEM "file:///etc/passwd"><Delete/>',
        b"<Delete><Object><Key>&undefined;</Key></Object></Delete>",
        b"<Delete><Object><Key>\xff</Key></Object></Delete>",
        b"<Delete><x:Object/></Delete>",
    ],
    ids=["truncated", "text", "mismatched", "wrong-root", "billion-laughs", "external-entity",
         "undefined-entity", "bad-utf8", "unbound-prefix"],
)
def test_s3_bad_xml_is_malformed_xml(body: bytes) -> None:
    with pytest.raises(AWSError) as info:
        parse_s3("DeleteObjects", {"Bucket": "b"}, body, [("delete", "")])
    assert (info.value.code, info.value.status, info.value.message) == ("MalformedXML", 400, MALFORMED_XML)


def test_parse_xml_reads_local_names_and_text() -> None:
    root = parse_xml(b'<a xmlns="urn:x"><b k="1">t&amp;u</b><b/></a>')
    assert root.name == "a"
    assert [(c.name, c.attrib, c.text) for c in root.children] == [("b", {"k": "1"}, "t&u"), ("b", {}, "")]


def test_s3_bad_integer_query_value_is_invalid_argument() -> None:
    with pytest.raises(AWSError) as info:
        parse_s3("ListObjectsV2", {"Bucket": "b"}, query=[("list-type", "2"), ("max-keys", "ten")])
    assert (info.value.code, info.value.status) == ("InvalidArgument", 400)
    assert info.value.extra["ArgumentName"] == "max-keys"


def test_s3_bad_header_date_is_invalid_argument() -> None:
    with pytest.raises(AWSError) as info:
        parse_s3("GetObject", {"Bucket": "b", "Key": "k"}, headers=[("if-modified-since", "yesterday")])
    assert info.value.code == "InvalidArgument"


def test_s3_header_date_and_metadata_and_list() -> None:
    parsed = parse_s3(
        "GetObjectAttributes",
        {"Bucket": "b", "Key": "k"},
        query=[("attributes", "")],
        headers=[("x-amz-object-attributes", 'ETag, "Object,Size", "say \\"hi\\""'),
                 ("x-amz-max-parts", "7")],
    )
    assert parsed["ObjectAttributes"] == ["ETag", "Object,Size", 'say "hi"']
    assert parsed["MaxParts"] == 7
    parsed = parse_s3(
        "PutObject",
        {"Bucket": "b", "Key": "k"},
        body=_Stream(b"x"),
        headers=[("If-Match", "e"), ("X-Amz-Meta-Colour", "blue"), ("x-amz-meta-", "ignored"),
                 ("expires", "Tue, 29 Apr 2014 18:30:38 GMT")],
    )
    assert parsed["Metadata"] == {"colour": "blue"}
    assert parsed["Expires"] == datetime.datetime(2014, 4, 29, 18, 30, 38, tzinfo=UTC)


def test_split_header_list_edge_cases() -> None:
    assert split_header_list("a") == ["a"]
    assert split_header_list(" a , b ") == ["a", "b"]
    assert split_header_list('"a,b",c') == ["a,b", "c"]
    assert split_header_list('"x\\\\y"') == ["x\\y"]


def test_streaming_member_is_the_stream_itself_and_others_need_bytes() -> None:
    stream = _Stream(b"data")
    parsed = parse_s3("PutObject", {"Bucket": "b", "Key": "k"}, body=stream)
    assert parsed["Body"] is stream
    with pytest.raises(TypeError):
        parse_s3("PutBucketTagging", {"Bucket": "b"}, body=_Stream(b"<Tagging/>"), query=[("tagging", "")])


def test_lambda_invoke_payload_is_raw_bytes() -> None:
    op = MODELS["lambda"].operation_model("Invoke")
    parts = RequestParts(
        headers=Headers([("x-amz-invocation-type", "Event")]),
        uri_labels={"FunctionName": "fn"},
        body=b'{"not": "parsed"}',
    )
    assert parse_request(op, parts) == {
        "FunctionName": "fn", "InvocationType": "Event", "Payload": b'{"not": "parsed"}'
    }


@pytest.mark.parametrize(
    ("key", "name", "code"),
    [
        ("dynamodb", "PutItem", "SerializationException"),
        ("sqs", "SendMessage", "InvalidParameterValue"),
    ],
)
@pytest.mark.parametrize("body", [b"{", b"[]", b'"text"', b"\xff\xfe"])
def test_malformed_json_body(key: str, name: str, code: str, body: bytes) -> None:
    with pytest.raises(AWSError) as info:
        parse_body(key, name, body)
    assert (info.value.code, info.value.status) == (code, 400)


def test_lambda_malformed_json_body_is_invalid_request_content() -> None:
    op = MODELS["lambda"].operation_model("CreateFunction")
    with pytest.raises(AWSError) as info:
        parse_request(op, RequestParts(body=b"{nope"))
    assert (info.value.code, info.value.status) == ("InvalidRequestContentException", 400)


@pytest.mark.parametrize(
    "body",
    [
        b'{"TableName": 5}',
        b'{"TableName": "t", "Limit": "ten"}',
        b'{"TableName": "t", "Limit": true}',
        b'{"TableName": "t", "ConsistentRead": "yes"}',
        b'{"TableName": "t", "ExclusiveStartKey": []}',
        b'{"TableName": "t", "AttributesToGet": {}}',
        b'{"TableName": "t", "ExclusiveStartKey": {"k": {"B": "not base64!"}}}',
        b'{"TableName": "t", "ScanFilter": {"a": {"AttributeValueList": [{"N": 5}]}}}',
    ],
)
def test_dynamodb_wrong_json_types_are_serialization_exceptions(body: bytes) -> None:
    with pytest.raises(AWSError) as info:
        parse_body("dynamodb", "Scan", body)
    assert info.value.code == "SerializationException"


def test_json_nulls_and_unknown_members_are_ignored_and_empty_body_is_empty_input() -> None:
    assert parse_body("dynamodb", "Scan", b'{"TableName": "t", "Limit": null, "Bogus": 1}') == {"TableName": "t"}
    assert parse_body("dynamodb", "ListTables", b"") == {}


def test_json_timestamps_and_special_floats() -> None:
    parsed = parse_body(
        "dynamodb", "ListBackups",
        b'{"TimeRangeLowerBound": 1400000000.5, "TimeRangeUpperBound": 1400000001}',
    )
    assert parsed["TimeRangeLowerBound"] == datetime.datetime(2014, 5, 13, 16, 53, 20, 500000, tzinfo=UTC)
    assert parsed["TimeRangeUpperBound"] == datetime.datetime(2014, 5, 13, 16, 53, 21, tzinfo=UTC)


def test_sqs_legacy_query_request_as_older_sdks_send_it() -> None:
    # The wire form of a SendMessage from the 2012-11-05 query API (as in AWS's docs).
    form = (
        "Action=SendMessage&MessageAttribute.1.Name=colour&MessageAttribute.1.Value.DataType=String"
        "&MessageAttribute.1.Value.StringValue=blue&MessageAttribute.2.Name=n"
        "&MessageAttribute.2.Value.DataType=Number&MessageAttribute.2.Value.StringValue=1"
        "&MessageBody=This+is+a+test&QueueUrl=http%3A%2F%2Fq.test%2F123456789012%2Fq"
        "&DelaySeconds=3&Version=2012-11-05"
    )
    request = HttpRequest("POST", "/", "/", "", Headers([("content-type", "application/x-www-form-urlencoded")]))
    params = query_params(request, form.encode())
    op = query_operation(MODELS["sqs-query"], params)
    assert parse_request(op, RequestParts(query=params)) == {
        "QueueUrl": "http://q.test/123456789012/q",
        "MessageBody": "This is a test",
        "DelaySeconds": 3,
        "MessageAttributes": {
            "colour": {"DataType": "String", "StringValue": "blue"},
            "n": {"DataType": "Number", "StringValue": "1"},
        },
    }


def test_sqs_legacy_query_lists_and_attribute_maps() -> None:
    params = [
        ("Action", "ReceiveMessage"), ("QueueUrl", "u"), ("AttributeName.1", "All"),
        ("MessageAttributeName.1", "colour"), ("MaxNumberOfMessages", "10"),
    ]
    parsed = parse_body("sqs-query", "ReceiveMessage", b"", params)
    assert parsed == {"QueueUrl": "u", "AttributeNames": ["All"], "MessageAttributeNames": ["colour"],
                      "MaxNumberOfMessages": 10}
    params = [("QueueName", "q"), ("Attribute.1.Name", "DelaySeconds"), ("Attribute.1.Value", "5"),
              ("Tag.1.Key", "team"), ("Tag.1.Value", "core")]
    assert parse_body("sqs-query", "CreateQueue", b"", params) == {
        "QueueName": "q", "Attributes": {"DelaySeconds": "5"}, "tags": {"team": "core"}
    }


def test_sqs_query_model_names_every_flattened_list_and_map() -> None:
    """Guards the legacy-name table: a new flattened member in the model must be added to it."""
    model = MODELS["sqs-query"]
    seen: set[str] = set()
    pending = [
        shape
        for name in model.operation_names
        for shape in (model.operation_model(name).input_shape, model.operation_model(name).output_shape)
        if shape is not None
    ]
    while pending:
        shape = pending.pop()
        if shape.name in seen:
            continue
        seen.add(shape.name)
        for member_name, member in shape.members.items():
            if member.type_name in ("list", "map") and member.serialization.get("flattened"):
                assert "name" in member.serialization, (shape.name, member_name)
            item = member.member if member.type_name == "list" else member
            if item.type_name == "structure":
                pending.append(item)


def test_query_list_indices_are_ordered_numerically_and_may_have_gaps() -> None:
    params = [("Names.member.10", "c"), ("Names.member.2", "b"), ("Names.member.1", "a")]
    assert parse_body("elbv2", "DescribeLoadBalancers", b"", params) == {"Names": ["a", "b", "c"]}


def test_query_empty_list_is_sent_as_bare_name() -> None:
    assert parse_body("elbv2", "DescribeLoadBalancers", b"", [("Names", "")]) == {"Names": []}


def test_query_bad_values_use_each_services_code() -> None:
    with pytest.raises(AWSError) as info:
        parse_body("elbv2", "DescribeLoadBalancers", b"", [("PageSize", "many")])
    assert info.value.code == "ValidationError"
    with pytest.raises(AWSError) as info:
        parse_body("ec2", "DescribeVpcs", b"", [("MaxResults", "many")])
    assert info.value.code == "InvalidParameterValue"
    with pytest.raises(AWSError) as info:
        parse_body("ec2", "DescribeVpcs", b"", [("DryRun", "maybe")])
    assert info.value.code == "InvalidParameterValue"


def test_ec2_filters_and_capitalised_location_names() -> None:
    params = [
        ("Filter.1.Name", "vpc-id"), ("Filter.1.Value.1", "vpc-1"), ("Filter.1.Value.2", "vpc-2"),
        ("VpcId.1", "vpc-3"), ("DryRun", "false"),
    ]
    assert parse_body("ec2", "DescribeVpcs", b"", params) == {
        "Filters": [{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]}],
        "VpcIds": ["vpc-3"],
        "DryRun": False,
    }
