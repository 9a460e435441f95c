"""``aws s3 cp`` of big files up and back down: the CLI switches to multipart above 8 MiB.

The file is made of 1 MiB blocks, each a shared random block stamped with its index, so it is
cheap to generate yet no two parts are alike (a part stored out of order would be caught by
the hash compare).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.services.s3.helpers import s3_client

MiB = 1024 * 1024


def write_file(path: Path, size_mib: int) -> str:
    """Write ``size_mib`` distinct 1 MiB blocks to ``path``; return their SHA-256."""
    base = bytearray(os.urandom(MiB))
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for index in range(size_mib):
            base[:8] = index.to_bytes(8, "big")
            out.write(base)
            digest.update(base)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def cli(agent: Any, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a shell configured only by ``eval "$(zeronode env)"``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(ZERONODE_DATA_DIR=str(agent.data_dir), ZERONODE_PORT=str(agent.port),
               HOME=str(agent.data_dir))
    return subprocess.run(["bash", "-c", f'set -e; eval "$(zeronode env)"; {command}'],
                          env=env, capture_output=True, text=True, timeout=timeout)


def round_trip(agent: Any, tmp_path: Path, size_mib: int, timeout: float) -> None:
    s3_client(agent).create_bucket(Bucket="large")
    source, copy = tmp_path / "source.bin", tmp_path / "copy.bin"
    expected = write_file(source, size_mib)
    result = cli(agent, f"aws s3 cp --only-show-errors {source} s3://large/file.bin && "
                        f"aws s3 cp --only-show-errors s3://large/file.bin {copy}", timeout)
    assert result.returncode == 0, result.stderr
    head = s3_client(agent).head_object(Bucket="large", Key="file.bin")
    assert head["ContentLength"] == size_mib * MiB
    assert head["ETag"].endswith(f'-{size_mib // 8}"')  # the CLI's 8 MiB parts
    assert sha256_of(copy) == expected
    assert s3_client(agent).list_multipart_uploads(Bucket="large").get("Uploads", []) == []


def test_cli_copy_64_mib(agent, tmp_path) -> None:
    round_trip(agent, tmp_path, 64, timeout=60)


@pytest.mark.slow
def test_cli_copy_1_gib(agent, tmp_path) -> None:
    round_trip(agent, tmp_path, 1024, timeout=240)
