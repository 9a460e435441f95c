"""Every operation's output survives our serializer and botocore's own response parser.

For each operation with an output shape, of the six models plus SQS over the legacy query
protocol: generate an output (all members, three seeds; and the empty output), serialize it,
hand the HTTP response to ``botocore.parsers.create_parser(protocol).parse`` and compare with
what went in. ``ResponseMetadata`` is dropped. The only adjustments are for what the wire
itself cannot carry or what botocore's client, not its parser, does:

- a ``statusCode`` member can only be an HTTP status: it is set to the operation's status;
- a streaming payload is given to the parser as a stream, as botocore's client gives it,
  and read back;
- an unset structure/string payload and an unset header map arrive as an empty body/no
  headers, which botocore reports as ``{}``/``""``/``{}``;
- S3 ``GetBucketLocation`` is finished by botocore's ``after-call`` handler, as in a client;
- S3's deprecated notification shapes give two members one element name (``Event``); the
  scalar twin is compared out.

Nothing else is normalised: the generator's timestamps are whole seconds and its text is
what XML can carry, so sub-millisecond truncation and XML-forbidden characters are pinned
by the separate tests below.

Event-stream outputs (S3 ``SelectObjectContent``, Lambda ``InvokeWithResponseStream``) are
not covered: their payload is an AWS event stream, not a protocol body.
"""

from __future__ import annotations

import datetime as _dt
import io
import re
import zlib
from typing import Any

import botocore.session
import pytest
from botocore import handlers
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ChecksumError
from botocore.model import ServiceModel
from botocore.parsers import ResponseParserError, create_parser
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.aws.shape_values import generate
from zeronode.aws import models
from zeronode.aws.serialize import serialize_response
from zeronode.aws.serialize.xml_body import has_forbidden_chars

REQUEST_ID = "7c1a5d0e-0b5e-4b8e-9c43-8d1f7a9e0c21"


def _models() -> dict[str, ServiceModel]:
    found = {name: models.service_model(name) for name in models.SERVICES}
    found["sqs-query"] = models.sqs_query_model()
    return found


MODELS = _models()


def _cases() -> list[Any]:
    cases = []
    for label, model in MODELS.items():
        for op_name in model.operation_names:
            op = model.operation_model(op_name)
            if op.output_shape is None:
                continue
            marks = ()
            if op.get_event_stream_output() is not None:
                marks = (pytest.mark.skip(reason="event-stream payload, not a protocol body"),)
            cases.append(pytest.param(label, op_name, id=f"{label}.{op_name}", marks=marks))
    return cases


def roundtrip(op: Any, output: dict[str, Any]) -> dict[str, Any]:
    """Serialize ``output`` and parse it back the way a botocore client would."""
    response = serialize_response(op, output, request_id=REQUEST_ID)
    assert isinstance(response.body, bytes)
    body: Any = response.body
    if op.has_streaming_output:
        body = io.BytesIO(response.body)
    protocol = op.service_model.metadata["protocol"]
    http = {"status_code": response.status, "headers": HeadersDict(response.headers), "body": body}
    parsed = create_parser(protocol).parse(http, op.output_shape)
    if op.service_model.service_name == "s3" and op.name == "GetBucketLocation":
        handlers.parse_get_bucket_location(parsed, _RawResponse(response.body))
    metadata = parsed.pop("ResponseMetadata")
    assert metadata["RequestId"] == REQUEST_ID
    assert metadata["HTTPStatusCode"] == response.status
    if op.has_streaming_output:
        name = op.output_shape.serialization["payload"]
        parsed[name] = parsed[name].read()
    return parsed


class _RawResponse:
    """What ``parse_get_bucket_location`` reads from botocore's HTTP response."""

    def __init__(self, content: bytes) -> None:
        self.raw = object()
        self.content = content


def _without_wire_collisions(shape: Any, value: Any) -> Any:
    """Drop members whose wire name another member of the same structure also uses.

    Only S3's deprecated notification shapes do this: ``Event`` and the flattened ``Events``
    are both ``<Event>`` elements, so botocore fills both from the same elements. The scalar
    one is dropped on both sides of the comparison.
    """
    if value is None:
        return value
    if shape.type_name == "structure" and not shape.is_document_type:
        seen: dict[str, str] = {}
        result = {}
        for name, member in shape.members.items():
            if name not in value:
                continue
            wire = member.serialization.get("name", name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                wire = member.member.serialization.get("name", wire)
            if wire in seen:
                result.pop(seen[wire])
            seen[wire] = name
            result[name] = _without_wire_collisions(member, value[name])
        return result
    if shape.type_name == "list":
        return [_without_wire_collisions(shape.member, item) for item in value]
    if shape.type_name == "map":
        return {key: _without_wire_collisions(shape.value, item) for key, item in value.items()}
    return value


def _expected(op: Any, output: dict[str, Any]) -> dict[str, Any]:
    shape = op.output_shape
    expected = _without_wire_collisions(shape, output)
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location == "statusCode":
            expected[name] = int(op.http.get("responseCode", 200))
        elif location == "headers" and name not in expected:
            expected[name] = {}
    if op.service_model.service_name == "s3" and op.name == "GetBucketLocation":
        expected.setdefault("LocationConstraint", None)  # us-east-1: an empty element
    payload = shape.serialization.get("payload")
    if payload is not None and payload not in expected:
        member = shape.members[payload]
        if op.has_streaming_output:
            expected[payload] = b""
        elif member.type_name == "structure":
            expected[payload] = {}
        elif member.type_name in ("string", "blob"):
            expected[payload] = ""
    return expected


@pytest.mark.parametrize(("label", "op_name"), _cases())
def test_output_roundtrips_through_botocore(label: str, op_name: str) -> None:
    op = MODELS[label].operation_model(op_name)
    for seed in (1, 2, 3):
        output = generate(op.output_shape, seed)
        expected = _expected(op, output)
        parsed = _without_wire_collisions(op.output_shape, roundtrip(op, expected))
        assert parsed == expected
    assert roundtrip(op, {}) == _expected(op, {})


# -- a botocore client answered by our serializer, for end-to-end checks ------------------


class _Raw:
    """The urllib3-like object botocore reads a response body from."""

    def __init__(self, body: bytes) -> None:
        self._stream = io.BytesIO(body)

    def stream(self, amt: int = 1024, decode_content: bool = False):
        while chunk := self._stream.read(amt):
            yield chunk

    def read(self, amt: int | None = None) -> bytes:
        return self._stream.read(amt)


def stub_client(service: str, answer: Any, **config: Any) -> Any:
    """A real botocore client whose HTTP layer returns ``answer(operation_model)``.

    ``answer`` returns an :class:`HttpResponse` with a bytes body. No socket is opened: the
    ``before-send`` hook hands botocore the response, which then goes through the client's
    full parsing, checksum, retry and error-mapping path.
    """
    session = botocore.session.get_session()
    client = session.create_client(
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries=config.pop("retries", {"total_max_attempts": 1}), **config),
    )

    def respond(request: Any, **kwargs: Any) -> Any:
        op_name = kwargs["event_name"].rsplit(".", 1)[-1]
        response = answer(client.meta.service_model.operation_model(op_name))
        return AWSResponse(request.url, response.status, HeadersDict(response.headers), _Raw(response.body))

    client.meta.events.register("before-send", respond)
    return client


# -- behaviour pinned per protocol ----------------------------------------------------------

S3 = MODELS["s3"]
T0 = _dt.datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=_dt.timezone.utc)


def _header(response: Any, name: str) -> str | None:
    return HeadersDict(response.headers).get(name)


def test_s3_list_objects_is_the_document_s3_sends() -> None:
    op = S3.operation_model("ListObjectsV2")
    output = {"Name": "logs", "KeyCount": 1, "Contents": [{"Key": "a<&>b\r\n'\"c", "LastModified": T0, "Size": 3}]}
    response = serialize_response(op, output, request_id=REQUEST_ID)
    body = response.body.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')
    assert "<LastModified>2026-11-24T10:00:00.123Z</LastModified>" in body
    assert "<Key>a&lt;&amp;&gt;b&#xD;\n'\"c</Key>" in body
    assert _header(response, "x-amz-request-id") == REQUEST_ID
    assert _header(response, "x-amz-id-2")
    assert _header(response, "content-type") == "application/xml"
    parsed = roundtrip(op, output)
    assert parsed["Contents"][0]["Key"] == "a<&>b\r\n'\"c"
    assert parsed["Contents"][0]["LastModified"] == T0.replace(microsecond=123000)


def test_s3_keys_xml_cannot_carry_are_character_references_like_s3() -> None:
    op = S3.operation_model("ListObjectsV2")
    response = serialize_response(op, {"Contents": [{"Key": "a\x01b\x1f\ufffe"}]}, request_id=REQUEST_ID)
    assert b"<Key>a&#x1;b&#x1F;&#xFFFE;</Key>" in response.body
    # As with S3, a strict XML 1.0 parser refuses them: clients list with EncodingType=url.
    with pytest.raises(ResponseParserError):
        create_parser("rest-xml").parse(
            {"status_code": 200, "headers": HeadersDict(response.headers), "body": response.body}, op.output_shape
        )


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_xml_can_carry_survives_escaping(text: str) -> None:
    op = S3.operation_model("ListObjectsV2")
    output = {"Prefix": text, "Contents": [{"Key": text}]}
    if has_forbidden_chars(text):
        body = serialize_response(op, output, request_id=REQUEST_ID).body
        assert re.search(rb"&#x[0-9A-F]+;", body)
    else:
        assert roundtrip(op, output) == output


async def test_s3_get_object_streams_the_body_untouched() -> None:
    read = []

    async def chunks():
        read.append(True)
        yield b"never read by the serializer"

    body = chunks()
    op = S3.operation_model("GetObject")
    output = {
        "Body": body,
        "ContentLength": 28,
        "ContentType": "text/plain",
        "ETag": '"abc"',
        "LastModified": T0,
        "Metadata": {"owner": "ops", "note": "naïve café"},
    }
    response = serialize_response(op, output, request_id=REQUEST_ID)
    assert response.body is body and not read
    headers = HeadersDict(response.headers)
    assert headers["Last-Modified"] == "Tue, 24 Nov 2026 10:00:00 GMT"
    assert headers["Content-Length"] == "28"
    assert headers["x-amz-meta-owner"] == "ops"
    # Non-ASCII metadata goes out as an RFC 2047 encoded word, as S3 sends it.
    assert headers["x-amz-meta-note"] == "=?UTF-8?B?bmHDr3ZlIGNhZsOp?="
    assert all(value.isascii() for _, value in response.headers)


def test_s3_status_codes_come_from_the_model() -> None:
    response = serialize_response(S3.operation_model("DeleteObject"), {"DeleteMarker": True}, request_id=REQUEST_ID)
    assert response.status == 204 and response.body == b""
    assert _header(response, "x-amz-delete-marker") == "true"


def test_s3_grantee_type_is_an_xsi_attribute() -> None:
    op = S3.operation_model("GetBucketAcl")
    output = {
        "Owner": {"ID": "owner-id"},
        "Grants": [{"Grantee": {"ID": "owner-id", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}],
    }
    body = serialize_response(op, output, request_id=REQUEST_ID).body.decode()
    assert "<AccessControlPolicy xmlns=" in body
    assert '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">' in body
    assert "<AccessControlList><Grant>" in body
    assert roundtrip(op, output) == output


def test_s3_get_bucket_location_through_a_client() -> None:
    regions = iter(["eu-west-1", None])
    client = stub_client(
        "s3", lambda op: serialize_response(op, {"LocationConstraint": next(regions)}, request_id=REQUEST_ID)
    )
    assert client.get_bucket_location(Bucket="logs")["LocationConstraint"] == "eu-west-1"
    assert client.get_bucket_location(Bucket="logs")["LocationConstraint"] is None


def test_dynamodb_json_with_a_crc32_botocore_verifies() -> None:
    item = {"pk": {"S": "k"}, "blob": {"B": b"\x00\xff"}, "n": {"N": "1.5"}}
    good = iter([True, False])

    def answer(op: Any) -> Any:
        response = serialize_response(op, {"Item": item}, request_id=REQUEST_ID)
        if not next(good):
            response.body = response.body.replace(b"1.5", b"2.5")
        return response

    client = stub_client("dynamodb", answer, retries={"mode": "legacy", "total_max_attempts": 1})
    assert client.get_item(TableName="t", Key={"pk": {"S": "k"}})["Item"] == item
    with pytest.raises(ChecksumError):
        client.get_item(TableName="t", Key={"pk": {"S": "k"}})


def test_dynamodb_body_form() -> None:
    op = MODELS["dynamodb"].operation_model("DescribeTable")
    response = serialize_response(op, {"Table": {"TableName": "t", "CreationDateTime": T0}}, request_id=REQUEST_ID)
    assert _header(response, "content-type") == "application/x-amz-json-1.0"
    assert _header(response, "x-amzn-requestid") == REQUEST_ID
    assert _header(response, "x-amz-crc32") == str(zlib.crc32(response.body))
    assert response.body == b'{"Table":{"TableName":"t","CreationDateTime":1795514400.123}}'


async def test_lambda_invoke_streams_payload_and_binds_status_and_headers() -> None:
    async def chunks():
        yield b'{"ok": true}'

    payload = chunks()
    op = MODELS["lambda"].operation_model("Invoke")
    output = {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST", "Payload": payload}
    response = serialize_response(op, output, request_id=REQUEST_ID)
    assert response.status == 200 and response.body is payload
    assert _header(response, "X-Amz-Function-Error") == "Unhandled"
    assert _header(response, "X-Amz-Executed-Version") == "$LATEST"


def test_lambda_status_codes_and_empty_bodies() -> None:
    lam = MODELS["lambda"]
    created = serialize_response(lam.operation_model("CreateFunction"), {"FunctionName": "f"}, request_id=REQUEST_ID)
    assert created.status == 201 and created.body == b'{"FunctionName":"f"}'
    assert _header(created, "content-type") == "application/json"
    deleted = serialize_response(lam.operation_model("DeleteFunction"), {}, request_id=REQUEST_ID)
    assert deleted.status == 200 and deleted.body == b""
    accepted = serialize_response(lam.operation_model("InvokeAsync"), {"Status": 202}, request_id=REQUEST_ID)
    assert accepted.status == 202


def test_jsonvalue_headers_are_base64_json() -> None:
    model = ServiceModel(
        {
            "metadata": {"protocol": "rest-json", "apiVersion": "2020-01-01", "endpointPrefix": "x"},
            "operations": {"Op": {"name": "Op", "http": {"method": "GET", "requestUri": "/"}, "output": {"shape": "Out"}}},
            "shapes": {
                "Out": {
                    "type": "structure",
                    "members": {
                        "Doc": {"shape": "Json", "location": "header", "locationName": "x-doc"},
                        "When": {"shape": "Stamp", "location": "header", "locationName": "x-when"},
                        "Names": {"shape": "Names", "location": "header", "locationName": "x-names"},
                    },
                },
                "Json": {"type": "string", "jsonvalue": True},
                "Stamp": {"type": "timestamp"},
                "Names": {"type": "list", "member": {"shape": "Name"}},
                "Name": {"type": "string"},
            },
        },
        service_name="x",
    )
    op = model.operation_model("Op")
    output = {"Doc": {"a": [1, "ü"]}, "When": T0.replace(microsecond=0), "Names": ["a", "b"]}
    response = serialize_response(op, output, request_id=REQUEST_ID)
    assert _header(response, "x-when") == "Tue, 24 Nov 2026 10:00:00 GMT"
    assert _header(response, "x-names") == "a, b"
    assert roundtrip(op, output) == output


def test_query_envelope_and_member_lists() -> None:
    op = MODELS["elbv2"].operation_model("DescribeLoadBalancers")
    output = {"LoadBalancers": [{"LoadBalancerName": "lb", "CreatedTime": T0, "SecurityGroups": ["sg-1", "sg-2"]}]}
    response = serialize_response(op, output, request_id=REQUEST_ID)
    body = response.body.decode()
    assert body.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeLoadBalancersResponse '
        'xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeLoadBalancersResult>'
    )
    assert "<SecurityGroups><member>sg-1</member><member>sg-2</member></SecurityGroups>" in body
    assert body.endswith(
        f"</DescribeLoadBalancersResult><ResponseMetadata><RequestId>{REQUEST_ID}</RequestId>"
        "</ResponseMetadata></DescribeLoadBalancersResponse>"
    )
    assert _header(response, "content-type") == "text/xml"


def test_sqs_query_envelope() -> None:
    op = MODELS["sqs-query"].operation_model("ReceiveMessage")
    output = {"Messages": [{"MessageId": "m1", "Body": "hi <there>", "Attributes": {"SenderId": "A"}}]}
    body = serialize_response(op, output, request_id=REQUEST_ID).body.decode()
    assert '<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult>' in body
    assert "<Body>hi &lt;there&gt;</Body>" in body
    assert roundtrip(op, output) == output


def test_ec2_request_id_items_and_return() -> None:
    ec2 = MODELS["ec2"]
    op = ec2.operation_model("DescribeVpcs")
    output = {"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "Tags": [{"Key": "Name", "Value": "a&b"}]}]}
    body = serialize_response(op, output, request_id=REQUEST_ID).body.decode()
    assert body.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>{REQUEST_ID}</requestId><vpcSet><item>"
    )
    assert "<cidrBlock>10.0.0.0/16</cidrBlock>" in body
    assert "<tagSet><item><key>Name</key><value>a&amp;b</value></item></tagSet>" in body
    assert roundtrip(op, output) == output
    no_output = next(name for name in ec2.operation_names if ec2.operation_model(name).output_shape is None)
    body = serialize_response(ec2.operation_model(no_output), {}, request_id=REQUEST_ID).body.decode()
    assert re.search(rf"<requestId>{REQUEST_ID}</requestId><return>true</return></{no_output}Response>$", body)


def test_sqs_query_uses_the_legacy_wire_names() -> None:
    sqs = MODELS["sqs-query"]
    urls = serialize_response(sqs.operation_model("ListQueues"), {"QueueUrls": ["u1", "u2"]}, request_id=REQUEST_ID)
    assert b"<ListQueuesResult><QueueUrl>u1</QueueUrl><QueueUrl>u2</QueueUrl></ListQueuesResult>" in urls.body
    message = {
        "MessageId": "m1",
        "Attributes": {"SenderId": "A"},
        "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
    }
    received = serialize_response(
        sqs.operation_model("ReceiveMessage"), {"Messages": [message]}, request_id=REQUEST_ID
    ).body.decode()
    assert "<ReceiveMessageResult><Message><MessageId>m1</MessageId>" in received
    assert "<Attribute><Name>SenderId</Name><Value>A</Value></Attribute>" in received
    assert "<MessageAttribute><Name>k</Name><Value>" in received
