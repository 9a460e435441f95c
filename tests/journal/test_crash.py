"""kill -9 in the middle of a burst of submits: every acknowledged write survives, and the
file is consistent (log, version vector and projections agree)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.journal.toy import kv_projections, rows
from zeronode.journal import open_journal
from zeronode.journal.projection import ProjectionSet
from zeronode.journal.queries import replay_state_hash

ROOT = Path(__file__).resolve().parents[2]


async def run_and_kill(path: Path, run: str, delay: float) -> list[tuple[str, str]]:
    """Start the writer, SIGKILL it ``delay`` s after its first acknowledgement; the acks."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.journal.crash_writer", str(path), run],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None
    output = bytearray()
    try:
        with trio.fail_after(15):
            while b"\n" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, "the writer exited before acknowledging anything"
                output += chunk
        with trio.move_on_after(delay):
            while chunk := await process.stdout.receive_some():
                output += chunk
    finally:
        process.send_signal(signal.SIGKILL)
    while chunk := await process.stdout.receive_some():
        output += chunk
    assert await process.wait() == -signal.SIGKILL
    complete = output[: output.rfind(b"\n") + 1].decode()
    return [tuple(line.split(" ", 1)) for line in complete.splitlines()]  # type: ignore[misc]


def check_file_consistency(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        held = dict(db.execute("SELECT origin, seq FROM journal_version_vector"))
        in_log = {
            origin: (count, top)
            for origin, count, top in db.execute(
                "SELECT origin, count(*), max(seq) FROM journal_events GROUP BY origin"
            )
        }
        assert in_log == {origin: (seq, seq) for origin, seq in held.items()}
    finally:
        db.close()


@pytest.mark.slow
async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    acknowledged: dict[str, str] = {}
    total_acks = 0
    for run, delay in enumerate([0.05, 0.3, 0.6, 1.0]):
        acks = await run_and_kill(path, f"r{run}", delay)
        assert acks, "nothing was acknowledged before the kill"
        total_acks += len(acks)
        for entity, value in acks:
            acknowledged[entity] = value  # in print order: the last ack of an entity wins
        check_file_consistency(path)
        async with open_journal(path, kv_projections()) as journal:
            shown = await journal.read(rows)
            for entity, value in acknowledged.items():
                assert entity in shown, f"acknowledged write to {entity} lost"
                if entity.startswith("shared/"):
                    # later, unacknowledged writes may also have landed: never an older one
                    assert shown[entity]["v"] >= value
                else:
                    assert shown[entity] == {"v": int(value)}
            log = await journal.events()
            assert replay_state_hash(log, ProjectionSet(kv_projections())) == await journal.state_hash()
    assert total_acks > 100
