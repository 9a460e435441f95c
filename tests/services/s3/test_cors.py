"""Bucket CORS: the configuration through boto3, real preflights and CORS response headers
over HTTP (as a browser sends them: unsigned ``OPTIONS``, ``Origin`` on signed requests), and
the rule matcher as pure code."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of, raw_request, s3_client
from zeronode.aws.http import Headers, HttpRequest
from zeronode.services.s3.cors import CorsRequest, cors_headers, match_rule

APP = "https://app.example.com"
RULES = [
    {"AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["x-amz-*", "Content-Type"], "ExposeHeaders": ["ETag", "x-amz-version-id"],
     "MaxAgeSeconds": 600, "ID": "app"},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="web")
    return "web"


def preflight(agent: Any, path: str, **headers: str) -> Any:
    return raw_request("OPTIONS", agent.endpoint + path, headers=headers)


def error_code(response: Any) -> str:
    return response.data.decode().split("<Code>")[1].split("</Code>")[0]


# -- configuration ----------------------------------------------------------------------------


def test_cors_configuration_put_get_delete(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(e) == ("NoSuchCORSConfiguration", 404)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES[1:]})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES[1:]
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(e) == ("NoSuchCORSConfiguration", 404)
    s3.delete_bucket_cors(Bucket=bucket)


def test_cors_of_a_missing_bucket(s3: Any) -> None:
    for call in (lambda: s3.get_bucket_cors(Bucket="nope"), lambda: s3.delete_bucket_cors(Bucket="nope"),
                 lambda: s3.put_bucket_cors(Bucket="nope", CORSConfiguration={"CORSRules": RULES})):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("NoSuchBucket", 404)


def _rule(**changes: Any) -> dict[str, Any]:
    return {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], **changes}


BAD_CONFIGURATIONS = [
    ([_rule(AllowedMethods=["GET", "PATCH"])], "InvalidRequest",
     "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
    ([_rule(AllowedMethods=["get"])], "InvalidRequest",
     "Found unsupported HTTP method in CORS config. Unsupported method is get"),
    ([_rule(AllowedOrigins=["https://*.example.*"])], "InvalidRequest",
     'AllowedOrigin "https://*.example.*" can not have more than one wildcard.'),
    ([_rule(AllowedHeaders=["x-*-*"])], "InvalidRequest",
     'AllowedHeader "x-*-*" can not have more than one wildcard.'),
    ([_rule(ExposeHeaders=["*"])], "InvalidRequest",
     'ExposeHeader "*" contains wildcard. We currently do not support wildcard for ExposeHeader.'),
    ([], "MalformedXML", None),
    ([_rule()] * 101, "MalformedXML", None),
    ([{"AllowedMethods": ["GET"]}], "MalformedXML", None),
    ([{"AllowedOrigins": ["*"]}], "MalformedXML", None),
]


def test_bad_configurations_change_nothing(agent: Any, s3: Any, bucket: str) -> None:
    unchecked = s3_client(agent, parameter_validation=False)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    for rules, code, message in BAD_CONFIGURATIONS:
        with pytest.raises(ClientError) as e:
            unchecked.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        assert error_of(e) == (code, 400), rules
        if message:
            assert e.value.response["Error"]["Message"] == message
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [_rule()] * 100})


# -- preflight --------------------------------------------------------------------------------


def test_preflight_allowed(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    r = preflight(agent, f"/{bucket}/photos/a%20b.jpg", Origin=APP,
                  **{"Access-Control-Request-Method": "PUT",
                     "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-Owner"})
    assert r.status == 200 and r.data == b""
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-meta-owner"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-version-id"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in r.headers["Vary"]
    assert r.headers["x-amz-request-id"]


def test_preflight_falls_through_to_the_open_rule(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    r = preflight(agent, f"/{bucket}", Origin="http://elsewhere.test",
                  **{"Access-Control-Request-Method": "GET"})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert r.headers["Access-Control-Allow-Methods"] == "GET"


REFUSED_PREFLIGHTS = [
    ({"Origin": "http://elsewhere.test", "Access-Control-Request-Method": "PUT"}, 403,
     "AccessForbidden", "CORSResponse: This CORS request is not allowed"),
    ({"Origin": APP, "Access-Control-Request-Method": "PUT",
      "Access-Control-Request-Headers": "authorization"}, 403, "AccessForbidden",
     "CORSResponse: This CORS request is not allowed"),
    ({"Origin": APP, "Access-Control-Request-Method": "DELETE"}, 403, "AccessForbidden",
     "CORSResponse: This CORS request is not allowed"),
    ({"Origin": APP}, 403, "AccessForbidden", "CORSResponse: This CORS request is not allowed"),
    ({"Access-Control-Request-Method": "GET"}, 400, "BadRequest",
     "Insufficient information. Origin request header needed."),
]


def test_preflight_refused(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES[:1]})
    for headers, status, code, message in REFUSED_PREFLIGHTS:
        r = preflight(agent, f"/{bucket}/k", **headers)
        assert (r.status, error_code(r)) == (status, code), headers
        assert message in r.data.decode()
        assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight_without_configuration_or_bucket(agent: Any, bucket: str) -> None:
    asked = {"Origin": APP, "Access-Control-Request-Method": "GET"}
    r = preflight(agent, f"/{bucket}/k", **asked)
    assert (r.status, error_code(r)) == (403, "AccessForbidden")
    assert "CORS is not enabled for this bucket" in r.data.decode()
    r = preflight(agent, "/no-such-bucket/k", **asked)
    assert (r.status, error_code(r)) == (403, "AccessForbidden")
    assert "Bucket not found" in r.data.decode()


# -- CORS headers on actual requests ----------------------------------------------------------


def test_signed_requests_with_an_origin_get_cors_headers(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES[:1]})
    url = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket})
    r = raw_request("GET", url, headers={"Origin": APP})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-version-id"
    # an error answer carries them too, so the page can read it
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"})
    r = raw_request("GET", missing, headers={"Origin": APP})
    assert r.status == 404 and r.headers["Access-Control-Allow-Origin"] == APP
    # no matching rule, or no Origin: no CORS headers
    for headers in ({"Origin": "http://elsewhere.test"}, {}):
        r = raw_request("GET", url, headers=headers)
        assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers


def test_boto3_calls_carry_origin(agent: Any, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    client = s3_client(agent)
    client.meta.events.register_first(
        "before-sign.s3.*", lambda request, **_: request.headers.add_header("Origin", APP))
    headers = client.get_bucket_location(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    assert headers["access-control-allow-origin"] == APP


# -- the matcher, pure ------------------------------------------------------------------------


def _options(**headers: str) -> HttpRequest:
    return HttpRequest("OPTIONS", "/b/k", "/b/k", "", Headers(list(headers.items())))


def test_cors_request_of() -> None:
    assert CorsRequest.of(HttpRequest("GET", "/", "/", "", Headers())) is None
    assert CorsRequest.of(HttpRequest("PUT", "/", "/", "", Headers([("origin", APP)]))) == \
        CorsRequest(APP, "PUT")
    asked = _options(origin=APP, **{"access-control-request-method": "PUT",
                                    "access-control-request-headers": " X-A ,x-b,, "})
    assert CorsRequest.of(asked) == CorsRequest(APP, "PUT", ("x-a", "x-b"))
    assert CorsRequest.of(_options(origin=APP)) == CorsRequest(APP, "")


@pytest.mark.parametrize(("request_", "rule_id"), [
    (CorsRequest("https://app.example.com", "GET"), "app"),
    (CorsRequest("https://.example.com", "GET"), "app"),          # the wildcard may be empty
    (CorsRequest("https://example.com", "GET"), "open"),          # but the dot is literal
    (CorsRequest("HTTPS://APP.EXAMPLE.COM", "PUT"), None),        # origins are case-sensitive
    (CorsRequest("https://a.example.com", "PUT", ("x-amz-meta-a", "content-type")), "app"),
    (CorsRequest("https://a.example.com", "PUT", ("authorization",)), None),
    (CorsRequest("https://a.example.com", "GET", ("authorization",)), None),
    (CorsRequest("http://other", "HEAD"), None),
    (CorsRequest("http://other", ""), None),
])
def test_match_rule(request_: CorsRequest, rule_id: str | None) -> None:
    rules = [RULES[0], {**RULES[1], "ID": "open"}]
    rule = match_rule(rules, request_)
    assert (rule or {}).get("ID") == rule_id


def test_cors_headers() -> None:
    assert cors_headers(RULES[1], CorsRequest("http://x", "GET")) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
        ("Access-Control-Allow-Methods", "GET"),
    ]
    headers = dict(cors_headers(RULES[0], CorsRequest(APP, "PUT", ("x-amz-acl",))))
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Headers"] == "x-amz-acl"
    assert headers["Access-Control-Max-Age"] == "600"
