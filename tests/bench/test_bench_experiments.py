"""The experiment scripts behind issue 3's notes run (their figures are measurements, not
checked): ``put_pieces.py`` times the storage steps, ``lean_host.py`` serves the real agent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))


def test_put_pieces_times_each_storage_step() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "put_pieces.py"), "--ops", "20"],
        check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for step in ("bucket lookup", "blob write", "journal commit", "free replaced", "all four"):
        assert step in done.stdout


def test_the_agent_answers_s3_calls_on_the_lean_host(tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3", reason="the experiment is driven with boto3")
    from bench.http_floor import LEAN_HOST
    from bench.servers import free_port, start_zeronode, wait_ready

    server = start_zeronode(tmp_path, free_port(), launcher=LEAN_HOST)
    try:
        wait_ready(server)
        s3 = boto3.client(
            "s3", endpoint_url=server.endpoint, region_name=server.region,
            aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
        )  # fmt: skip
        s3.create_bucket(Bucket="lean")
        s3.put_object(Bucket="lean", Key="k", Body=b"x" * 300_000)
        assert s3.get_object(Bucket="lean", Key="k")["Body"].read() == b"x" * 300_000
    finally:
        server.stop()
