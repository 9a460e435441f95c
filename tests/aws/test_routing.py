"""Routing: which service and operation a request is for, as the AWS endpoints decide."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers, HttpRequest
from zeronode.aws.models import service_model, sqs_query_model
from zeronode.aws.routing import (
    json_operation,
    match_rest_operation,
    query_operation,
    query_params,
    s3_path_style,
    service_for,
)

S3 = service_model("s3")
LAMBDA = service_model("lambda")


def request(
    method: str = "GET",
    raw_path: str = "/",
    query_string: str = "",
    headers: list[tuple[str, str]] | None = None,
) -> HttpRequest:
    return HttpRequest(
        method=method,
        raw_path=raw_path,
        path=unquote(raw_path),
        query_string=query_string,
        headers=Headers(headers or [("host", "zeronode.test")]),
    )


def s3_route(method: str, raw_path: str, query_string: str = "", headers=()) -> tuple[str, dict]:
    req = request(method, raw_path, query_string, list(headers))
    op, labels = match_rest_operation(S3, method, raw_path, req.query, req.headers)
    return op.name, labels


# -- service --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "service"),
    [
        ("s3", "s3"),
        ("dynamodb", "dynamodb"),
        ("sqs", "sqs"),
        ("lambda", "lambda"),
        ("ec2", "ec2"),
        ("elasticloadbalancing", "elbv2"),
    ],
)
def test_service_comes_from_the_credential_scope(scope: str, service: str) -> None:
    assert service_for(request(), scope) == service


def test_credential_scope_wins_over_target_header() -> None:
    req = request("POST", headers=[("x-amz-target", "DynamoDB_20120810.PutItem")])
    assert service_for(req, "sqs") == "sqs"


def test_unsigned_request_with_target_goes_to_that_json_service() -> None:
    assert service_for(request("POST", headers=[("x-amz-target", "AmazonSQS.SendMessage")]), None) == "sqs"
    assert service_for(request("POST", headers=[("X-Amz-Target", "DynamoDB_20120810.Scan")]), None) == "dynamodb"


def test_anonymous_request_is_s3() -> None:
    assert service_for(request("GET", "/bucket/key"), None) == "s3"
    assert service_for(request("POST", headers=[("x-amz-target", "Other.Thing")]), None) == "s3"


def test_scope_for_a_service_not_served_is_refused() -> None:
    with pytest.raises(AWSError) as info:
        service_for(request(), "iam")
    assert info.value.code == "UnrecognizedClientException"


# -- S3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "operation"),
    [
        ("GET", "/", "", [], "ListBuckets"),
        ("GET", "/", "max-directory-buckets=5", [], "ListDirectoryBuckets"),
        ("GET", "/b", "", [], "ListObjects"),
        ("GET", "/b/", "", [], "ListObjects"),
        ("GET", "/b", "list-type=2&prefix=a%2F", [], "ListObjectsV2"),
        ("GET", "/b", "list-type=1", [], "ListObjects"),
        ("GET", "/b", "location", [], "GetBucketLocation"),
        ("GET", "/b", "versions", [], "ListObjectVersions"),
        ("GET", "/b", "uploads", [], "ListMultipartUploads"),
        ("GET", "/b", "analytics", [], "ListBucketAnalyticsConfigurations"),
        ("GET", "/b", "analytics&id=x", [], "GetBucketAnalyticsConfiguration"),
        ("GET", "/b", "lifecycle", [], "GetBucketLifecycleConfiguration"),
        ("PUT", "/b", "", [], "CreateBucket"),
        ("PUT", "/b", "versioning", [], "PutBucketVersioning"),
        ("HEAD", "/b", "", [], "HeadBucket"),
        ("DELETE", "/b", "", [], "DeleteBucket"),
        ("POST", "/b", "delete", [], "DeleteObjects"),
        ("GET", "/b/k", "", [], "GetObject"),
        ("GET", "/b/k", "uploadId=u", [], "ListParts"),
        ("GET", "/b/k", "acl", [], "GetObjectAcl"),
        ("GET", "/b/k", "attributes", [("x-amz-object-attributes", "ETag")], "GetObjectAttributes"),
        ("HEAD", "/b/k", "", [], "HeadObject"),
        ("PUT", "/b/k", "", [], "PutObject"),
        ("PUT", "/b/k", "", [("x-amz-copy-source", "/src/k")], "CopyObject"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", [], "UploadPart"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", [("x-amz-copy-source", "/s/k")], "UploadPartCopy"),
        ("PUT", "/b/k", "tagging", [], "PutObjectTagging"),
        ("POST", "/b/k", "uploads", [], "CreateMultipartUpload"),
        ("POST", "/b/k", "uploadId=u", [], "CompleteMultipartUpload"),
        ("POST", "/b/k", "select&select-type=2", [], "SelectObjectContent"),
        ("POST", "/b/k", "restore", [], "RestoreObject"),
        ("DELETE", "/b/k", "", [], "DeleteObject"),
        ("DELETE", "/b/k", "uploadId=u", [], "AbortMultipartUpload"),
        ("POST", "/WriteGetObjectResponse", "", [], "WriteGetObjectResponse"),
    ],
)
def test_s3_operation_is_the_most_specific_match(
    method: str, path: str, query: str, headers: list, operation: str
) -> None:
    assert s3_route(method, path, query, headers)[0] == operation


def test_s3_x_id_from_newer_sdks_decides_between_look_alikes() -> None:
    # Go v2 / JS v3 send ?x-id=...; without the copy-source header it must still say so.
    assert s3_route("PUT", "/b/k", "x-id=PutObject")[0] == "PutObject"
    assert s3_route("GET", "/b/k", "x-id=GetObject")[0] == "GetObject"
    assert s3_route("PUT", "/b/k", "partNumber=1&uploadId=u&x-id=UploadPart")[0] == "UploadPart"
    # An x-id naming no candidate is ignored rather than trusted.
    assert s3_route("GET", "/b/k", "x-id=DeleteBucket")[0] == "GetObject"


@pytest.mark.parametrize(
    ("raw_path", "key"),
    [
        ("/b/a/b/c.txt", "a/b/c.txt"),
        ("/b//leading", "/leading"),
        ("/b/dir//x", "dir//x"),
        ("/b/a/../c", "a/../c"),
        ("/b/./.", "./."),
        ("/b/trailing/", "trailing/"),
        ("/b/a%2Fb", "a/b"),
        ("/b/%2Fenc", "/enc"),
        ("/b/a+b", "a+b"),
        ("/b/a%2Bb", "a+b"),
        ("/b/sp%20ace", "sp ace"),
        ("/b/%25literal", "%literal"),
        ("/b/%C3%BC%E4%B8%AD", "ü中"),
        ("/b/q%3Fx%23y", "q?x#y"),
    ],
)
def test_s3_keys_are_decoded_but_never_normalised(raw_path: str, key: str) -> None:
    name, labels = s3_route("GET", raw_path)
    assert name == "GetObject"
    assert labels == {"Bucket": "b", "Key": key}


def test_encoded_slash_in_a_single_segment_label_is_data() -> None:
    name, labels = s3_route("GET", "/we%2Fird")
    assert (name, labels) == ("ListObjects", {"Bucket": "we/ird"})


def test_s3_invalid_utf8_in_the_path_is_invalid_uri() -> None:
    with pytest.raises(AWSError) as info:
        s3_route("GET", "/b/%FF")
    assert (info.value.code, info.value.status) == ("InvalidURI", 400)


@pytest.mark.parametrize(
    ("method", "path", "resource"),
    [("PATCH", "/b/k", "OBJECT"), ("POST", "/b", "BUCKET"), ("DELETE", "/", "SERVICE")],
)
def test_s3_unmatched_method_is_method_not_allowed(method: str, path: str, resource: str) -> None:
    with pytest.raises(AWSError) as info:
        s3_route(method, path)
    assert (info.value.code, info.value.status) == ("MethodNotAllowed", 405)
    assert info.value.extra == {"Method": method, "ResourceType": resource}


@pytest.mark.parametrize(
    ("host", "raw_path", "routed"),
    [
        ("photos.s3.example", "/2024/a.jpg", "/photos/2024/a.jpg"),
        ("photos.s3.example:9000", "/", "/photos"),
        ("my.dotted.bucket.s3.example", "/k", "/my.dotted.bucket/k"),
        ("photos.s3.example", "//lead", "/photos//lead"),
        ("PHOTOS.S3.Example", "/k", "/photos/k"),
        ("s3.example:9000", "/b/k", "/b/k"),
        ("127.0.0.1:9000", "/b/k", "/b/k"),
        ("[::1]:9000", "/b/k", "/b/k"),
        ("elsewhere.test", "/b/k", "/b/k"),
    ],
)
def test_s3_virtual_hosted_requests_map_to_path_style(host: str, raw_path: str, routed: str) -> None:
    req = request("GET", raw_path, headers=[("host", host)])
    assert s3_path_style(req, "s3.example") == routed
    assert req.raw_path == raw_path  # the signed path is untouched


def test_s3_without_a_virtual_host_domain_is_path_style() -> None:
    req = request("GET", "/k", headers=[("host", "photos.s3.example")])
    assert s3_path_style(req, None) == "/k"


def test_s3_virtual_hosted_bucket_root_lists_the_bucket() -> None:
    req = request("GET", "/", "list-type=2", [("host", "photos.s3.example")])
    op, labels = match_rest_operation(S3, "GET", s3_path_style(req, "s3.example"), req.query)
    assert (op.name, labels) == ("ListObjectsV2", {"Bucket": "photos"})


# -- Lambda -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "operation", "labels"),
    [
        ("POST", "/2015-03-31/functions/fn/invocations", "", "Invoke", {"FunctionName": "fn"}),
        (
            "POST",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afn/invocations",
            "",
            "Invoke",
            {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:fn"},
        ),
        ("GET", "/2015-03-31/functions/", "", "ListFunctions", {}),
        ("GET", "/2015-03-31/functions/fn", "Qualifier=1", "GetFunction", {"FunctionName": "fn"}),
        ("GET", "/2018-10-31/layers", "", "ListLayers", {}),
        ("GET", "/2018-10-31/layers", "find=LayerVersion&Arn=x", "GetLayerVersionByArn", {}),
        (
            "GET",
            "/2019-09-30/functions/fn/provisioned-concurrency",
            "List=ALL",
            "ListProvisionedConcurrencyConfigs",
            {"FunctionName": "fn"},
        ),
        (
            "GET",
            "/2019-09-30/functions/fn/provisioned-concurrency",
            "Qualifier=1",
            "GetProvisionedConcurrencyConfig",
            {"FunctionName": "fn"},
        ),
        (
            "DELETE",
            "/2018-10-31/layers/L/versions/3",
            "",
            "DeleteLayerVersion",
            {"LayerName": "L", "VersionNumber": "3"},
        ),
    ],
)
def test_lambda_routes(method: str, path: str, query: str, operation: str, labels: dict) -> None:
    req = request(method, path, query)
    op, found = match_rest_operation(LAMBDA, method, path, req.query)
    assert (op.name, found) == (operation, labels)


def test_lambda_unknown_path_is_unknown_operation() -> None:
    with pytest.raises(AWSError) as info:
        match_rest_operation(LAMBDA, "GET", "/2015-03-31/nothing-here", [])
    assert (info.value.code, info.value.status) == ("UnknownOperationException", 404)


def test_lambda_known_path_with_wrong_method_is_method_not_allowed() -> None:
    with pytest.raises(AWSError) as info:
        match_rest_operation(LAMBDA, "PATCH", "/2015-03-31/functions/fn", [])
    assert info.value.status == 405


# -- JSON -------------------------------------------------------------------------------------


def test_json_operation_comes_from_the_target_header() -> None:
    headers = Headers([("X-Amz-Target", "DynamoDB_20120810.PutItem")])
    assert json_operation(service_model("dynamodb"), headers).name == "PutItem"
    headers = Headers([("X-Amz-Target", "AmazonSQS.SendMessage")])
    assert json_operation(service_model("sqs"), headers).name == "SendMessage"


@pytest.mark.parametrize(
    "target",
    [None, "", "DynamoDB_20120810.NoSuchThing", "AmazonSQS.PutItem", "DynamoDB_20111205.PutItem", "PutItem"],
)
def test_json_unknown_target_is_unknown_operation(target: str | None) -> None:
    headers = Headers([] if target is None else [("x-amz-target", target)])
    with pytest.raises(AWSError) as info:
        json_operation(service_model("dynamodb"), headers)
    assert (info.value.code, info.value.status) == ("UnknownOperationException", 400)


# -- query / EC2 ------------------------------------------------------------------------------

FORM = [("host", "zeronode.test"), ("content-type", "application/x-www-form-urlencoded; charset=utf-8")]


def test_query_action_from_the_form_body() -> None:
    req = request("POST", headers=FORM)
    params = query_params(req, b"Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16")
    assert query_operation(service_model("ec2"), params).name == "CreateVpc"
    assert ("CidrBlock", "10.0.0.0/16") in params


def test_query_action_from_the_query_string() -> None:
    req = request("GET", query_string="Action=DescribeLoadBalancers&Version=2015-12-01")
    params = query_params(req, b"")
    assert query_operation(service_model("elbv2"), params).name == "DescribeLoadBalancers"


def test_form_body_is_plus_for_space_encoded() -> None:
    req = request("POST", headers=FORM)
    params = query_params(req, b"Action=SendMessage&MessageBody=a+b%2Bc")
    assert ("MessageBody", "a b+c") in params
    assert query_operation(sqs_query_model(), params).name == "SendMessage"


def test_body_that_is_not_a_form_is_not_read_as_parameters() -> None:
    req = request("POST", headers=[("content-type", "application/json")])
    assert query_params(req, b"Action=CreateVpc") == []


def test_form_body_not_utf8_is_malformed() -> None:
    with pytest.raises(AWSError) as info:
        query_params(request("POST", headers=FORM), b"Action=\xff")
    assert info.value.code == "MalformedQueryString"


def test_unknown_action_is_invalid_action() -> None:
    with pytest.raises(AWSError) as info:
        query_operation(service_model("ec2"), [("Action", "LaunchMissiles")])
    assert (info.value.code, info.value.status) == ("InvalidAction", 400)
    assert "LaunchMissiles" in info.value.message


def test_missing_action_is_missing_action() -> None:
    with pytest.raises(AWSError) as info:
        query_operation(service_model("elbv2"), [("Version", "2015-12-01")])
    assert (info.value.code, info.value.status) == ("MissingAction", 400)


def test_every_rest_operation_template_is_reachable() -> None:
    """No operation is shadowed: its canonical request routes to it (bar the known twins)."""
    twins = {
        "GetBucketLifecycle", "PutBucketLifecycle", "GetBucketNotification", "PutBucketNotification",
    }
    for model in (S3, LAMBDA):
        for name in model.operation_names:
            op = model.operation_model(name)
            path, _, marker = op.http["requestUri"].partition("?")
            raw_path = path.replace("{Key+}", "k/ey").replace("{", "x").replace("}", "")
            query = [tuple((p.split("=") + [""])[:2]) for p in marker.split("&") if p]
            headers = []
            shape = op.input_shape
            for member_name in shape.required_members if shape else []:
                member = shape.members[member_name]
                wire = member.serialization.get("name", member_name)
                if member.serialization.get("location") == "querystring":
                    query.append((wire, "1"))
                elif member.serialization.get("location") == "header":
                    headers.append((wire, "v"))
            if name == "ListDirectoryBuckets":
                query.append(("max-directory-buckets", "1"))
            routed, _ = match_rest_operation(model, op.http["method"], raw_path, query, Headers(headers))
            if name in twins:
                assert routed.name == name + "Configuration"
            else:
                assert routed.name == name, (name, raw_path, query)
