"""The AWS CLI copies small files up and down and removes them (configured by ``zeronode env``)."""

from __future__ import annotations

from tests.test_aws_cli import run_cli


def test_cp_up_down_and_rm(agent, tmp_path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello from the CLI\n" * 100)
    back = tmp_path / "back.txt"
    script = (
        f"aws s3 mb s3://cli-objects && "
        f"aws s3 cp {source} 's3://cli-objects/dir/with space/hello.txt' && "
        f"aws s3 cp 's3://cli-objects/dir/with space/hello.txt' {back}"
    )
    result = run_cli(agent, script)
    assert result.returncode == 0, result.stderr
    assert back.read_bytes() == source.read_bytes()
    removed = run_cli(agent, "aws s3 rm 's3://cli-objects/dir/with space/hello.txt'")
    assert removed.returncode == 0, removed.stderr
    assert "delete: s3://cli-objects/dir/with space/hello.txt" in removed.stdout
    missing = run_cli(agent, "aws s3api head-object --bucket cli-objects --key 'dir/with space/hello.txt'")
    assert missing.returncode != 0
    assert "404" in missing.stderr
