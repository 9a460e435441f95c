"""Signed requests made by botocore itself, as HttpRequests the wire layer would receive.

Two independent reference signers are used: a real botocore client (which, with awscrt
installed, signs with the CRT's C signer) and botocore's pure-Python ``SigV4Auth`` family.
The clock both read is frozen at :data:`SIGNED_AT`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from zeronode.aws import sigv4
from zeronode.aws.http import Headers, HttpRequest

ACCESS_KEY = "AKIDZERONODEEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzeronodeKEY"
KEYS = {ACCESS_KEY: SECRET_KEY}
ENDPOINT = "http://127.0.0.1:4566"
SIGNED_AT = dt.datetime(2026, 1, 15, 12, 0, 0, tzinfo=dt.timezone.utc)


@contextmanager
def frozen_clock(at: dt.datetime = SIGNED_AT) -> Iterator[None]:
    def now(remove_tzinfo: bool = True) -> dt.datetime:
        return at.replace(tzinfo=None) if remove_tzinfo else at

    with mock.patch("botocore.auth.get_current_datetime", now), \
            mock.patch("botocore.crt.auth.get_current_datetime", now):
        yield


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


_clients: dict[tuple[str, str, str | None], Any] = {}


def client(service: str, region: str = "us-east-1", signature_version: str | None = None) -> Any:
    key = (service, region, signature_version)
    if key not in _clients:
        config = Config(retries={"max_attempts": 0}, signature_version=signature_version)
        c = botocore.session.get_session().create_client(
            service, region_name=region, endpoint_url=ENDPOINT, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, config=config,
        )

        def grab(request: Any, **_: Any) -> None:
            raise _Captured(request)

        c.meta.events.register("before-send", grab)
        _clients[key] = c
    return _clients[key]


def captured(service: str, call: Callable[[Any], Any], region: str = "us-east-1",
             at: dt.datetime = SIGNED_AT) -> tuple[HttpRequest, bytes]:
    """The request a botocore client sends for ``call(client)``, and its body."""
    with frozen_clock(at):
        try:
            call(client(service, region))
        except _Captured as c:
            return from_prepared(c.request)
    raise AssertionError("the client sent nothing")


def presigned(method: str, params: dict[str, Any], expires: int = 3600,
              at: dt.datetime = SIGNED_AT) -> HttpRequest:
    """A SigV4 presigned S3 URL from ``generate_presigned_url``, as the request using it."""
    s3 = client("s3", signature_version="s3v4")
    with frozen_clock(at):
        url = s3.generate_presigned_url(method, Params=params, ExpiresIn=expires)
    operation = s3.meta.service_model.operation_model(s3.meta.method_to_api_mapping[method])
    return from_url(operation.http["method"], url)


def from_url(method: str, url: str, headers: list[tuple[str, str]] = ()) -> HttpRequest:
    parts = urlsplit(url)
    hdrs = [("host", parts.netloc), *headers]
    return HttpRequest(method=method, raw_path=parts.path, path=unquote(parts.path),
                       query_string=parts.query, headers=Headers(hdrs))


def from_prepared(prepared: Any) -> tuple[HttpRequest, bytes]:
    parts = urlsplit(prepared.url)
    headers = []
    for name, value in prepared.headers.items():
        headers.append((name, value.decode("latin-1") if isinstance(value, bytes) else value))
    if not any(name.lower() == "host" for name, _ in headers):
        headers.append(("Host", parts.netloc))  # what urllib3 adds
    body = prepared.body
    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        body.seek(0)
        data = body.read()
    req = HttpRequest(method=prepared.method, raw_path=parts.path, path=unquote(parts.path),
                      query_string=parts.query, headers=Headers(headers))
    return req, data


def python_signed(signer_cls: type, service: str, method: str, url: str, *,
                  headers: dict[str, str] | None = None, body: bytes = b"",
                  region: str = "us-east-1", at: dt.datetime = SIGNED_AT,
                  **signer_kwargs: Any) -> tuple[HttpRequest, bytes]:
    """Sign with botocore's pure-Python signer classes (SigV4Auth, S3SigV4Auth...)."""
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    signer = signer_cls(Credentials(ACCESS_KEY, SECRET_KEY), service, region, **signer_kwargs)
    with frozen_clock(at):
        signer.add_auth(request)
    return from_prepared(request.prepare())


def verify(req: HttpRequest, body: bytes = b"", *, now: dt.datetime = SIGNED_AT,
           keys: dict[str, str] = KEYS, family: str | None = None) -> sigv4.AuthContext:
    """parse + verify the way the router will: family from the scope's service."""
    info = sigv4.parse_authorization(req)
    assert info is not None
    fam = family or sigv4.family_for_service(info.service)
    if fam == "s3":
        payload = sigv4.s3_payload_hash(req, info)
    else:
        payload = hashlib.sha256(body).hexdigest()
    return sigv4.verify(req, info, secret_for=keys.get, payload_hash=payload, now=now,
                        family=fam)  # type: ignore[arg-type]
