"""The authentication errors of each AWS protocol family, in one explicit table.

The SigV4 check is shared, but each service family answers a failed check with its own
codes and HTTP statuses; :data:`AUTH_ERRORS` is the single place that says which.
"""

from __future__ import annotations

from typing import Literal

from zeronode.aws.errors import AWSError

Family = Literal["s3", "json", "query", "ec2"]

#: Credential-scope service -> error family. The router may pass its own family instead;
#: this is the default used to word parse errors.
SERVICE_FAMILY: dict[str, Family] = {
    "s3": "s3",
    "dynamodb": "json",
    "sqs": "json",  # botocore >= 1.34 speaks SQS's JSON protocol; query clients still work
    "lambda": "json",
    "elasticloadbalancing": "query",
    "ec2": "ec2",
}


def family_for_service(service: str) -> Family:
    """The error family of a credential-scope service (S3's for anything unknown)."""
    return SERVICE_FAMILY.get(service, "s3")


#: ``AUTH_ERRORS[family][kind] = (code, HTTP status)``. The kinds:
#:
#: ``malformed``      Authorization header or presigned parameters that cannot be parsed.
#: ``unknown_key``    the access key id names no credential.
#: ``bad_signature``  the signature does not match (wrong secret, or anything tampered).
#: ``skewed``         header auth dated more than 15 minutes from the server's clock.
#: ``expired``        presigned request past X-Amz-Date + X-Amz-Expires.
#: ``not_yet_valid``  presigned request dated more than 15 minutes in the future.
#: ``unsupported``    a scheme other than AWS4-HMAC-SHA256 (SigV2, SigV4a).
#:
#: Sources: the S3 error-code list (S3 uses specific codes, and AccessDenied for presigned
#: expiry, "Request has expired"); DynamoDB's documented InvalidSignatureException /
#: UnrecognizedClientException, both 400 — "Signature expired: ..." is an
#: InvalidSignatureException; the common query-API errors (InvalidClientTokenId 403,
#: SignatureDoesNotMatch 403 — which IAM/STS/ELB also use for "Signature expired",
#: IncompleteSignature 400); EC2's list (AuthFailure 401 "AWS was not able to validate the
#: provided access credentials" for unknown keys, SignatureDoesNotMatch 403,
#: RequestExpired 400 for the clock). Lambda is a json-family service that answers its
#: authentication errors with 403 instead of DynamoDB's 400: see ``_SERVICE_STATUS``.
AUTH_ERRORS: dict[str, dict[str, tuple[str, int]]] = {
    "s3": {
        "malformed": ("AuthorizationHeaderMalformed", 400),
        "malformed_query": ("AuthorizationQueryParametersError", 400),
        "unknown_key": ("InvalidAccessKeyId", 403),
        "bad_signature": ("SignatureDoesNotMatch", 403),
        "skewed": ("RequestTimeTooSkewed", 403),
        "expired": ("AccessDenied", 403),
        "not_yet_valid": ("AccessDenied", 403),
        "unsupported": ("InvalidRequest", 400),
        "missing_date": ("AccessDenied", 403),
    },
    "json": {
        "malformed": ("IncompleteSignatureException", 400),
        "malformed_query": ("IncompleteSignatureException", 400),
        "unknown_key": ("UnrecognizedClientException", 400),
        "bad_signature": ("InvalidSignatureException", 400),
        "skewed": ("InvalidSignatureException", 400),
        "expired": ("InvalidSignatureException", 400),
        "not_yet_valid": ("InvalidSignatureException", 400),
        "unsupported": ("IncompleteSignatureException", 400),
        "missing_date": ("IncompleteSignatureException", 400),
    },
    "query": {
        "malformed": ("IncompleteSignature", 400),
        "malformed_query": ("IncompleteSignature", 400),
        "unknown_key": ("InvalidClientTokenId", 403),
        "bad_signature": ("SignatureDoesNotMatch", 403),
        "skewed": ("SignatureDoesNotMatch", 403),
        "expired": ("SignatureDoesNotMatch", 403),
        "not_yet_valid": ("SignatureDoesNotMatch", 403),
        "unsupported": ("IncompleteSignature", 400),
        "missing_date": ("IncompleteSignature", 400),
    },
    "ec2": {
        "malformed": ("IncompleteSignature", 400),
        "malformed_query": ("IncompleteSignature", 400),
        "unknown_key": ("AuthFailure", 401),
        "bad_signature": ("SignatureDoesNotMatch", 403),
        "skewed": ("RequestExpired", 400),
        "expired": ("RequestExpired", 400),
        "not_yet_valid": ("RequestExpired", 400),
        "unsupported": ("IncompleteSignature", 400),
        "missing_date": ("IncompleteSignature", 400),
    },
}

#: Services whose authentication errors use another status than their family's.
_SERVICE_STATUS: dict[str, int] = {"lambda": 403}

BAD_SIGNATURE_MESSAGE = {
    "s3": "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
    "ec2": "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details.",
}
BAD_SIGNATURE_DEFAULT = BAD_SIGNATURE_MESSAGE["ec2"]
UNKNOWN_KEY_MESSAGE = {
    "s3": "The AWS Access Key Id you provided does not exist in our records.",
    "ec2": "AWS was not able to validate the provided access credentials",
}
UNKNOWN_KEY_DEFAULT = "The security token included in the request is invalid."


def auth_error(family: str, kind: str, message: str, service: str | None = None,
           extra: dict[str, str] | None = None) -> AWSError:
    code, status = AUTH_ERRORS[family][kind]
    if family == "json" and service in _SERVICE_STATUS:
        status = _SERVICE_STATUS[service]
    return AWSError(code, message, status, extra=dict(extra or {}))


def missing_authentication(family: Family, service: str | None = None) -> AWSError:
    """What a non-S3 service answers to an unsigned request (S3 treats it as anonymous)."""
    if family == "s3":
        return AWSError("AccessDenied", "Access Denied", 403)
    if family == "json":
        status = _SERVICE_STATUS.get(service or "", 400)
        return AWSError("MissingAuthenticationTokenException", "Missing Authentication Token",
                        status)
    return AWSError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
