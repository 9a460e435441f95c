"""The benchmark's targets: each an S3 endpoint in its own subprocess on 127.0.0.1.

- ``zeronode``: ``python -m zeronode.cli up`` on a fresh data dir; its keys come from
  ``zeronode env`` run first on the same data dir (``env`` creates the credentials the agent
  then uses).
- ``moto``: ``python -m moto.server`` (the ``bench`` extra); it accepts any keys.
- ``null``: ``bench/null_endpoint.py``, the do-nothing endpoint.

:func:`start` returns a :class:`Server` once the endpoint answers HTTP; :meth:`Server.stop`
ends it by PID (SIGTERM, then SIGKILL). Output goes to a log file in the work dir, whose tail is
what a failure reports.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DUMMY_KEYS = ("AKIDBENCHMARK0000000", "bench-secret-key")
REGION = "us-east-1"


class ServerError(Exception):
    """A target could not be started."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def exit_status(self) -> int | None:
        return self.process.poll()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start(name: str, workdir: Path) -> Server:
    """Start target ``name`` (a key of :data:`STARTERS`) and wait until it answers HTTP."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = STARTERS[name](workdir, free_port())
    try:
        wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without AWS_* and ZERONODE_* (they would override the targets' own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ZERONODE_"))}


def _launch(
    name: str, command: list[str], workdir: Path, port: int, keys: tuple[str, str]
) -> Server:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=clean_env(), stdout=log, stderr=subprocess.STDOUT
        )
    return Server(name, process, f"http://127.0.0.1:{port}", *keys, REGION, log_path)


def start_zeronode(workdir: Path, port: int, launcher: Sequence[str] | None = None) -> Server:
    """The agent on a fresh data dir; ``launcher`` replaces ``python -m zeronode.cli`` (an
    experiment such as ``lean_host.py`` that runs the CLI with a part swapped)."""
    data_dir = workdir / f"zeronode-data-{port}"
    flags = ["--data-dir", str(data_dir), "--port", str(port)]
    cli = list(launcher or [sys.executable, "-m", "zeronode.cli"])
    keys = zeronode_keys([*cli, "env", *flags])
    return _launch("zeronode", [*cli, "up", *flags], workdir, port, keys)


def zeronode_keys(env_command: list[str]) -> tuple[str, str]:
    """The access key id and secret from the ``export`` lines ``zeronode env`` prints."""
    done = subprocess.run(
        env_command, check=False, cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ServerError(f"`zeronode env` exited with {done.returncode}: {done.stderr.strip()}")
    exports = {}
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            name, _, value = words[1].partition("=")
            exports[name] = value
    try:
        return exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]
    except KeyError as missing:
        raise ServerError(f"`zeronode env` printed no {missing}:\n{done.stdout}") from None


def start_moto(workdir: Path, port: int) -> Server:
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _launch("moto", command, workdir, port, DUMMY_KEYS)


def start_null(workdir: Path, port: int) -> Server:
    command = [
        sys.executable,
        str(Path(__file__).with_name("null_endpoint.py")),
        "--port",
        str(port),
    ]
    return _launch("null", command, workdir, port, DUMMY_KEYS)


STARTERS: dict[str, Callable[[Path, int], Server]] = {
    "zeronode": start_zeronode,
    "moto": start_moto,
    "null": start_null,
}


def wait_ready(server: Server, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``GET /`` until any HTTP answer (an error status is an answer); fail if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        if server.exit_status is not None:
            raise ServerError(
                f"{server.name} exited with status {server.exit_status} during start-up:\n"
                f"{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.endpoint + "/", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{server.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}"
                ) from None
            time.sleep(0.05)
