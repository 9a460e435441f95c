"""Bucket CORS: the ``cors`` sub-resource, and the answers browsers get from it.

Configuration (PutBucketCors, GetBucketCors, DeleteBucketCors) is the bucket's ``cors``
sub-resource, ``{"CORSRules": [...]}`` in botocore's shape, replaced whole on each put and
checked as S3 checks it: 1 to 100 rules, each with at least one ``AllowedOrigin`` and one
``AllowedMethod`` (else ``MalformedXML``); methods only ``GET PUT POST DELETE HEAD``; at most
one ``*`` in an origin or allowed header; none in an exposed header (``InvalidRequest``).

Browsers then ask in two ways, and both are answered from the first rule that matches
(:func:`match_rule`, pure):

- a *preflight*, ``OPTIONS`` with ``Origin``, ``Access-Control-Request-Method`` and maybe
  ``Access-Control-Request-Headers``. Browsers never sign it, so the wire layer hands it to
  :func:`preflight` before any authentication; it answers 200 with the CORS headers, or S3's
  403 ``AccessForbidden`` ("CORSResponse: ...") when the bucket, its configuration or a
  matching rule is missing;
- the actual request, signed as usual, with ``Origin``: :func:`response_headers` gives the
  headers the wire layer adds to its response, whatever that response is, so a page can also
  read S3's error bodies. Nothing is added when no rule matches: the browser then refuses.

A rule matches when the origin matches one of its ``AllowedOrigins`` (``*`` standing for any
run of characters, case-sensitive), the method (the requested one, for a preflight) is one of
its ``AllowedMethods``, and every requested header matches one of its ``AllowedHeaders``
(case-insensitive, with the same wildcard).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from zeronode.aws.errors import AWSError
from zeronode.aws.http import HttpRequest
from zeronode.aws.parse.rest_xml import malformed_xml
from zeronode.aws.service import Params, RequestContext
from zeronode.services.s3.buckets import (
    bucket_config_in,
    get_bucket_config,
    require_bucket_in,
    required_document,
    set_bucket_config,
)

CORS = "cors"
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_RULES = 100

Rule = dict[str, Any]
Headers = list[tuple[str, str]]

_VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
_NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "
    "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "
    "are not whitelisted by the resource's CORS spec."
)


# -- the rule matcher (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class CorsRequest:
    """What a CORS rule is matched against.

    ``method`` is the request's own method, or for a preflight the method it asks about
    (``Access-Control-Request-Method``; empty if absent, which no rule allows).
    ``headers`` are the preflight's requested headers, lower-cased.
    """

    origin: str
    method: str
    headers: tuple[str, ...] = ()

    @classmethod
    def of(cls, req: HttpRequest) -> CorsRequest | None:
        """The CORS question ``req`` asks; None when it has no ``Origin`` (not cross-origin)."""
        origin = req.headers.get("origin")
        if origin is None:
            return None
        if req.method != "OPTIONS":
            return cls(origin, req.method)
        requested = req.headers.get("access-control-request-headers") or ""
        names = tuple(name.strip().lower() for name in requested.split(",") if name.strip())
        return cls(origin, req.headers.get("access-control-request-method") or "", names)


def _wildcard_match(pattern: str, value: str) -> bool:
    """``pattern`` with at most one ``*``, standing for any run of characters."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def _rule_allows(rule: Rule, request: CorsRequest) -> bool:
    if request.method not in rule.get("AllowedMethods", ()):
        return False
    if not any(_wildcard_match(o, request.origin) for o in rule.get("AllowedOrigins", ())):
        return False
    allowed = [h.lower() for h in rule.get("AllowedHeaders", ())]
    return all(any(_wildcard_match(a, name) for a in allowed) for name in request.headers)


def match_rule(rules: Sequence[Rule], request: CorsRequest) -> Rule | None:
    """The first rule that allows ``request``, as S3 evaluates them (in order)."""
    return next((rule for rule in rules if _rule_allows(rule, request)), None)


def cors_headers(rule: Rule, request: CorsRequest) -> Headers:
    """The response headers a matched ``rule`` gives ``request``.

    A rule open to every origin (``*``) answers ``*`` and no credentials; otherwise the
    origin is echoed and credentials are allowed, as S3 does.
    """
    open_to_all = "*" in rule["AllowedOrigins"]
    headers: Headers = [("Access-Control-Allow-Origin", "*" if open_to_all else request.origin)]
    if not open_to_all:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    headers.append(("Vary", _VARY))
    headers.append(("Access-Control-Allow-Methods", ", ".join(rule["AllowedMethods"])))
    if request.headers:
        headers.append(("Access-Control-Allow-Headers", ", ".join(request.headers)))
    if rule.get("ExposeHeaders"):
        headers.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if rule.get("MaxAgeSeconds") is not None:
        headers.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    return headers


# -- the wire layer's hooks ----------------------------------------------------------------


def _bucket_and_key(path: str) -> tuple[str, bool]:
    """The bucket a path-style path names ("" for none) and whether it names a key too."""
    _, bucket, key = (path.split("/", 2) + ["", ""])[:3]
    return unquote(bucket), bool(key)


def _rules_of(db: sqlite3.Connection, bucket: str) -> tuple[bool, list[Rule] | None]:
    """Whether the bucket exists, and its CORS rules (None when it has no configuration)."""
    try:
        require_bucket_in(db, bucket)
    except AWSError:
        return False, None
    config = bucket_config_in(db, bucket, CORS)
    return True, config["CORSRules"] if config else None


def _forbidden(message: str, method: str, resource_type: str) -> AWSError:
    return AWSError("AccessForbidden", message, 403,
                    extra={"Method": method, "ResourceType": resource_type})


async def preflight(node: Any, req: HttpRequest, path: str) -> Headers:
    """Answer a preflight ``OPTIONS`` on ``path`` (path style): the headers of a 200."""
    request = CorsRequest.of(req)
    if request is None:
        raise AWSError("BadRequest", "Insufficient information. Origin request header needed.", 400)
    bucket, has_key = _bucket_and_key(path)
    exists, rules = await node.journal.read(lambda db: _rules_of(db, bucket))
    method = request.method or "OPTIONS"
    if not exists:
        raise _forbidden("CORSResponse: Bucket not found", method, "BUCKET")
    if rules is None:
        raise _forbidden("CORSResponse: CORS is not enabled for this bucket.", method, "BUCKET")
    rule = match_rule(rules, request)
    if rule is None:
        raise _forbidden(_NOT_ALLOWED, method, "OBJECT" if has_key else "BUCKET")
    return cors_headers(rule, request)


async def response_headers(node: Any, req: HttpRequest, path: str) -> Headers:
    """The CORS headers for the response to a cross-origin request on ``path`` (path style)."""
    request = CorsRequest.of(req)
    bucket, _ = _bucket_and_key(path)
    if request is None or not bucket:
        return []
    _, rules = await node.journal.read(lambda db: _rules_of(db, bucket))
    rule = match_rule(rules or (), request)
    return cors_headers(rule, request) if rule else []


# -- configuration -------------------------------------------------------------------------


def _invalid(message: str) -> AWSError:
    return AWSError("InvalidRequest", message, 400)


def check_rules(rules: Sequence[Rule] | None) -> list[Rule]:
    """The rules of a CORSConfiguration if S3 would accept them, else S3's error."""
    if not rules or len(rules) > MAX_RULES:
        raise malformed_xml()
    for rule in rules:
        if not rule.get("AllowedOrigins") or not rule.get("AllowedMethods"):
            raise malformed_xml()
        for method in rule["AllowedMethods"]:
            if method not in METHODS:
                raise _invalid("Found unsupported HTTP method in CORS config. "
                               f"Unsupported method is {method}")
        for kind, values in (("AllowedOrigin", rule["AllowedOrigins"]),
                             ("AllowedHeader", rule.get("AllowedHeaders", ()))):
            for value in values:
                if value.count("*") > 1:
                    raise _invalid(f'{kind} "{value}" can not have more than one wildcard.')
        for header in rule.get("ExposeHeaders", ()):
            if "*" in header:
                raise _invalid(f'ExposeHeader "{header}" contains wildcard. We currently do not '
                               "support wildcard for ExposeHeader.")
    return list(rules)


async def put_bucket_cors(ctx: RequestContext, params: Params) -> Params:
    bucket = params["Bucket"]
    rules = check_rules(required_document(params, "CORSConfiguration").get("CORSRules"))

    await set_bucket_config(ctx, bucket, CORS, {"CORSRules": rules})
    return {}


async def get_bucket_cors(ctx: RequestContext, params: Params) -> Params:
    bucket = params["Bucket"]
    config = await get_bucket_config(ctx, bucket, CORS)
    if config is None:
        raise AWSError("NoSuchCORSConfiguration", "The CORS configuration does not exist", 404,
                       extra={"BucketName": bucket})
    return {"CORSRules": config["CORSRules"]}


async def delete_bucket_cors(ctx: RequestContext, params: Params) -> Params:
    """Remove the configuration; like S3, answers 204 whether or not there was one."""
    await set_bucket_config(ctx, params["Bucket"], CORS, None)
    return {}


HANDLERS = {
    "PutBucketCors": put_bucket_cors,
    "GetBucketCors": get_bucket_cors,
    "DeleteBucketCors": delete_bucket_cors,
}
