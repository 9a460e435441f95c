"""The agent's malloc arena cap (see zeronode/memory.py for why)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from zeronode.memory import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_the_arena_cap_is_accepted_by_glibc() -> None:
    # In a child process: the cap is process-wide and must not leak into the test run.
    code = "from zeronode.memory import limit_malloc_arenas as f; print(f(2))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


def test_a_missing_mallopt_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    class NoMallopt:
        def __init__(self, _name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert limit_malloc_arenas() is False
