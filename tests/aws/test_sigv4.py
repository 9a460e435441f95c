"""SigV4 verification against requests signed by botocore itself (CRT and Python signers)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from typing import Any, Callable

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.aws import signing
from tests.aws.signing import ENDPOINT, SIGNED_AT, captured, from_url, presigned, python_signed, verify
from zeronode.aws import sigv4
from zeronode.aws.errors import AWSError
from zeronode.aws.http import Headers, HttpRequest

QUEUE_URL = f"{ENDPOINT}/000000000000/q"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"

S3_KEYS = ["plain.txt", "with space.txt", "ünïcödé/ключ/鍵", "a+b=c&d", "literal%2Fslash",
           "dir//double", "/leading", "a/./b/../c", "~tilde!*'()$,;:@"]

CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    **{f"s3-put-{k}": ("s3", lambda c, k=k: c.put_object(Bucket="bkt", Key=k, Body=b"data"))
       for k in S3_KEYS},
    "s3-uploads": ("s3", lambda c: c.create_multipart_upload(Bucket="bkt", Key="big")),
    "s3-list-prefix": ("s3", lambda c: c.list_objects_v2(Bucket="bkt", Prefix="a/", Delimiter="/",
                                                        StartAfter="a/é")),
    "s3-upload-part": ("s3", lambda c: c.upload_part(Bucket="bkt", Key="k", UploadId="u+/=",
                                                     PartNumber=1, Body=b"x")),
    "s3-get-range": ("s3", lambda c: c.get_object(Bucket="bkt", Key="k", Range="bytes=0-9")),
    "s3-list-buckets": ("s3", lambda c: c.list_buckets()),
    "s3-metadata": ("s3", lambda c: c.put_object(Bucket="bkt", Key="m", Body=b"",
                                                 Metadata={"Colour": "  two  spaces  "})),
    "s3-utf8-header": ("s3", lambda c: c.put_object(Bucket="bkt", Key="k", Body=b"x",
                                                    ContentDisposition='inline; filename="é"')),
    "dynamodb": ("dynamodb", lambda c: c.put_item(TableName="t", Item={"k": {"S": "ü"}})),
    "sqs": ("sqs", lambda c: c.send_message(QueueUrl=QUEUE_URL, MessageBody="hello")),
    "lambda-arn": ("lambda", lambda c: c.invoke(FunctionName=FUNCTION_ARN, Payload=b"{}")),
    "lambda-qualifier": ("lambda", lambda c: c.get_function(FunctionName="fn", Qualifier="$LATEST")),
    "ec2": ("ec2", lambda c: c.describe_vpcs(VpcIds=["vpc-1"])),
    "elbv2": ("elbv2", lambda c: c.describe_load_balancers(Names=["a b"])),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_botocore_client_requests_verify(name: str) -> None:
    service, call = CALLS[name]
    req, body = captured(service, call)
    ctx = verify(req, body)
    assert ctx.access_key_id == signing.ACCESS_KEY
    assert ctx.region == "us-east-1"
    assert ctx.amz_date == "20260115T120000Z"
    assert ctx.signing_key == sigv4.signing_key(signing.SECRET_KEY, "20260115", "us-east-1",
                                                ctx.service)


def test_scope_names_the_service_for_routing() -> None:
    expected = {"s3": "s3", "dynamodb": "dynamodb", "sqs": "sqs", "lambda": "lambda",
                "ec2": "ec2", "elbv2": "elasticloadbalancing"}
    for client_name, scope_service in expected.items():
        call = next(call for svc, call in CALLS.values() if svc == client_name)
        req, _ = captured(client_name, call)
        info = sigv4.parse_authorization(req)
        assert info is not None and info.service == scope_service


def test_canonical_uris_as_botocore_sent_them() -> None:
    req, _ = captured(*CALLS["lambda-arn"])
    assert req.raw_path == ("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A"
                            "123456789012%3Afunction%3Amy-fn/invocations")
    # Other services: encoded a second time.
    assert sigv4.canonical_uri(req.raw_path, "json").count("%253A") == 6
    # S3: exactly as sent, double slashes and dot segments included.
    assert sigv4.canonical_uri("/bkt/a/./b/../c//d", "s3") == "/bkt/a/./b/../c//d"
    assert sigv4.canonical_uri("/a/./b/../c//d/", "json") == "/a/c/d/"
    assert sigv4.canonical_uri("", "json") == "/"


def test_canonical_query_is_sorted_and_uniformly_encoded() -> None:
    assert sigv4.canonical_query_string("uploads") == "uploads="
    assert sigv4.canonical_query_string("prefix=a%2F&list-type=2") == "list-type=2&prefix=a%2F"
    # Escaping choices of the client do not matter; "+" is a literal plus.
    assert sigv4.canonical_query_string("k=a/b~c+d%7e") == "k=a%2Fb~c%2Bd~"
    assert sigv4.canonical_query_string("b=2&a=2&a=1") == "a=1&a=2&b=2"
    assert sigv4.canonical_query_string("X-Amz-Signature=x&a=1", presigned=True) == "a=1"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_any_s3_key_verifies(key: str) -> None:
    req, body = captured("s3", lambda c: c.put_object(Bucket="bkt", Key=key, Body=b"x"))
    verify(req, body)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.text(min_size=0, max_size=20), token=st.text(min_size=1, max_size=20))
def test_any_s3_query_verifies(prefix: str, token: str) -> None:
    req, body = captured("s3", lambda c: c.list_objects_v2(Bucket="bkt", Prefix=prefix,
                                                          ContinuationToken=token))
    verify(req, body)


# ---------------------------------------------------------------- python signers


def test_python_sigv4_with_dot_segments_and_spaces() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions/a%20b/./x/../invocations"
    req, body = python_signed(SigV4Auth, "lambda", "POST", url, body=b"{}")
    verify(req, body)


def test_python_s3_signer_with_query() -> None:
    url = f"{ENDPOINT}/bkt/some%20key?uploadId=abc%2Bdef&partNumber=3"
    req, body = python_signed(S3SigV4Auth, "s3", "PUT", url, body=b"part data")
    verify(req, body)


def test_date_header_instead_of_x_amz_date() -> None:
    req, body = python_signed(SigV4Auth, "dynamodb", "POST", f"{ENDPOINT}/",
                              headers={"Date": "x", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
                              body=b"{}")
    assert req.headers.get("x-amz-date") is None
    assert req.headers.get("date") == "Thu, 15 Jan 2026 12:00:00 -0000"  # email.utils.formatdate
    assert verify(req, body).amz_date == "20260115T120000Z"


def test_multi_valued_header_is_joined_with_commas() -> None:
    req, body = python_signed(SigV4Auth, "dynamodb", "POST", f"{ENDPOINT}/", body=b"{}",
                              headers={"X-Amz-Meta-Note": "  a   b  "})
    verify(req, body)
    items = req.headers.items()
    tampered = dataclasses.replace(req, headers=Headers([*items, ("x-amz-meta-note", "c")]))
    with pytest.raises(AWSError) as e:
        verify(tampered, body)
    assert e.value.code == "InvalidSignatureException"


def test_utf8_header_value_as_sent_on_the_wire() -> None:
    # botocore refuses non-ASCII metadata, so sign by hand as other SDKs do: UTF-8 bytes.
    req, body = python_signed(SigV4Auth, "dynamodb", "POST", f"{ENDPOINT}/", body=b"{}",
                              headers={"X-Amz-Meta-Name": "abc"})
    info = sigv4.parse_authorization(req)
    assert info is not None
    wire = "Zoë".encode("utf-8").decode("latin-1")  # what the ASGI layer hands over
    items = [(k, wire if k == "x-amz-meta-name" else v) for k, v in req.headers.items()]
    sent = dataclasses.replace(req, headers=Headers(items))
    client_view = dataclasses.replace(req, headers=Headers(
        [(k, "Zoë" if k == "x-amz-meta-name" else v) for k, v in req.headers.items()]))
    payload = hashlib.sha256(body).hexdigest()
    canonical = sigv4.canonical_request(client_view, info, payload, "json")
    key = sigv4.signing_key(signing.SECRET_KEY, info.date, info.region, info.service)
    signature = sigv4.sign(key, sigv4.string_to_sign(info.amz_date, info.scope, canonical))
    ctx = sigv4.verify(sent, dataclasses.replace(info, signature=signature),
                       secret_for=signing.KEYS.get, payload_hash=payload, now=SIGNED_AT,
                       family="json")
    assert ctx.signature == signature


# ---------------------------------------------------------------- tampering


def _replace_header(req: HttpRequest, name: str, value: str) -> HttpRequest:
    items = [(k, value if k == name else v) for k, v in req.headers.items()]
    return dataclasses.replace(req, headers=Headers(items))


TAMPERS: dict[str, Callable[[HttpRequest], HttpRequest]] = {
    "method": lambda r: dataclasses.replace(r, method="DELETE"),
    "path": lambda r: dataclasses.replace(r, raw_path=r.raw_path + "x"),
    "query-added": lambda r: dataclasses.replace(r, query_string="versionId=1"),
    "signed-header": lambda r: _replace_header(r, "host", "evil.example:4566"),
    "date-within-skew": lambda r: _replace_header(r, "x-amz-date", "20260115T120100Z"),
    "signature": lambda r: _replace_header(r, "authorization", r.headers.get("authorization")[:-1]
                                           + ("0" if r.headers.get("authorization")[-1] != "0" else "1")),
}


@pytest.mark.parametrize("part", sorted(TAMPERS))
def test_s3_tampering_is_signature_does_not_match(part: str) -> None:
    req, body = captured(*CALLS["s3-put-with space.txt"])
    with pytest.raises(AWSError) as e:
        verify(TAMPERS[part](req), body)
    assert (e.value.code, e.value.status) == ("SignatureDoesNotMatch", 403)
    assert e.value.message == ("The request signature we calculated does not match the signature "
                               "you provided. Check your key and signing method.")
    assert e.value.extra["AWSAccessKeyId"] == signing.ACCESS_KEY
    assert e.value.extra["CanonicalRequest"].startswith(TAMPERS[part](req).method)
    assert signing.SECRET_KEY not in str(e.value.extra)


def test_s3_payload_hash_header_tampered() -> None:
    req, body = captured(*CALLS["s3-put-plain.txt"])
    bad = _replace_header(req, "x-amz-content-sha256", hashlib.sha256(b"other").hexdigest())
    with pytest.raises(AWSError) as e:
        verify(bad, body)
    assert e.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("part", ["method", "path", "query-added", "signed-header", "signature"])
def test_json_tampering_is_invalid_signature(part: str) -> None:
    req, body = captured(*CALLS["dynamodb"])
    with pytest.raises(AWSError) as e:
        verify(TAMPERS[part](req), body)
    assert (e.value.code, e.value.status) == ("InvalidSignatureException", 400)
    assert e.value.extra == {}


def test_json_body_tampered() -> None:
    req, body = captured(*CALLS["dynamodb"])
    with pytest.raises(AWSError) as e:
        verify(req, body + b" ")
    assert e.value.code == "InvalidSignatureException"


BAD_SIGNATURE = {
    "s3-put-plain.txt": ("SignatureDoesNotMatch", 403),
    "dynamodb": ("InvalidSignatureException", 400),
    "sqs": ("InvalidSignatureException", 400),
    "lambda-arn": ("InvalidSignatureException", 403),
    "ec2": ("SignatureDoesNotMatch", 403),
    "elbv2": ("SignatureDoesNotMatch", 403),
}


@pytest.mark.parametrize("name", sorted(BAD_SIGNATURE))
def test_wrong_secret(name: str) -> None:
    req, body = captured(*CALLS[name])
    with pytest.raises(AWSError) as e:
        verify(req, body, keys={signing.ACCESS_KEY: "not-the-secret"})
    assert (e.value.code, e.value.status) == BAD_SIGNATURE[name]


@pytest.mark.parametrize("name", sorted(BAD_SIGNATURE))
def test_cached_signing_key_never_outlives_a_changed_secret(name: str) -> None:
    """The derived-key cache is keyed by the secret: after a request verified (and cached its
    key), the same request is refused once the secret behind the access key changes."""
    req, body = captured(*CALLS[name])
    verify(req, body)
    verify(req, body)  # served from the cache
    with pytest.raises(AWSError) as e:
        verify(req, body, keys={signing.ACCESS_KEY: signing.KEYS[signing.ACCESS_KEY] + "x"})
    assert (e.value.code, e.value.status) == BAD_SIGNATURE[name]


UNKNOWN_KEY = {
    "s3-put-plain.txt": ("InvalidAccessKeyId", 403,
                         "The AWS Access Key Id you provided does not exist in our records."),
    "dynamodb": ("UnrecognizedClientException", 400,
                 "The security token included in the request is invalid."),
    "sqs": ("UnrecognizedClientException", 400,
            "The security token included in the request is invalid."),
    "lambda-arn": ("UnrecognizedClientException", 403,
                   "The security token included in the request is invalid."),
    "ec2": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
    "elbv2": ("InvalidClientTokenId", 403, "The security token included in the request is invalid."),
}


@pytest.mark.parametrize("name", sorted(UNKNOWN_KEY))
def test_unknown_access_key(name: str) -> None:
    req, body = captured(*CALLS[name])
    with pytest.raises(AWSError) as e:
        verify(req, body, keys={})
    assert (e.value.code, e.value.status, e.value.message) == UNKNOWN_KEY[name]


SKEWED = {
    "s3-put-plain.txt": ("RequestTimeTooSkewed", 403),
    "dynamodb": ("InvalidSignatureException", 400),
    "lambda-arn": ("InvalidSignatureException", 403),
    "ec2": ("RequestExpired", 400),
    "elbv2": ("SignatureDoesNotMatch", 403),
}


@pytest.mark.parametrize("name", sorted(SKEWED))
@pytest.mark.parametrize("direction", [1, -1])
def test_clock_skew_over_15_minutes(name: str, direction: int) -> None:
    req, body = captured(*CALLS[name])
    verify(req, body, now=SIGNED_AT + direction * timedelta(minutes=15))  # the edge is allowed
    with pytest.raises(AWSError) as e:
        verify(req, body, now=SIGNED_AT + direction * timedelta(minutes=15, seconds=1),
               keys={})  # the clock is checked before the key
    assert (e.value.code, e.value.status) == SKEWED[name]


def test_skew_messages() -> None:
    req, body = captured(*CALLS["s3-put-plain.txt"])
    with pytest.raises(AWSError) as e:
        verify(req, body, now=SIGNED_AT + timedelta(hours=1))
    assert e.value.message == ("The difference between the request time and the current time is "
                               "too large.")
    assert e.value.extra == {"RequestTime": "20260115T120000Z", "ServerTime": "2026-01-15T13:00:00Z",
                             "MaxAllowedSkewMilliseconds": "900000"}
    req, body = captured(*CALLS["dynamodb"])
    with pytest.raises(AWSError) as e:
        verify(req, body, now=SIGNED_AT + timedelta(hours=1))
    assert e.value.message == ("Signature expired: 20260115T120000Z is now earlier than "
                               "20260115T124500Z (20260115T130000Z - 15 min.)")
    with pytest.raises(AWSError) as e:
        verify(req, body, now=SIGNED_AT - timedelta(hours=1))
    assert e.value.message == ("Signature not yet current: 20260115T120000Z is still later than "
                               "20260115T111500Z (20260115T110000Z + 15 min.)")


def test_scope_date_differs_from_request_date() -> None:
    req, body = captured(*CALLS["s3-put-plain.txt"])
    bad = _replace_header(req, "x-amz-date", "20260116T000100Z")
    with pytest.raises(AWSError) as e:
        verify(bad, body, now=SIGNED_AT + timedelta(hours=12))
    assert e.value.code == "AuthorizationHeaderMalformed"
    assert 'Invalid credential date "20260115"' in e.value.message
    req, body = captured(*CALLS["dynamodb"])
    with pytest.raises(AWSError) as e:
        verify(_replace_header(req, "x-amz-date", "20260116T000100Z"), body,
               now=SIGNED_AT + timedelta(hours=12))
    assert e.value.code == "InvalidSignatureException"
    assert "Date in Credential scope does not match" in e.value.message


# ---------------------------------------------------------------- presigned


def test_presigned_get_and_put_verify() -> None:
    for method in ("get_object", "put_object"):
        req = presigned(method, {"Bucket": "bkt", "Key": "dir//a b+é%2F"})
        ctx = verify(req)
        assert ctx.presigned and ctx.payload_hash == sigv4.UNSIGNED_PAYLOAD
        assert not ctx.payload_signed and not ctx.streaming


def test_presigned_with_operation_query() -> None:
    req = presigned("upload_part", {"Bucket": "bkt", "Key": "k", "UploadId": "a/b+c",
                                    "PartNumber": 2})
    verify(req)
    with pytest.raises(AWSError) as e:
        verify(dataclasses.replace(req, query_string=req.query_string.replace("partNumber=2",
                                                                              "partNumber=3")))
    assert e.value.code == "SignatureDoesNotMatch"


def test_presigned_expiry() -> None:
    req = presigned("get_object", {"Bucket": "bkt", "Key": "k"}, expires=60)
    verify(req, now=SIGNED_AT + timedelta(seconds=60))
    with pytest.raises(AWSError) as e:
        verify(req, now=SIGNED_AT + timedelta(seconds=61))
    assert (e.value.code, e.value.status, e.value.message) == ("AccessDenied", 403,
                                                               "Request has expired")
    assert e.value.extra == {"X-Amz-Expires": "60", "Expires": "2026-01-15T12:01:00Z",
                             "ServerTime": "2026-01-15T12:01:01Z"}


def test_presigned_a_week_is_fine_a_second_more_is_not() -> None:
    req = presigned("get_object", {"Bucket": "bkt", "Key": "k"}, expires=604800)
    verify(req, now=SIGNED_AT + timedelta(days=7))
    too_long = dataclasses.replace(
        req, query_string=req.query_string.replace("X-Amz-Expires=604800", "X-Amz-Expires=604801"))
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(too_long)
    assert (e.value.code, e.value.status) == ("AuthorizationQueryParametersError", 400)
    assert e.value.message == "X-Amz-Expires must be less than a week (in seconds) that is 604800"


def test_presigned_not_yet_valid() -> None:
    req = presigned("get_object", {"Bucket": "bkt", "Key": "k"})
    verify(req, now=SIGNED_AT - timedelta(minutes=15))
    with pytest.raises(AWSError) as e:
        verify(req, now=SIGNED_AT - timedelta(minutes=16))
    assert (e.value.code, e.value.message) == ("AccessDenied", "Request is not valid yet")


def test_presigned_refuses_unsigned_amz_headers() -> None:
    req = presigned("put_object", {"Bucket": "bkt", "Key": "k"})
    sneaky = dataclasses.replace(req, headers=Headers([*req.headers.items(),
                                                       ("x-amz-acl", "public-read")]))
    with pytest.raises(AWSError) as e:
        verify(sneaky)
    assert (e.value.code, e.value.status) == ("AccessDenied", 403)
    assert e.value.extra == {"HeadersNotSigned": "x-amz-acl"}


def _with_param(req: HttpRequest, name: str, value: str | None) -> HttpRequest:
    pairs = [p for p in req.query_string.split("&") if not p.startswith(name + "=")]
    if value is not None:
        pairs.append(f"{name}={value}")
    return dataclasses.replace(req, query_string="&".join(pairs))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-Amz-Expires", None, "Query-string authentication version 4 requires"),
        ("X-Amz-Signature", None, "Query-string authentication version 4 requires"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA1", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'),
        ("X-Amz-Credential", "AK%2F20260115%2Fus-east-1%2Fs3", "Error parsing the X-Amz-Credential"),
        ("X-Amz-Credential", "AK%2F2026%2Fus-east-1%2Fs3%2Faws4_request", "Error parsing"),
        ("X-Amz-Date", "2026-01-15T12:00:00Z", "X-Amz-Date must be in the ISO8601 Long Format"),
        ("X-Amz-Date", "20261315T120000Z", "X-Amz-Date must be in the ISO8601 Long Format"),
        ("X-Amz-Expires", "soon", "X-Amz-Expires should be a number"),
        ("X-Amz-Expires", "-1", "X-Amz-Expires must be non-negative"),
    ],
)
def test_malformed_presigned_parameters(name: str, value: str | None, message: str) -> None:
    req = _with_param(presigned("get_object", {"Bucket": "bkt", "Key": "k"}), name, value)
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(req)
    assert (e.value.code, e.value.status) == ("AuthorizationQueryParametersError", 400)
    assert e.value.message.startswith(message)


def test_presigned_host_must_be_signed() -> None:
    req = _with_param(presigned("get_object", {"Bucket": "bkt", "Key": "k"}),
                      "X-Amz-SignedHeaders", "x-amz-date")
    with pytest.raises(AWSError) as e:
        verify(req)
    assert e.value.code == "AuthorizationQueryParametersError"


def test_presigned_scope_date_differs() -> None:
    req = _with_param(presigned("get_object", {"Bucket": "bkt", "Key": "k"}),
                      "X-Amz-Date", "20260114T235959Z")
    with pytest.raises(AWSError) as e:
        verify(req)
    assert e.value.code == "AuthorizationQueryParametersError"
    assert e.value.message.startswith('Invalid credential date "20260115"')


def test_non_s3_presigned_defaults_expiry_and_uses_its_family() -> None:
    req = presigned("get_object", {"Bucket": "bkt", "Key": "k"})
    q = req.query_string.replace("%2Fs3%2F", "%2Fdynamodb%2F")
    info = sigv4.parse_authorization(_with_param(dataclasses.replace(req, query_string=q),
                                                 "X-Amz-Expires", None))
    assert info is not None and info.expires is None and info.family == "json"
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(_with_param(dataclasses.replace(req, query_string=q),
                                              "X-Amz-Signature", None))
    assert e.value.code == "IncompleteSignatureException"


# ---------------------------------------------------------------- malformed header auth


def _auth(value: str, headers: tuple[tuple[str, str], ...] = (("x-amz-date", "20260115T120000Z"),),
          ) -> HttpRequest:
    return HttpRequest("GET", "/bkt/k", "/bkt/k", "",
                       Headers([("host", "h"), ("authorization", value), *headers]))


GOOD_CRED = "Credential=AK/20260115/us-east-1/{svc}/aws4_request"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (f"AWS4-HMAC-SHA256 {GOOD_CRED.format(svc='s3')}, Signature=abc",
         "The authorization header is malformed; the authorization header requires three "
         "components: Credential, SignedHeaders, and Signature."),
        ("AWS4-HMAC-SHA256 Credential=AK/20260115/us-east-1/s3, SignedHeaders=host, Signature=a",
         "The authorization header is malformed; the Credential is mal-formed; expecting "
         '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'),
        ("AWS4-HMAC-SHA256 Credential=AK/20260115/us-east-1/s3/aws5_request, SignedHeaders=host, "
         "Signature=a", 'The authorization header is malformed; incorrect terminal "aws5_request". '
         'This endpoint uses "aws4_request".'),
        ("AWS4-HMAC-SHA256 Credential=AK/2026-01-15/us-east-1/s3/aws4_request, "
         "SignedHeaders=host, Signature=a", 'The authorization header is malformed; Invalid '
         'credential date "2026-01-15". This date is not the same as X-Amz-Date: "20260115".'),
    ],
)
def test_malformed_s3_header(header: str, message: str) -> None:
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(_auth(header))
    assert (e.value.code, e.value.status, e.value.message) == (
        "AuthorizationHeaderMalformed", 400, message)


@pytest.mark.parametrize(("service", "code"), [("dynamodb", "IncompleteSignatureException"),
                                               ("elasticloadbalancing", "IncompleteSignature"),
                                               ("ec2", "IncompleteSignature")])
def test_malformed_header_other_families(service: str, code: str) -> None:
    header = f"AWS4-HMAC-SHA256 {GOOD_CRED.format(svc=service)}, SignedHeaders=host"
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(_auth(header))
    assert (e.value.code, e.value.status) == (code, 400)
    assert "Authorization header requires 'Signature' parameter." in e.value.message


def test_malformed_header_family_guessed_from_target() -> None:
    req = _auth("AWS4-HMAC-SHA256 Credential=garbage", (("x-amz-target", "DynamoDB_20120810.X"),
                                                        ("x-amz-date", "20260115T120000Z")))
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(req)
    assert e.value.code == "IncompleteSignatureException"


def test_missing_date() -> None:
    header = f"AWS4-HMAC-SHA256 {GOOD_CRED.format(svc='s3')}, SignedHeaders=host, Signature=a"
    for headers in ((), (("x-amz-date", "yesterday"),), (("date", "not a date"),)):
        with pytest.raises(AWSError) as e:
            sigv4.parse_authorization(_auth(header, headers))
        assert (e.value.code, e.value.status, e.value.message) == (
            "AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header")
    header = f"AWS4-HMAC-SHA256 {GOOD_CRED.format(svc='dynamodb')}, SignedHeaders=host, Signature=a"
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(_auth(header, ()))
    assert e.value.code == "IncompleteSignatureException"


@pytest.mark.parametrize("header", ["AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
                                    "AWS4-ECDSA-P256-SHA256 Credential=AK/20260115/s3/aws4_request"])
def test_unsupported_schemes(header: str) -> None:
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(_auth(header))
    assert (e.value.code, e.value.status) == ("InvalidRequest", 400)
    assert "Please use AWS4-HMAC-SHA256" in e.value.message


def test_sigv2_presigned_url_is_refused_not_treated_as_anonymous() -> None:
    # boto3's default generate_presigned_url in us-east-1 still produces these.
    url = signing.client("s3").generate_presigned_url("get_object",
                                                      Params={"Bucket": "b", "Key": "k"})
    assert "AWSAccessKeyId=" in url
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(from_url("GET", url))
    assert e.value.code == "InvalidRequest"


def test_header_and_query_auth_together() -> None:
    req = presigned("get_object", {"Bucket": "bkt", "Key": "k"})
    both = dataclasses.replace(req, headers=Headers([*req.headers.items(),
                                                     ("authorization", "AWS4-HMAC-SHA256 x")]))
    with pytest.raises(AWSError) as e:
        sigv4.parse_authorization(both)
    assert (e.value.code, e.value.extra["ArgumentName"]) == ("InvalidArgument", "Authorization")


def test_anonymous() -> None:
    req = HttpRequest("GET", "/bkt/k", "/bkt/k", "list-type=2", Headers([("host", "h")]))
    assert sigv4.parse_authorization(req) is None


def test_missing_authentication_per_family() -> None:
    assert sigv4.missing_authentication("json").code == "MissingAuthenticationTokenException"
    assert sigv4.missing_authentication("json", "lambda").status == 403
    assert (sigv4.missing_authentication("query").code, sigv4.missing_authentication("ec2").status
            ) == ("MissingAuthenticationToken", 403)
    assert sigv4.missing_authentication("s3").code == "AccessDenied"


# ---------------------------------------------------------------- S3 payload hash


def _s3_info(presigned_: bool = False) -> sigv4.SignatureInfo:
    return sigv4.SignatureInfo("AK", "20260115", "us-east-1", "s3", ("host",), "sig",
                               "20260115T120000Z", presigned=presigned_)


@pytest.mark.parametrize(
    ("value", "code"),
    [(None, "InvalidRequest"), ("sha256-please", "InvalidArgument"),
     ("A" * 64, "InvalidArgument"), ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "NotImplemented")],
)
def test_s3_payload_hash_refusals(value: str | None, code: str) -> None:
    headers = [("host", "h")] + ([("x-amz-content-sha256", value)] if value else [])
    req = HttpRequest("PUT", "/b/k", "/b/k", "", Headers(headers))
    with pytest.raises(AWSError) as e:
        sigv4.s3_payload_hash(req, _s3_info())
    assert e.value.code == code


def test_s3_payload_hash_modes() -> None:
    req = HttpRequest("GET", "/b/k", "/b/k", "", Headers([("host", "h")]))
    assert sigv4.s3_payload_hash(req, _s3_info(presigned_=True)) == sigv4.UNSIGNED_PAYLOAD
    for mode in (*sigv4.STREAMING_MODES, sigv4.UNSIGNED_PAYLOAD, sigv4.EMPTY_SHA256):
        req = HttpRequest("PUT", "/b/k", "/b/k", "", Headers([("x-amz-content-sha256", mode)]))
        assert sigv4.s3_payload_hash(req, _s3_info()) == mode


def test_payload_hash_check() -> None:
    data = b"hello world" * 1000
    check = sigv4.PayloadHashCheck(hashlib.sha256(data).hexdigest())
    for i in range(0, len(data), 777):
        check.update(data[i:i + 777])
    check.finish()
    check = sigv4.PayloadHashCheck(hashlib.sha256(data).hexdigest())
    check.update(data[:-1])
    with pytest.raises(AWSError) as e:
        check.finish()
    assert (e.value.code, e.value.status) == ("XAmzContentSHA256Mismatch", 400)
    assert e.value.message == ("The provided 'x-amz-content-sha256' header does not match what "
                               "was computed.")
    assert e.value.extra["S3ComputedContentSHA256"] == hashlib.sha256(data[:-1]).hexdigest()


async def _pieces(data: bytes):
    for i in range(0, len(data), 777):
        yield data[i:i + 777]


async def test_signed_stream_checks_itself_unless_its_consumer_takes_the_check() -> None:
    data = b"hello world" * 1000
    digest = hashlib.sha256(data).hexdigest()
    # Iterated by a consumer that knows nothing of it: checked, on the loop, at the end.
    assert b"".join([c async for c in sigv4.SignedStream(_pieces(data), digest)]) == data
    stream = sigv4.SignedStream(_pieces(data[:-1] + b"!"), digest)
    seen = []
    with pytest.raises(AWSError) as e:
        async for chunk in stream:
            seen.append(chunk)
    assert e.value.code == "XAmzContentSHA256Mismatch"
    assert b"".join(seen) == data[:-1] + b"!"  # chunks pass through untouched
    # Taken over: the bare stream and the expected hex (normalized), consumable only once.
    source = _pieces(data)
    stream = sigv4.SignedStream(source, f" {digest.upper()} ")
    assert stream.take_check() == (source, digest)
    with pytest.raises(RuntimeError):
        await stream.__anext__()
    assert sigv4.take_payload_check(source) == (source, None)
    assert sigv4.take_payload_check(sigv4.SignedStream(source, digest)) == (source, digest)


def test_signing_key_stays_out_of_repr() -> None:
    req, body = captured(*CALLS["s3-put-plain.txt"])
    ctx = verify(req, body)
    assert ctx.signing_key.hex() not in repr(ctx) and repr(ctx.signing_key) not in repr(ctx)
