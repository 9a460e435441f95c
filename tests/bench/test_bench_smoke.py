"""The S3 benchmark harness runs end to end (its figures are not checked: it is a measurement).

``bench/s3_bench.py`` is run the way a user runs it, with the smallest workload, against the
do-nothing endpoint (which needs nothing but boto3) and against zeronode, whose object
operations may or may not be there yet: either way the harness must finish, exit 0 and say
what happened. moto is not needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "bench" / "s3_bench.py"
TINY = ["--ops", "40", "--big-mib", "16", "--keys", "250"]
PHASES = 10  # 4 KiB PUT/GET at two concurrencies, big PUT/GET (boto3, raw), keys, listing


def run_bench(tmp_path: Path, targets: str) -> tuple[dict[str, Any], str]:
    pytest.importorskip("boto3", reason="the benchmark drives boto3 (the `test` extra)")
    out = tmp_path / "bench.json"
    command = [sys.executable, str(SCRIPT), "--targets", targets, *TINY, "--json", str(out)]
    started = time.monotonic()
    done = subprocess.run(
        command, check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert elapsed < 30, f"the smoke run took {elapsed:.1f} s"
    return json.loads(out.read_text()), done.stdout


def test_null_endpoint_run_measures_every_phase(tmp_path: Path) -> None:
    document, stdout = run_bench(tmp_path, "null")

    [null] = document["targets"]
    assert null["name"] == "null" and null["failure"] is None
    assert len(null["phases"]) == PHASES
    for phase in null["phases"]:
        assert phase["errors"] == {}, phase
        assert phase["ops"] > 0 and phase["seconds"] > 0, phase
    put_big = next(p for p in null["phases"] if p["key"] == "put_big")
    assert put_big["mib_per_s"] > 0 and put_big["peak_rss_bytes"] > 0
    assert {check["status"] for check in document["checks"]} == {"N/A"}  # zeronode not run
    assert document["machine"]["nproc"] >= 1 and document["machine"]["versions"]["boto3"]
    for heading in ("== null", "== ratios", "== targets (issue 3)"):
        assert heading in stdout


def test_zeronode_is_measured_or_its_failures_are_reported(tmp_path: Path) -> None:
    document, stdout = run_bench(tmp_path, "zeronode")

    [zeronode] = document["targets"]
    if zeronode["failure"] is not None:  # did not start, or CreateBucket failed
        assert f"FAILED: {zeronode['failure'].splitlines()[0]}" in stdout
        return
    assert len(zeronode["phases"]) == PHASES
    for phase in zeronode["phases"]:
        assert phase["ops"] > 0 or phase["errors"], phase
        if phase["errors"]:
            assert phase["first_error"] and f"errors in {phase['name']}:" in stdout
