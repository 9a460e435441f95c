"""The AWS CLI, configured only by ``eval "$(zeronode env)"``, manages buckets."""

from __future__ import annotations

import os
import subprocess


def run_cli(agent, script: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        ZERONODE_DATA_DIR=str(agent.data_dir),
        ZERONODE_PORT=str(agent.port),
        HOME=str(agent.data_dir),  # no ~/.aws of the developer's
    )
    return subprocess.run(
        ["bash", "-c", f'set -e; eval "$(zeronode env)"; {script}'],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_mb_ls_rb(agent) -> None:
    made = run_cli(agent, "aws s3 mb s3://from-cli && aws s3 ls")
    assert made.returncode == 0, made.stderr
    assert "make_bucket: from-cli" in made.stdout
    assert "from-cli" in made.stdout.splitlines()[-1]
    removed = run_cli(agent, "aws s3 rb s3://from-cli && aws s3 ls")
    assert removed.returncode == 0, removed.stderr
    assert "remove_bucket: from-cli" in removed.stdout
    assert "from-cli" not in removed.stdout.replace("remove_bucket: from-cli", "")


def test_cli_reports_aws_errors(agent) -> None:
    result = run_cli(agent, "aws s3 rb s3://never-made")
    assert result.returncode != 0
    assert "NoSuchBucket" in result.stderr
