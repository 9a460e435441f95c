"""What a server process costs, read from ``/proc`` (Linux only).

- :func:`cpu_seconds`: user + system CPU time of a process and its live descendants, plus what
  they have already collected from reaped children (``cutime``/``cstime``). Take it before and
  after a phase; the difference is the server's CPU for that phase. Threads are included (their
  time is part of the process's), so a threaded server needs no special care. A descendant that
  is both started and gone within one phase without being waited for is missed.
- :class:`RssSampler`: samples the resident set size (summed over the process tree) from a
  background thread while a phase runs and keeps the peak. ``VmHWM`` would be simpler but it is
  a high-water mark over the process's whole life, so one server could not be measured for two
  phases; sampling at 20 ms misses only very short spikes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_INTERVAL = 0.02


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (children of every thread, recursively)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(_children(current))
    return tree


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:  # the process is gone
        return children
    for task in tasks:
        try:
            children.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return children


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid``, its descendants and reaped children."""
    return sum(_own_and_reaped_ticks(member) for member in process_tree(pid)) / CLOCK_TICKS


def _own_and_reaped_ticks(pid: int) -> int:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    # Fields after "pid (comm) ": state is field 3, utime..cstime are fields 14..17.
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(value) for value in fields[11:15])


def rss_bytes(pids: list[int]) -> int:
    """Resident set size summed over ``pids`` (those that have exited count as 0)."""
    total = 0
    for pid in pids:
        try:
            resident_pages = int((PROC / str(pid) / "statm").read_text().split()[1])
        except OSError:
            continue
        total += resident_pages * PAGE_SIZE
    return total


class RssSampler:
    """``with RssSampler(pid) as sampler: ...`` then ``sampler.peak`` (bytes).

    The process tree is resolved once at the start: sampling must stay cheap, since it runs in
    the benchmark client's own process while the client is being measured.
    """

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.pids = process_tree(pid)
        self.interval = interval
        self.peak = rss_bytes(self.pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        self.peak = max(self.peak, rss_bytes(self.pids))
