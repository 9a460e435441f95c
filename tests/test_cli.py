"""The ``zeronode`` command line: ``--version``, usage errors, and ``zeronode env``."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent_process import REPO_ROOT, AgentFactory, AgentProcess, clean_env
from zeronode import __version__
from zeronode.cli import main
from zeronode.credentials import read

ZERONODE = [sys.executable, "-m", "zeronode.cli"]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZERONODE, *args],
        cwd=REPO_ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def bash_env_after_eval(env_command: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a bash shell has after ``eval "$(<env_command>)"``."""
    script = f'eval "$({env_command})" && env -0'
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env=clean_env(env),
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


def test_version() -> None:
    result = run(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"zeronode {__version__}"


def test_no_command_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: zeronode" in capsys.readouterr().err


def test_unknown_flag_is_a_usage_error() -> None:
    result = run(["up", "--colour", "blue"])
    assert result.returncode == 2
    assert "unrecognized arguments: --colour blue" in result.stderr


@pytest.mark.parametrize("command", ["up", "env"])
def test_bad_setting_exits_2_with_a_clear_message(tmp_path: Path, command: str) -> None:
    result = run([command, "--data-dir", str(tmp_path / "d"), "--port", "http"])
    assert result.returncode == 2
    assert "zeronode: error: port: invalid value 'http' from --port" in result.stderr
    assert not (tmp_path / "d").exists()


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "zn.toml"
    config.write_text("prot = 9700\n")
    result = run(["up", "--data-dir", str(tmp_path / "d")], env={"ZERONODE_CONFIG": str(config)})
    assert result.returncode == 2
    assert f"config file {config}: unknown key(s) prot" in result.stderr


def test_half_set_environment_keys_exit_2(tmp_path: Path) -> None:
    result = run(
        ["env", "--data-dir", str(tmp_path)], env={"ZERONODE_ACCESS_KEY_ID": "AKIAEXAMPLE0000001"}
    )
    assert result.returncode == 2
    assert "ZERONODE_SECRET_ACCESS_KEY is not set" in result.stderr


def test_env_before_first_start_creates_the_keys_the_agent_then_uses(
    tmp_path: Path, agent_factory: AgentFactory
) -> None:
    data_dir = tmp_path / "node"
    result = run(["env", "--data-dir", str(data_dir), "--port", "9876", "--region", "eu-central-1"])
    assert result.returncode == 0, result.stderr
    credentials = read(data_dir / "credentials")
    assert result.stdout.splitlines() == [
        "export AWS_ENDPOINT_URL=http://127.0.0.1:9876",
        f"export AWS_ACCESS_KEY_ID={shlex.quote(credentials.access_key_id)}",
        f"export AWS_SECRET_ACCESS_KEY={shlex.quote(credentials.secret_access_key)}",
        "export AWS_REGION=eu-central-1",
        "export AWS_DEFAULT_REGION=eu-central-1",
        "unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN",
    ]
    node = agent_factory(fake=True, data_dir=data_dir)
    assert node.credentials == credentials


def test_env_output_evaluates_in_bash(tmp_path: Path) -> None:
    data_dir = tmp_path / "node with space"
    command = shlex.join([*ZERONODE, "env", "--data-dir", str(data_dir), "--port", "9701"])
    shell = bash_env_after_eval(command, env={"AWS_SESSION_TOKEN": "stale-token-from-real-aws"})
    credentials = read(data_dir / "credentials")
    assert shell["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9701"
    assert shell["AWS_ACCESS_KEY_ID"] == credentials.access_key_id
    assert shell["AWS_SECRET_ACCESS_KEY"] == credentials.secret_access_key
    assert shell["AWS_REGION"] == shell["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "AWS_SESSION_TOKEN" not in shell


def test_env_uses_explicit_keys_from_the_environment_without_a_data_dir(tmp_path: Path) -> None:
    env = {
        "ZERONODE_ACCESS_KEY_ID": "AKIAEXAMPLE0000001",
        "ZERONODE_SECRET_ACCESS_KEY": "it's/a+secret",
    }
    command = shlex.join([*ZERONODE, "env", "--data-dir", str(tmp_path / "never")])
    shell = bash_env_after_eval(command, env=env)
    assert (shell["AWS_ACCESS_KEY_ID"], shell["AWS_SECRET_ACCESS_KEY"]) == (
        "AKIAEXAMPLE0000001",
        "it's/a+secret",
    )
    assert not (tmp_path / "never").exists()


def test_env_follows_the_same_settings_resolution_as_up(tmp_path: Path) -> None:
    config = tmp_path / "zn.toml"
    config.write_text(f'data_dir = "{tmp_path / "d"}"\nport = 9555\nregion = "ap-south-1"\n')
    shell = bash_env_after_eval(
        shlex.join([*ZERONODE, "env"]),
        env={"ZERONODE_CONFIG": str(config), "ZERONODE_PORT": "9556"},
    )
    assert shell["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9556"
    assert shell["AWS_REGION"] == "ap-south-1"
    assert (tmp_path / "d" / "credentials").exists()


def test_boto3_picks_up_what_env_prints(fake_agent: AgentProcess) -> None:
    """Endpoint, keys and region reach boto3 from the environment alone (boto3 >= 1.28)."""
    command = shlex.join(
        [*ZERONODE, "env", "--data-dir", str(fake_agent.data_dir), "--port", str(fake_agent.port)]
    )
    probe = (
        "import boto3; r = boto3.client('sqs').list_queues()['ResponseMetadata']['HTTPHeaders'];"
        "print(r['x-test-access-key-id'], r['x-test-region'])"
    )
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
    assert result.stdout.split() == [fake_agent.credentials.access_key_id, "us-east-1"]


def test_up_prints_endpoint_region_credentials_and_env_hint(fake_agent: AgentProcess) -> None:
    out = fake_agent.stdout_path.read_text()
    assert f"endpoint     {fake_agent.endpoint}" in out
    assert "region       us-east-1" in out
    assert f"credentials  {fake_agent.data_dir / 'credentials'}" in out
    expected_hint = shlex.join(
        ["zeronode", "env", "--data-dir", str(fake_agent.data_dir), "--port", str(fake_agent.port)]
    )
    assert f'eval "$({expected_hint})"' in out
    assert fake_agent.credentials.secret_access_key not in out
