"""Run a real ``zeronode up`` in a subprocess, the way a user does, and drive it from a test.

:class:`AgentProcess` starts ``python -m zeronode.cli up --data-dir D --port P``, waits until
``GET /_zeronode/health`` answers, and exposes what a test needs: the endpoint, the node's
keys, a configured boto3 client, and stop/kill/restart with the exit status.

With ``fake=True`` the same CLI runs with a test :class:`~zeronode.agent.Wiring` instead of the
real journal and AWS services (``python -m tests.agent_process up ...``): an in-memory journal
and :func:`fake_aws_app`, whose ``GET /slow?seconds=S`` answers ``started`` at once and
``finished`` S seconds later. That exercises everything the agent itself does (lock, signals,
graceful shutdown, exit status) independently of the rest of the node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ZERONODE_* and AWS_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZERONODE_", "AWS_"))}
    env.update(extra or {})
    return env


class AgentProcess:
    """One ``zeronode up`` subprocess on 127.0.0.1 and a free port."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        fake: bool = False,
        log_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        # Every real agent runs a cluster node: give each its own cluster port.
        self.cluster_port = free_port()
        self.args = list(args)
        self.env = clean_env(env)
        self.fake = fake
        self.log_dir = log_dir or data_dir.parent
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_seconds: float | None = None
        self.node_id: str | None = None
        self._runs = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        module = "tests.agent_process" if self.fake else "zeronode.cli"
        cluster = [] if self.fake else ["--cluster-port", str(self.cluster_port)]
        return [
            sys.executable, "-m", module, "up",
            "--data-dir", str(self.data_dir), "--port", str(self.port), *cluster, *self.args,
        ]  # fmt: skip

    def start(self, *, wait: bool = True) -> AgentProcess:
        self._runs += 1
        self.stdout_path = self.log_dir / f"agent-{self.port}-{self._runs}.stdout"
        self.stderr_path = self.log_dir / f"agent-{self.port}-{self._runs}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            started = time.monotonic()
            self.process = subprocess.Popen(
                self.command, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=err
            )
        if wait:
            health = self.wait_ready()
            self.ready_seconds = time.monotonic() - started
            self.node_id = health["node_id"]
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Poll the health endpoint until it answers; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"agent exited with {self.process.returncode}\n{self.output()}"
                )
            try:
                return self.health()
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"agent not ready after {timeout} s\n{self.output()}"
                    ) from None
                time.sleep(0.02)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_zeronode/health", timeout=2) as response:
            return dict(json.load(response))

    @property
    def credentials(self) -> Any:
        from zeronode.credentials import read

        return read(self.data_dir / "credentials")

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for this node: its endpoint, keys and region, path-style S3."""
        import boto3
        from botocore.config import Config

        credentials = self.credentials
        config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            config=kwargs.pop("config", config),
            **kwargs,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"agent did not exit within {timeout} s\n{self.output()}"
            ) from None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Ask the agent to stop (SIGTERM by default) and return its exit status."""
        self.send_signal(signum)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL: the crash case; returns the (negative) exit status."""
        return self.stop(signal.SIGKILL)

    def restart(self) -> AgentProcess:
        """Stop gracefully (asserting exit status 0) and start again on the same dir and port."""
        status = self.stop()
        assert status == 0, f"agent exited with {status}\n{self.output()}"
        return self.start()

    def output(self) -> str:
        parts = []
        for name in ("stdout_path", "stderr_path"):
            path = getattr(self, name, None)
            if path is not None and path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


AgentFactory = Callable[..., AgentProcess]
"""The ``agent_factory`` fixture: ``agent_factory(fake=..., data_dir=..., wait=..., args=...)``."""


# --- the fake wiring: an in-memory journal and a tiny AWS app -----------------------------


class FakeJournal:
    """Stands in for the journal: a node id kept in the data dir, an empty version vector."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.closed = False

    def position(self) -> dict[str, int]:
        return {self.node_id: 0}


@asynccontextmanager
async def open_fake_journal(path: Path) -> AsyncIterator[FakeJournal]:
    id_file = trio.Path(path.with_name("fake-node-id"))
    if await id_file.exists():
        node_id = (await id_file.read_text()).strip()
    else:
        node_id = "node-" + os.urandom(4).hex()
        await id_file.write_text(node_id)
    journal = FakeJournal(node_id)
    try:
        yield journal
    finally:
        journal.closed = True


def fake_aws_app(node: Any) -> Any:
    """A small raw-ASGI stand-in for the AWS app.

    ``GET /slow?seconds=S`` streams ``started\\n`` at once and ``finished\\n`` after S seconds.
    Any other request gets ``200 {}`` (x-amz-json), with the access key id and region from its
    SigV4 ``Authorization`` header echoed in ``x-test-access-key-id``/``x-test-region``.
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # no lifespan support: the dispatcher must cope with that
        if scope["path"] == "/slow":
            seconds = float(scope["query_string"].decode().partition("seconds=")[2] or "1")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
            await trio.sleep(seconds)
            await send({"type": "http.response.body", "body": b"finished\n"})
            return
        headers = dict(scope["headers"])
        credential = headers.get(b"authorization", b"").partition(b"Credential=")[2].split(b",")[0]
        parts = credential.decode().split("/")
        key_id, region = (parts[0], parts[2]) if len(parts) >= 3 else ("", "")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/x-amz-json-1.0"),
                    (b"x-test-access-key-id", key_id.encode()),
                    (b"x-test-region", region.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def fake_wiring() -> Any:
    from zeronode.agent import Wiring

    return Wiring(open_journal=open_fake_journal, build_aws_app=fake_aws_app)


if __name__ == "__main__":
    from zeronode.cli import main

    sys.exit(main(sys.argv[1:], wiring=fake_wiring()))
