"""A response sent before the request body was read closes the connection, saying so."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def connection(agent) -> http.client.HTTPConnection:
    url = urlsplit(agent.endpoint)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10)


def test_refused_upload_announces_close(agent) -> None:
    conn = connection(agent)
    conn.request("PUT", "/bucket/key", body=b"x" * (1 << 20))
    response = conn.getresponse()
    response.read()
    assert response.status == 403
    assert response.getheader("Connection") == "close"


def test_bodyless_requests_keep_the_connection(agent) -> None:
    conn = connection(agent)
    for _ in range(3):
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        assert response.status == 403
        assert response.getheader("Connection") != "close"
