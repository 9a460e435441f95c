"""AWSError -> error body -> botocore: the code, message and status a client sees.

Two levels: botocore's protocol parser on the raw response (every protocol, also from a bare
protocol name), and a real botocore client answered by the serialized error, which adds the
client's own mapping (modeled exception classes, SQS's query-compatible codes, S3's HEAD).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import HeadersDict
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from tests.aws.test_serialize_roundtrip import MODELS, stub_client
from zeronode.aws.errors import AWSError
from zeronode.aws.serialize import not_implemented, serialize_error

REQUEST_ID = "2b8c4f0e-6a1d-4e7b-9d35-0c9e1f2a3b4d"


def parse_error(model_or_protocol: Any, response: Any) -> dict[str, Any]:
    protocol = model_or_protocol if isinstance(model_or_protocol, str) else model_or_protocol.metadata["protocol"]
    return create_parser(protocol).parse(
        {"status_code": response.status, "headers": HeadersDict(response.headers), "body": response.body}, None
    )


def _case(label: str, code: str, message: str, status: int, wire_code: str) -> Any:
    return pytest.param(label, AWSError(code, message, status), wire_code, id=f"{label}-{code}")


NOT_FOUND = "The specified queue does not exist."
CASES = [
    _case("s3", "NoSuchBucket", "The specified bucket does not exist", 404, "NoSuchBucket"),
    _case("dynamodb", "ResourceNotFoundException", "Requested resource not found", 400,
          "ResourceNotFoundException"),
    _case("dynamodb", "ValidationException", "One or more parameter values were invalid", 400,
          "ValidationException"),
    _case("sqs", "QueueDoesNotExist", NOT_FOUND, 400, "AWS.SimpleQueueService.NonExistentQueue"),
    _case("sqs", "InvalidParameterValue", "Value x for y is invalid.", 400, "InvalidParameterValue"),
    _case("lambda", "ResourceNotFoundException", "Function not found: arn:aws:lambda:f", 404,
          "ResourceNotFoundException"),
    _case("elbv2", "LoadBalancerNotFoundException", "Load balancer not found", 400,
          "LoadBalancerNotFound"),
    _case("elbv2", "LoadBalancerNotFound", "Load balancer not found", 400, "LoadBalancerNotFound"),
    _case("ec2", "InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist", 400,
          "InvalidVpcID.NotFound"),
    _case("sqs-query", "QueueDoesNotExist", NOT_FOUND, 400,
          "AWS.SimpleQueueService.NonExistentQueue"),
    _case("sqs-query", "AWS.SimpleQueueService.NonExistentQueue", NOT_FOUND, 400,
          "AWS.SimpleQueueService.NonExistentQueue"),
]


@pytest.mark.parametrize(("label", "err", "code"), CASES)
def test_error_parses_to_code_message_status(label: str, err: AWSError, code: str) -> None:
    model = MODELS[label]
    response = serialize_error(model, err, request_id=REQUEST_ID)
    assert response.status == err.status
    parsed = parse_error(model, response)
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == err.message
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID


@pytest.mark.parametrize("protocol", ["rest-xml", "json", "rest-json", "query", "ec2"])
def test_error_from_a_bare_protocol_name(protocol: str) -> None:
    err = AWSError("AccessDenied", "Access <Denied> & more", 403)
    response = serialize_error(protocol, err, request_id=REQUEST_ID)
    parsed = parse_error(protocol, response)
    assert (parsed["Error"]["Code"], parsed["Error"]["Message"], response.status) == (
        "AccessDenied",
        "Access <Denied> & more",
        403,
    )


def test_s3_error_document_and_extra_fields() -> None:
    err = AWSError("NoSuchKey", "The specified key does not exist.", 404, extra={"Key": "a<b>&c", "BucketName": "logs"})
    response = serialize_error(MODELS["s3"], err, request_id=REQUEST_ID, resource="/logs/a<b>&c")
    body = response.body.decode()
    assert body.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        "<Message>The specified key does not exist.</Message><Resource>/logs/a&lt;b&gt;&amp;c</Resource>"
        "<Key>a&lt;b&gt;&amp;c</Key><BucketName>logs</BucketName>"
        f"<RequestId>{REQUEST_ID}</RequestId><HostId>"
    )
    headers = HeadersDict(response.headers)
    assert headers["x-amz-request-id"] == REQUEST_ID and headers["x-amz-id-2"]
    error = parse_error(MODELS["s3"], response)["Error"]
    assert error == {
        "Code": "NoSuchKey",
        "Message": "The specified key does not exist.",
        "Resource": "/logs/a<b>&c",
        "Key": "a<b>&c",
        "BucketName": "logs",
    }


def test_s3_head_errors_have_no_body_and_clients_see_the_status() -> None:
    err = AWSError("NoSuchKey", "The specified key does not exist.", 404, headers={"x-amz-delete-marker": "true"})
    response = serialize_error(MODELS["s3"], err, request_id=REQUEST_ID, method="HEAD")
    assert response.body == b"" and response.status == 404
    assert HeadersDict(response.headers)["x-amz-delete-marker"] == "true"
    assert "content-type" not in HeadersDict(response.headers)
    client = stub_client("s3", lambda op: response)
    with pytest.raises(ClientError) as raised:
        client.head_object(Bucket="logs", Key="k")
    assert raised.value.response["Error"] == {"Code": "404", "Message": "Not Found"}
    assert raised.value.response["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_s3_modeled_exception_through_a_client() -> None:
    err = AWSError("NoSuchKey", "The specified key does not exist.", 404, extra={"Key": "k"})
    client = stub_client("s3", lambda op: serialize_error(op.service_model, err, request_id=REQUEST_ID))
    with pytest.raises(client.exceptions.NoSuchKey) as raised:
        client.get_object(Bucket="logs", Key="k")
    assert raised.value.response["Error"]["Key"] == "k"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_dynamodb_error_form_and_client_exception() -> None:
    err = AWSError("ConditionalCheckFailedException", "The conditional request failed", 400, extra={"Item": {"pk": {"S": "k"}}})
    response = serialize_error(MODELS["dynamodb"], err, request_id=REQUEST_ID)
    body = json.loads(response.body)
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
    assert body["message"] == "The conditional request failed"
    validation = serialize_error(MODELS["dynamodb"], AWSError("ValidationException", "bad"), request_id=REQUEST_ID)
    assert json.loads(validation.body)["__type"] == "com.amazon.coral.validate#ValidationException"
    client = stub_client("dynamodb", lambda op: response, retries={"mode": "legacy", "total_max_attempts": 1})
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as raised:
        client.put_item(TableName="t", Item={"pk": {"S": "k"}})
    assert raised.value.response["Item"] == {"pk": {"S": "k"}}


def test_sqs_json_error_maps_old_codes_and_modeled_classes() -> None:
    response = serialize_error(MODELS["sqs"], AWSError("QueueDoesNotExist", "The specified queue does not exist."), request_id=REQUEST_ID)
    headers = HeadersDict(response.headers)
    assert headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert json.loads(response.body)["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    client = stub_client("sqs", lambda op: response)
    with pytest.raises(client.exceptions.QueueDoesNotExist) as raised:
        client.get_queue_url(QueueName="missing")
    error = raised.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error["Type"] == "Sender"
    assert error["Message"] == "The specified queue does not exist."


def test_sqs_query_error_document() -> None:
    err = AWSError("PurgeQueueInProgress", "Only one PurgeQueue operation is allowed every 60 seconds.", 403)
    body = serialize_error(MODELS["sqs-query"], err, request_id=REQUEST_ID).body.decode()
    assert body == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender</Type>'
        "<Code>AWS.SimpleQueueService.PurgeQueueInProgress</Code>"
        "<Message>Only one PurgeQueue operation is allowed every 60 seconds.</Message></Error>"
        f"<RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"
    )


def test_lambda_error_header_body_and_client_exception() -> None:
    err = AWSError("ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:1:function:f", 404)
    response = serialize_error(MODELS["lambda"], err, request_id=REQUEST_ID)
    assert HeadersDict(response.headers)["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(response.body) == {"Type": "User", "Message": err.message}
    server = serialize_error(MODELS["lambda"], AWSError("ServiceException", "boom", 500, sender_fault=False), request_id=REQUEST_ID)
    assert json.loads(server.body)["Type"] == "Service"
    client = stub_client("lambda", lambda op: response)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        client.get_function(FunctionName="f")
    assert raised.value.response["Error"]["Message"] == err.message
    assert raised.value.response["Type"] == "User"


def test_query_and_ec2_errors_through_clients() -> None:
    elb_error = AWSError("LoadBalancerNotFoundException", "One or more load balancers not found", 400)
    elb = stub_client("elbv2", lambda op: serialize_error(op.service_model, elb_error, request_id=REQUEST_ID))
    with pytest.raises(elb.exceptions.LoadBalancerNotFoundException) as raised:
        elb.describe_load_balancers(Names=["x"])
    assert raised.value.response["Error"]["Type"] == "Sender"
    ec2_error = AWSError("InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist", 400)
    response = serialize_error(MODELS["ec2"], ec2_error, request_id=REQUEST_ID)
    assert response.body.decode().endswith(
        "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>"
        "<Message>The vpc ID 'vpc-1' does not exist</Message></Error></Errors>"
        f"<RequestID>{REQUEST_ID}</RequestID></Response>"
    )
    ec2 = stub_client("ec2", lambda op: response)
    with pytest.raises(ClientError) as raised:
        ec2.describe_vpcs(VpcIds=["vpc-1"])
    assert raised.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    assert raised.value.response["ResponseMetadata"]["RequestId"] == REQUEST_ID


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("s3", "NotImplemented", 501),
        ("dynamodb", "UnknownOperationException", 400),
        ("sqs", "AWS.SimpleQueueService.UnsupportedOperation", 400),
        ("lambda", "UnknownOperationException", 400),
        ("elbv2", "InvalidAction", 400),
        ("ec2", "UnsupportedOperation", 400),
    ],
)
def test_not_implemented_per_service(service: str, code: str, status: int) -> None:
    err = not_implemented(service, "DoSomething")
    response = serialize_error(MODELS[service], err, request_id=REQUEST_ID)
    parsed = parse_error(MODELS[service], response)
    assert (parsed["Error"]["Code"], response.status) == (code, status)
    if service == "s3":
        assert parsed["Error"]["Message"] == "A header you provided implies functionality that is not implemented"
    else:
        assert "DoSomething" in parsed["Error"]["Message"]
