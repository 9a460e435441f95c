"""Reading the SigV4 claims of a request: the Authorization header or presigned query.

Pure parsing: no secret, no clock. Errors are worded for the request's protocol family
(:mod:`zeronode.aws.sigv4_errors`). The public face is :mod:`zeronode.aws.sigv4`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from zeronode.aws.errors import AWSError
from zeronode.aws.http import HttpRequest
from zeronode.aws.sigv4_canonical import ALGORITHM, decoded_query_pairs
from zeronode.aws.sigv4_errors import SERVICE_FAMILY, Family
from zeronode.aws.sigv4_errors import auth_error as _error

MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600  # seconds: a week, S3's limit

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z\Z")
_SCOPE_DATE = re.compile(r"\d{8}\Z")
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                   "X-Amz-SignedHeaders", "X-Amz-Expires")


@dataclass(frozen=True)
class SignatureInfo:
    """What a request claims about its signature; nothing here has been verified.

    ``amz_date`` is the request time in ISO 8601 basic form (``20130524T000000Z``), from
    ``X-Amz-Date`` (header or query) or converted from the ``Date`` header.
    ``expires`` (seconds) is set for presigned requests only.
    """

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    presigned: bool = False
    expires: int | None = None

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @property
    def family(self) -> Family:
        return SERVICE_FAMILY.get(self.service, "s3")


def _guess_family(req: HttpRequest, credential: str | None) -> Family:
    """The family to word a parse error in, before the scope is known to be well formed."""
    if credential:
        parts = credential.split("/")
        if len(parts) >= 4 and parts[-2] in SERVICE_FAMILY:
            return SERVICE_FAMILY[parts[-2]]
    if "x-amz-target" in req.headers:
        return "json"
    return "s3"


def parse_authorization(req: HttpRequest, family: Family | None = None) -> SignatureInfo | None:
    """Read the SigV4 claims of ``req``: None if it carries none (anonymous).

    Raises :class:`AWSError` for a malformed header or presigned query, worded for
    ``family`` (by default: the family of the scope's service, else a guess from the
    request's shape). Needs no secret and no clock.
    """
    query = decoded_query_pairs(req.query_string)
    names = {k for k, _ in query}
    auth = req.headers.get("authorization")
    presigned = any(p in names for p in _PRESIGN_PARAMS)
    if auth is None and not presigned:
        if "Signature" in names and "AWSAccessKeyId" in names:
            fam = family or "s3"
            raise _error(fam, "unsupported", _UNSUPPORTED_MESSAGE)
        return None
    if auth is not None and presigned:
        fam = family or "s3"
        if fam == "s3":
            raise AWSError(
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified",
                400,
                extra={"ArgumentName": "Authorization", "ArgumentValue": auth},
            )
        raise _error(fam, "malformed", "Found both 'X-Amz-Algorithm' as a query-string param "
                     "and 'Authorization' as HTTP header.")
    if auth is not None:
        return _parse_header(req, auth, family)
    return _parse_query(req, dict(query), family)


_UNSUPPORTED_MESSAGE = ("The authorization mechanism you have provided is not supported. "
                        "Please use AWS4-HMAC-SHA256.")
_CREDENTIAL_SHAPE = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'


def _parse_header(req: HttpRequest, auth: str, family: Family | None) -> SignatureInfo:
    scheme, _, rest = auth.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, value = part.strip().partition("=")
        if eq:
            fields[key.strip()] = value.strip()
    credential = fields.get("Credential")
    fam = family or _guess_family(req, credential)
    if scheme != ALGORITHM:
        raise _error(fam, "unsupported", _UNSUPPORTED_MESSAGE if fam == "s3"
                     else f"Unsupported AWS 'algorithm': '{scheme}'")

    def malformed(detail: str, other: str) -> AWSError:
        if fam == "s3":
            return _error(fam, "malformed", f"The authorization header is malformed; {detail}")
        return _error(fam, "malformed", f"{other} Authorization={auth}")

    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise malformed(
            "the authorization header requires three components: Credential, SignedHeaders, "
            "and Signature.",
            " ".join(f"Authorization header requires '{k}' parameter." for k in missing),
        )
    assert credential is not None
    scope = _split_credential(credential)
    if scope is None:
        raise malformed(f"the Credential is mal-formed; {_CREDENTIAL_SHAPE}",
                        f"Credential must have exactly 5 slash-delimited elements, e.g. "
                        f"keyid/date/region/service/term, got '{credential}'.")
    amz_date = _header_date(req)
    if amz_date is None:
        if fam == "s3":
            raise _error(fam, "missing_date", "AWS authentication requires a valid Date or "
                         "x-amz-date header")
        raise _error(fam, "missing_date", "Authorization header requires existence of either "
                     f"a 'X-Amz-Date' or a 'Date' header. Authorization={auth}")
    key_id, date, region, service, terminal = scope
    if terminal != "aws4_request":
        raise malformed(f'incorrect terminal "{terminal}". This endpoint uses "aws4_request".',
                        f"Credential should be scoped with a valid terminator: 'aws4_request', "
                        f"not '{terminal}'.")
    if not _SCOPE_DATE.match(date):
        raise malformed(f'Invalid credential date "{date}". This date is not the same as '
                        f'X-Amz-Date: "{amz_date[:8]}".',
                        f"Credential date '{date}' is not in the form YYYYMMDD.")
    return SignatureInfo(
        access_key_id=key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=_split_signed_headers(fields["SignedHeaders"]),
        signature=fields["Signature"],
        amz_date=amz_date,
    )


def _parse_query(req: HttpRequest, params: dict[str, str], family: Family | None) -> SignatureInfo:
    credential = params.get("X-Amz-Credential")
    fam = family or _guess_family(req, credential)

    def malformed(s3_message: str, other: str) -> AWSError:
        if fam == "s3":
            return _error(fam, "malformed_query", s3_message)
        return _error(fam, "malformed_query", other)

    missing = [p for p in _PRESIGN_PARAMS if not params.get(p)]
    # S3 treats X-Amz-Expires as required; the other services default it (SigV4 spec).
    if fam != "s3" and missing == ["X-Amz-Expires"]:
        missing = []
    if missing:
        raise malformed(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters.",
            " ".join(f"AWS query-string parameters must include '{p}'." for p in missing),
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise malformed('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
                        f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'")
    assert credential is not None
    scope = _split_credential(credential)
    if scope is None or scope[4] != "aws4_request" or not _SCOPE_DATE.match(scope[1]):
        raise malformed(
            f"Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
            f"{_CREDENTIAL_SHAPE}",
            f"Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'.",
        )
    amz_date = params["X-Amz-Date"]
    if not _valid_amz_date(amz_date):
        raise malformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                        f"Invalid date format of 'X-Amz-Date': '{amz_date}'.")
    expires: int | None = None
    raw_expires = params.get("X-Amz-Expires")
    if raw_expires:
        if not raw_expires.lstrip("-").isdigit():
            raise malformed("X-Amz-Expires should be a number",
                            f"X-Amz-Expires should be a number, got '{raw_expires}'.")
        expires = int(raw_expires)
        if expires < 0:
            raise malformed("X-Amz-Expires must be non-negative",
                            "X-Amz-Expires must be non-negative.")
        if expires > MAX_PRESIGNED_EXPIRES:
            raise malformed(
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
                "X-Amz-Expires must be less than a week (in seconds) that is 604800.",
            )
    key_id, date, region, service, _ = scope
    return SignatureInfo(
        access_key_id=key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=_split_signed_headers(params["X-Amz-SignedHeaders"]),
        signature=params["X-Amz-Signature"],
        amz_date=amz_date,
        presigned=True,
        expires=expires,
    )


def _split_credential(credential: str) -> tuple[str, str, str, str, str] | None:
    # The key id itself never contains "/", but split from the right to be safe.
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not all(parts):
        return None
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def _split_signed_headers(value: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in value.split(";") if h.strip())


def _valid_amz_date(value: str) -> bool:
    if not _AMZ_DATE.match(value):
        return False
    try:
        _parse_amz_date(value)
    except ValueError:
        return False
    return True


def _parse_amz_date(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def _format_amz_date(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _header_date(req: HttpRequest) -> str | None:
    """X-Amz-Date (preferred) or Date, as ISO 8601 basic; None if neither is valid."""
    amz = req.headers.get("x-amz-date")
    if amz is not None:
        amz = amz.strip()
        return amz if _valid_amz_date(amz) else None
    date = req.headers.get("date")
    if date is None:
        return None
    try:
        moment = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return _format_amz_date(moment)
