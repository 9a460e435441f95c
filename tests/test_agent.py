"""The node agent: front dispatcher, admin app, HTTP server, lifecycle, signals, logs.

In-process tests (trio) cover the pieces; subprocess tests run ``zeronode up`` as a user does.
``fake_agent`` tests use a fake journal and AWS app, so they test the agent alone; ``agent``
tests need the real journal and services and skip, saying so, until those exist.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from botocore.config import Config

from tests.agent_process import (
    REPO_ROOT,
    AgentFactory,
    AgentProcess,
    FakeJournal,
    clean_env,
    fake_aws_app,
    fake_wiring,
    free_port,
    open_fake_journal,
)
from zeronode import __version__
from zeronode.agent import AgentError, DataDirInUse, Wiring, run_agent
from zeronode.config import Settings
from zeronode.credentials import Credentials
from zeronode.http.admin import create_admin_app
from zeronode.http.dispatch import Dispatcher
from zeronode.http.server import ListenError, redact_query, serve
from zeronode.logs import LogfmtFormatter, get_logger
from zeronode.node import NodeServices

LOGFMT_LINE = re.compile(r"ts=\S+Z level=(debug|info|warning|error|critical) event=\S+( .*)?")


# --- helpers --------------------------------------------------------------------------------


def make_node(tmp_path: Path, **settings: Any) -> NodeServices:
    return NodeServices(
        Settings(data_dir=tmp_path, **settings),
        FakeJournal("node-test"),
        Credentials("AKIAEXAMPLE0000001", "secret"),
    )


async def http_get(port: int, path: str, method: str = "GET") -> bytes:
    """A minimal HTTP/1.1 client: the raw response bytes, read until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        chunks = []
        while chunk := await stream.receive_some():
            chunks.append(chunk)
    return b"".join(chunks)


def status_and_json(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


class Recorder:
    """An ASGI app that records the calls it gets and answers 200 with its name."""

    def __init__(self, name: str, events: list[str], lifespan: str = "ok") -> None:
        self.name, self.events, self.lifespan = name, events, lifespan

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            if self.lifespan == "unsupported":
                raise RuntimeError("no lifespan here")
            while True:
                phase = (await receive())["type"]
                self.events.append(f"{self.name}:{phase}")
                outcome = "failed" if self.lifespan == f"fail {phase}" else "complete"
                await send({"type": f"{phase}.{outcome}", "message": f"{self.name} broke"})
                if phase == "lifespan.shutdown":
                    return
        self.events.append(f"{self.name}:{scope['path']}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": self.name.encode()})


async def drive_lifespan(app: Any) -> list[dict[str, Any]]:
    """Play the server's side of the ASGI lifespan against ``app``; returns what it sent."""
    to_app, app_inbox = trio.open_memory_channel[dict[str, Any]](2)
    replies: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        replies.append(message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            app,
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            app_inbox.receive,
            send,
        )
        await to_app.send({"type": "lifespan.startup"})
        while not replies:
            await trio.sleep(0.001)
        if replies[0]["type"] == "lifespan.startup.complete":
            await to_app.send({"type": "lifespan.shutdown"})
    return replies


# --- the front dispatcher -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path,target",
    [
        ("/_zeronode/health", "admin"),
        ("/_zeronode", "admin"),
        ("/_zeronode/", "admin"),
        ("/", "aws"),
        ("/_zeronodes", "aws"),
        ("/bucket/_zeronode/health", "aws"),
        ("/2015-03-31/functions", "aws"),
    ],
)
async def test_dispatcher_sends_the_admin_prefix_to_admin_and_the_rest_to_aws(
    path: str, target: str
) -> None:
    events: list[str] = []
    dispatcher = Dispatcher(Recorder("aws", events), Recorder("admin", events))
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await dispatcher({"type": "http", "path": path}, receive, send)
    assert events == [f"{target}:{path}"]


async def test_lifespan_starts_admin_then_aws_and_stops_in_reverse() -> None:
    events: list[str] = []
    replies = await drive_lifespan(Dispatcher(Recorder("aws", events), Recorder("admin", events)))
    assert [r["type"] for r in replies] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert events == [
        "admin:lifespan.startup",
        "aws:lifespan.startup",
        "aws:lifespan.shutdown",
        "admin:lifespan.shutdown",
    ]


async def test_lifespan_skips_an_app_without_lifespan_support() -> None:
    events: list[str] = []
    dispatcher = Dispatcher(
        Recorder("aws", events, lifespan="unsupported"), Recorder("admin", events)
    )
    replies = await drive_lifespan(dispatcher)
    assert [r["type"] for r in replies] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert events == ["admin:lifespan.startup", "admin:lifespan.shutdown"]


async def test_lifespan_reports_a_failed_startup() -> None:
    events: list[str] = []
    aws = Recorder("aws", events, lifespan="fail lifespan.startup")
    replies = await drive_lifespan(Dispatcher(aws, Recorder("admin", events)))
    assert replies == [{"type": "lifespan.startup.failed", "message": "aws broke"}]


# --- the admin app ------------------------------------------------------------------------


@asynccontextmanager
async def admin_client(tmp_path: Path) -> AsyncIterator[Any]:
    app = create_admin_app(make_node(tmp_path))
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_health_reports_node_version_uptime_and_journal_position(tmp_path: Path) -> None:
    async with admin_client(tmp_path) as client:
        response = await client.get("/_zeronode/health")
        assert response.status_code == 200
        body = await response.get_json()
    assert body["node_id"] == "node-test"
    assert body["version"] == __version__
    assert 0 <= body["uptime_seconds"] < 60
    assert body["journal"] == {"position": {"node-test": 0}}


@pytest.mark.parametrize(
    "method,path,status,error",
    [
        ("GET", "/_zeronode/nope", 404, "NotFound"),
        ("GET", "/_zeronode/cluster/remove", 405, "MethodNotAllowed"),
        ("POST", "/_zeronode/health", 405, "MethodNotAllowed"),
        ("OPTIONS", "/_zeronode/health", 405, "MethodNotAllowed"),  # no automatic OPTIONS
    ],
)
async def test_admin_errors_are_json(
    tmp_path: Path, method: str, path: str, status: int, error: str
) -> None:
    async with admin_client(tmp_path) as client:
        response = await client.open(path, method=method)
        assert response.status_code == status
        assert response.content_type == "application/json"
        body = await response.get_json()
    assert body["error"] == error and body["status"] == status


def test_admin_app_limits_are_set_deliberately(tmp_path: Path) -> None:
    config = create_admin_app(make_node(tmp_path)).config
    assert config["PROVIDE_AUTOMATIC_OPTIONS"] is False
    assert config["MAX_CONTENT_LENGTH"] == 1 << 20
    assert config["BODY_TIMEOUT"] == 10 and config["RESPONSE_TIMEOUT"] == 60


# --- the HTTP server (in-process) ---------------------------------------------------------


async def test_server_serves_both_apps_and_finishes_in_flight_requests_on_shutdown(
    tmp_path: Path,
) -> None:
    node = make_node(tmp_path, port=free_port())
    app = Dispatcher(fake_aws_app(node), create_admin_app(node))
    stop = trio.Event()
    slow_response: list[bytes] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve, app, node.settings, shutdown_trigger=stop.wait))
        status, body = status_and_json(await http_get(node.settings.port, "/_zeronode/health"))
        assert status == 200 and body["node_id"] == "node-test"

        async def slow() -> None:
            slow_response.append(await http_get(node.settings.port, "/slow?seconds=0.5"))

        nursery.start_soon(slow)
        await trio.sleep(0.2)  # the slow request is in flight
        stop.set()
        await trio.sleep(0.05)
        with pytest.raises(OSError):  # no new connections once shutdown has begun
            await http_get(node.settings.port, "/_zeronode/health")
    assert slow_response[0].startswith(b"HTTP/1.1 200")
    assert b"started" in slow_response[0] and b"finished" in slow_response[0]


async def test_connection_close_requests_end_promptly_on_both_apps(tmp_path: Path) -> None:
    # quart-trio cancels its send while hypercorn closes the socket (see shield_sends):
    # without the shield the client waits for read_timeout (60 s) to see the end.
    node = make_node(tmp_path, port=free_port())
    app = Dispatcher(fake_aws_app(node), create_admin_app(node))
    stop = trio.Event()
    with trio.fail_after(4):  # bounds the shutdown too: no connection lingers to hold it up
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve, app, node.settings, shutdown_trigger=stop.wait))
            for path in ("/_zeronode/health", "/_zeronode/nope", "/anything"):
                assert (await http_get(node.settings.port, path)).startswith(b"HTTP/1.1 ")
            stop.set()


async def test_server_reports_an_address_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = make_node(tmp_path, port=port)
        app = Dispatcher(fake_aws_app(node), create_admin_app(node))
        with pytest.raises(
            ListenError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"
        ):
            await serve(app, node.settings, shutdown_trigger=trio.sleep_forever)


def test_presigned_url_signatures_are_redacted_from_access_logs() -> None:
    query = "X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123&uploads="
    assert redact_query(query) == "X-Amz-Credential=AKIA%2F1&X-Amz-Signature=REDACTED&uploads="
    assert redact_query("list-type=2&prefix=a%2F") == "list-type=2&prefix=a%2F"


# --- run_agent in-process ------------------------------------------------------------------


async def test_run_agent_serves_until_stopped_then_closes_the_journal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", port=free_port())
    journals: list[FakeJournal] = []

    @asynccontextmanager
    async def journal_spy(path: Path) -> AsyncIterator[FakeJournal]:
        async with open_fake_journal(path) as journal:
            journals.append(journal)
            yield journal

    stop = trio.Event()
    ready: list[NodeServices] = []
    wiring = Wiring(open_journal=journal_spy, build_aws_app=fake_aws_app)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(run_agent, settings, ready=ready.append, stop=stop, env={}, wiring=wiring)
        )
        with trio.fail_after(5):
            while not ready:
                await trio.sleep(0.01)
        node = ready[0]
        assert node.settings == settings and node.journal is journals[0]
        assert node.credentials.path == settings.data_dir / "credentials"
        status, body = status_and_json(await http_get(settings.port, "/_zeronode/health"))
        assert status == 200 and body["node_id"] == journals[0].node_id
        stop.set()
    assert journals[0].closed
    assert (settings.data_dir / "agent.lock").read_text().strip() == str(os.getpid())


async def test_run_agent_refuses_a_data_dir_in_use(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, port=free_port())
    stop, ready = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(
                run_agent,
                settings,
                ready=lambda node: ready.set(),
                stop=stop,
                env={},
                wiring=fake_wiring(),
            )
        )
        await ready.wait()
        second = Settings(data_dir=tmp_path, port=free_port())
        with pytest.raises(
            DataDirInUse,
            match=f"another zeronode agent is using {tmp_path} \\(pid {os.getpid()}\\)",
        ):
            await run_agent(second, env={}, wiring=fake_wiring())
        stop.set()
    # Released on exit: the same directory can be served again.
    stop = trio.Event()
    stop.set()
    await run_agent(settings, stop=stop, env={}, wiring=fake_wiring())


async def test_run_agent_reports_a_port_in_use_as_an_agent_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(data_dir=tmp_path, port=taken.getsockname()[1])
        with pytest.raises(AgentError, match="cannot listen on 127.0.0.1"):
            await run_agent(settings, env={}, wiring=fake_wiring())


# --- logs ------------------------------------------------------------------------------------


def format_event(event: str, **fields: Any) -> str:
    record = logging.LogRecord("zeronode.test", logging.INFO, __file__, 1, event, None, None)
    record.zn_fields = fields  # what EventLogger attaches
    return LogfmtFormatter().format(record)


def test_log_lines_are_logfmt_with_quoting() -> None:
    line = format_event(
        "agent.started", node="n1", endpoint="http://127.0.0.1:9700", note='say "hi" now', empty=""
    )
    assert LOGFMT_LINE.fullmatch(line)
    assert line.endswith(
        'level=info event=agent.started node=n1 endpoint=http://127.0.0.1:9700 note="say \\"hi\\" now" empty=""'
    )


def test_log_fields_that_name_secrets_are_redacted() -> None:
    line = format_event(
        "x", secret_access_key="abc", authorization="AWS4 ...", session_token="t", key_id="AKIA1"
    )
    assert "abc" not in line and "AWS4" not in line and "=t " not in line + " "
    assert "secret_access_key=[redacted]" in line and "key_id=AKIA1" in line


def test_a_traceback_stays_on_one_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys as _sys

        record = logging.LogRecord(
            "zeronode.test", logging.ERROR, __file__, 1, "agent.failed", None, _sys.exc_info()
        )
    record.zn_fields = {}
    line = LogfmtFormatter().format(record)
    assert "\n" not in line and "ValueError: boom\\nsecond line" in line


def test_foreign_records_keep_the_same_shape() -> None:
    record = logging.LogRecord(
        "hypercorn.error", logging.WARNING, __file__, 1, "Running on %s", ("x y",), None
    )
    line = LogfmtFormatter().format(record)
    assert LOGFMT_LINE.fullmatch(line)
    assert line.endswith('level=warning event=log logger=hypercorn.error msg="Running on x y"')


def test_event_logger_passes_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        get_logger("zeronode.test").info("thing.happened", count=3)
    assert [(r.getMessage(), r.zn_fields) for r in caplog.records] == [
        ("thing.happened", {"count": 3})
    ]


# --- the agent process (fake journal and AWS app) --------------------------------------------


def test_agent_is_ready_within_two_seconds_and_healthy(fake_agent: AgentProcess) -> None:
    assert fake_agent.ready_seconds is not None and fake_agent.ready_seconds < 2.0
    health = fake_agent.health()
    assert set(health) == {"node_id", "version", "uptime_seconds", "journal"}
    assert health["node_id"] == fake_agent.node_id and health["version"] == __version__
    assert health["journal"] == {"position": {fake_agent.node_id: 0}}


def test_second_agent_on_the_same_data_dir_refuses(
    fake_agent: AgentProcess, agent_factory: AgentFactory
) -> None:
    second = agent_factory(fake=True, data_dir=fake_agent.data_dir, wait=False)
    assert second.wait(timeout=15) == 1
    assert fake_agent.process is not None
    message = f"zeronode: another zeronode agent is using {fake_agent.data_dir} (pid {fake_agent.process.pid})"
    assert message in second.stderr_path.read_text()
    assert fake_agent.health()["node_id"] == fake_agent.node_id  # the first one is unharmed


def test_agent_on_a_taken_port_exits_1(
    fake_agent: AgentProcess, agent_factory: AgentFactory
) -> None:
    second = agent_factory(fake=True, port=fake_agent.port, wait=False)
    assert second.wait(timeout=15) == 1
    assert f"cannot listen on 127.0.0.1:{fake_agent.port}" in second.stderr_path.read_text()


def start_slow_request(agent: AgentProcess, seconds: float) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=30)
    connection.request("GET", f"/slow?seconds={seconds}")
    response = connection.getresponse()
    assert response.status == 200 and response.readline() == b"started\n"
    return response


def wait_until_refused(port: int, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.01)
    raise AssertionError(f"port {port} still accepts connections during shutdown")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_the_in_flight_request_finish_then_exits_0(
    fake_agent: AgentProcess, signum: int
) -> None:
    response = start_slow_request(fake_agent, seconds=1.5)
    fake_agent.send_signal(signum)
    wait_until_refused(fake_agent.port)
    assert response.read() == b"finished\n"
    assert fake_agent.wait() == 0
    log = fake_agent.stderr_path.read_text()
    assert f"event=agent.stopping signal={signal.Signals(signum).name}" in log
    assert "event=agent.stopped" in log


def test_shutdown_grace_bounds_how_long_a_request_may_hold_the_stop(
    agent_factory: AgentFactory,
) -> None:
    agent = agent_factory(fake=True, args=["--shutdown-grace", "0.5"])
    response = start_slow_request(agent, seconds=60)
    started = time.monotonic()
    assert agent.stop() == 0
    assert time.monotonic() - started < 5
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_a_second_signal_cuts_the_grace_period_short(fake_agent: AgentProcess) -> None:
    response = start_slow_request(fake_agent, seconds=60)
    started = time.monotonic()
    fake_agent.send_signal(signal.SIGTERM)
    wait_until_refused(fake_agent.port)
    assert fake_agent.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert "event=agent.stop_forced" in fake_agent.stderr_path.read_text()
    response.close()


def test_restart_keeps_node_id_and_keys(fake_agent: AgentProcess) -> None:
    node_id, credentials = fake_agent.node_id, fake_agent.credentials
    fake_agent.restart()
    assert fake_agent.node_id == node_id
    assert fake_agent.credentials == credentials


def test_agent_after_a_crash_starts_again(fake_agent: AgentProcess) -> None:
    assert fake_agent.kill() == -signal.SIGKILL  # the kernel drops the lock with the process
    fake_agent.start()
    assert fake_agent.health()["node_id"] == fake_agent.node_id


def test_logs_are_one_logfmt_line_per_event_and_never_hold_the_secret(
    fake_agent: AgentProcess,
) -> None:
    sqs = fake_agent.boto3_client("sqs")
    sqs.list_queues()
    signatures = []
    # botocore presigns S3 URLs with SigV2 by default here, SigV4 when asked: check both.
    for version, parameter in ((None, "Signature="), ("s3v4", "X-Amz-Signature=")):
        config = Config(s3={"addressing_style": "path"}, signature_version=version)
        url = fake_agent.boto3_client("s3", config=config).generate_presigned_url(
            "get_object", Params={"Bucket": "b", "Key": "k"}
        )
        with urllib.request.urlopen(url) as reply:
            reply.read()
        signatures.append(urllib.parse.unquote(url.partition(parameter)[2].split("&")[0]))
        assert len(signatures[-1]) > 20
    assert fake_agent.stop() == 0
    log = fake_agent.stderr_path.read_text()
    lines = log.splitlines()
    assert lines and all(LOGFMT_LINE.fullmatch(line) for line in lines), log
    assert "event=http.request method=POST path=/ " in log
    assert "&Signature=REDACTED" in log and "X-Amz-Signature=REDACTED" in log
    assert fake_agent.credentials.secret_access_key not in log
    for signature in signatures:
        assert signature not in log and urllib.parse.quote(signature, safe="") not in log


# --- the real node (needs zeronode.journal and zeronode.services) ---------------------------


def test_real_agent_is_ready_within_two_seconds_and_healthy(agent: AgentProcess) -> None:
    assert agent.ready_seconds is not None and agent.ready_seconds < 2.0
    health = agent.health()
    assert isinstance(health["node_id"], str) and health["node_id"]
    assert health["version"] == __version__
    position = health["journal"]["position"]
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in position.items())


def test_real_agent_answers_boto3(agent: AgentProcess) -> None:
    buckets = agent.boto3_client("s3").list_buckets()
    assert buckets["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_real_agent_answers_boto3_configured_by_zeronode_env(agent: AgentProcess) -> None:
    command = shlex.join(
        [
            sys.executable,
            "-m",
            "zeronode.cli",
            "env",
            "--data-dir",
            str(agent.data_dir),
            "--port",
            str(agent.port),
        ]
    )
    probe = "import boto3; print(boto3.client('s3').list_buckets()['ResponseMetadata']['HTTPStatusCode'])"
    script = f'eval "$({command})" && {shlex.quote(sys.executable)} -c {shlex.quote(probe)}'
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200"


def test_real_agent_restart_keeps_its_node_id(agent: AgentProcess) -> None:
    node_id = agent.node_id
    agent.restart()
    assert agent.node_id == node_id
