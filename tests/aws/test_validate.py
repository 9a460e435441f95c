"""Input validation against the models, worded as each AWS service words it."""

from __future__ import annotations

import datetime

import pytest

from zeronode.aws.errors import AWSError
from zeronode.aws.models import SERVICES, service_model, sqs_query_model
from zeronode.aws.validate import check_input, render, validate, validation_error

from tests.aws.shape_values import generate


def op(service: str, name: str):
    return service_model(service).operation_model(name)


def raised(service: str, name: str, params: dict) -> AWSError:
    with pytest.raises(AWSError) as info:
        validate(op(service, name), params)
    return info.value


def test_dynamodb_missing_required_member_reads_like_aws() -> None:
    error = raised("dynamodb", "DescribeTable", {})
    assert (error.code, error.status) == ("ValidationException", 400)
    assert error.message == (
        "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_dynamodb_counts_and_joins_every_problem() -> None:
    error = raised(
        "dynamodb",
        "Scan",
        {"TableName": "t", "IndexName": "ab", "Limit": 0, "Select": "EVERYTHING"},
    )
    assert error.message == (
        "3 validation errors detected: "
        "Value 'ab' at 'indexName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3; "
        "Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1; "
        "Value 'EVERYTHING' at 'select' failed to satisfy constraint: "
        "Member must satisfy enum value set: "
        "[ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES, SPECIFIC_ATTRIBUTES, COUNT]"
    )


def test_dynamodb_list_items_use_member_paths_and_patterns_are_enforced() -> None:
    # botocore 1.44's TableName accepts ARNs (no pattern); index names keep theirs.
    problems = check_input(
        op("dynamodb", "CreateTable"),
        {
            "TableName": "t",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "X"}],
            "KeySchema": [{"AttributeName": "pk"}],
            "GlobalSecondaryIndexes": [
                {"IndexName": "bad name!", "KeySchema": [], "Projection": {}}
            ],
        },
    )
    assert [(p.path, p.kind) for p in problems] == [
        ("attributeDefinitions.1.member.attributeType", "enum"),
        ("keySchema.1.member.keyType", "required"),
        ("globalSecondaryIndexes.1.member.indexName", "pattern"),
        ("globalSecondaryIndexes.1.member.keySchema", "length"),
    ]
    assert problems[2].constraint == "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"


def test_lambda_uses_validation_exception_and_patterns() -> None:
    error = raised("lambda", "GetFunction", {"FunctionName": "no spaces allowed"})
    assert error.code == "ValidationException"
    assert error.message.startswith(
        "1 validation error detected: Value 'no spaces allowed' at 'functionName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
    )


def test_elbv2_uses_validation_error() -> None:
    error = raised("elbv2", "CreateTargetGroup", {})
    assert (error.code, error.status) == ("ValidationError", 400)
    assert error.message == (
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_sqs_reports_the_first_missing_parameter() -> None:
    for model in (service_model("sqs"), sqs_query_model()):
        with pytest.raises(AWSError) as info:
            validate(model.operation_model("SendMessage"), {"MessageBody": "x"})
        assert (info.value.code, info.value.message) == (
            "MissingParameter",
            "The request must contain the parameter QueueUrl.",
        )


def test_sqs_does_not_enforce_enums_generically() -> None:
    assert check_input(
        op("sqs", "GetQueueAttributes"), {"QueueUrl": "u", "AttributeNames": ["NotAnAttribute"]}
    ) == []


def test_sqs_wrong_type_is_invalid_parameter_value() -> None:
    error = raised("sqs", "SendMessage", {"QueueUrl": "u", "MessageBody": "x", "DelaySeconds": "5"})
    assert error.code == "InvalidParameterValue"
    assert error.message == (
        "Value 5 for parameter DelaySeconds is invalid. Reason: Member must be of type integer."
    )


def test_ec2_missing_parameter_uses_the_wire_name() -> None:
    error = raised("ec2", "CreateSubnet", {})
    assert (error.code, error.message) == (
        "MissingParameter",
        "The request must contain the parameter VpcId.",
    )


def test_ec2_does_not_reject_unknown_enum_values() -> None:
    assert check_input(op("ec2", "CreateVpc"), {"InstanceTenancy": "brand-new"}) == []


def test_ec2_nested_wire_names() -> None:
    problems = check_input(op("ec2", "DescribeVpcs"), {"Filters": [{"Name": 5}]})
    assert [(p.wire, p.kind) for p in problems] == [("Filter.1.Name", "type")]
    error = validation_error(op("ec2", "DescribeVpcs"), problems)
    assert error is not None
    assert (error.code, error.message) == (
        "InvalidParameterValue",
        "Value (5) for parameter Filter.1.Name is invalid. Member must be of type string",
    )


def test_s3_returns_problems_for_the_service_to_map() -> None:
    problems = validate(op("s3", "PutObject"), {"Bucket": "b"})
    assert [(p.path, p.kind) for p in problems] == [("key", "required")]
    assert validation_error(op("s3", "PutObject"), problems) is None


def test_no_problems_no_error() -> None:
    assert validation_error(op("dynamodb", "ListTables"), []) is None
    assert validate(op("dynamodb", "ListTables"), {}) == []
    assert check_input(op("s3", "ListBuckets"), {}) == []


def test_streaming_bodies_and_documents_are_not_inspected() -> None:
    async def stream():
        yield b""

    assert check_input(op("s3", "PutObject"), {"Bucket": "b", "Key": "k", "Body": stream()}) == []


def test_map_keys_values_and_lengths_are_checked() -> None:
    problems = check_input(
        op("dynamodb", "TagResource"),
        {"ResourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t", "Tags": []},
    )
    assert [(p.path, p.kind) for p in problems] == []
    problems = check_input(
        op("dynamodb", "Query"),
        {"TableName": "tab", "ExpressionAttributeNames": {"#n": 5}},
    )
    assert [(p.path, p.kind) for p in problems] == [("expressionAttributeNames.#n.member", "type")]


def test_value_rendering() -> None:
    assert render(None) == "null"
    assert render("x") == "'x'"
    assert render(True) == "'true'"
    assert render([1, "a"]) == "'[1, a]'"
    assert render({"k": False}) == "'{k=false}'"
    assert render(b"abc") == "'java.nio.HeapByteBuffer[pos=0 lim=3 cap=3]'"
    assert render(datetime.date(2020, 1, 2)) == "'2020-01-02'"


@pytest.mark.parametrize("service", SERVICES)
def test_generated_inputs_pass_apart_from_loosely_generated_patterns(service: str) -> None:
    model = service_model(service)
    for name in model.operation_names:
        operation = model.operation_model(name)
        if operation.input_shape is None:
            continue
        for required_only in (False, True):
            value = generate(operation.input_shape, 11, required_only=required_only)
            problems = [p for p in check_input(operation, value) if p.kind != "pattern"]
            assert problems == [], name
