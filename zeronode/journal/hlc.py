"""Hybrid logical clock: 64-bit timestamps close to wall time that never go backward.

A timestamp is ``wall milliseconds << 16 | logical counter``; comparing two timestamps as
integers orders them by time first, then by the counter that separates events created within
one millisecond. The node id breaks the remaining ties (that is the fold's business, not the
clock's).

The clock is pure: every method receives the wall time it should use, so tests drive it with
any sequence of readings, and the journal persists ``last`` with every commit so that a restart
or a backward step of the system clock never reissues an old timestamp.

``max_offset_ms`` (500 ms by default) is the one tolerance both rules below share. NTP keeps
machines on one LAN within a few milliseconds of each other; half a second leaves room for a
sleepy VM while still bounding how far one bad clock can drag everyone's LWW order ahead.

- ``observe`` adopts a remote timestamp only if it is at most ``max_offset_ms`` ahead of our
  wall clock. A timestamp further in the future is still stored and folded by the journal (the
  fold must converge), it just does not pull our clock along.
- ``healthy`` is False while our own wall clock is more than ``max_offset_ms`` behind the clock
  (the system clock stepped backward, or the database came from a machine whose clock ran
  ahead). The journal keeps issuing timestamps by the HLC rule regardless and exposes the flag,
  so the operator and the cluster layer can decide to fence the node.
"""

from __future__ import annotations

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
# SQLite integers are signed 64-bit: the top bit stays clear (2**47 ms is about year 6400).
MAX_HLC = (1 << 63) - 1
DEFAULT_MAX_OFFSET_MS = 500


def pack(wall_ms: int, logical: int = 0) -> int:
    """The timestamp for ``wall_ms`` with ``logical`` as its counter."""
    if wall_ms < 0 or not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"hlc out of range: wall_ms={wall_ms} logical={logical}")
    return (wall_ms << LOGICAL_BITS) | logical


def wall_ms_of(hlc: int) -> int:
    """The physical (millisecond) part of a timestamp."""
    return hlc >> LOGICAL_BITS


def logical_of(hlc: int) -> int:
    """The logical counter of a timestamp."""
    return hlc & LOGICAL_MASK


class HybridLogicalClock:
    """One node's clock. Not thread-safe: the journal's writer thread owns it."""

    def __init__(self, last: int = 0, *, max_offset_ms: int = DEFAULT_MAX_OFFSET_MS) -> None:
        if not 0 <= last <= MAX_HLC:
            raise ValueError(f"hlc out of range: {last}")
        self.last = last
        self.max_offset_ms = max_offset_ms

    def now(self, wall_ms: int) -> int:
        """A timestamp greater than every one issued or adopted before.

        It equals ``pack(wall_ms)`` when the wall clock is ahead of the clock; otherwise the
        previous timestamp plus one (the counter carries into the millisecond part if a burst
        ever exceeds 65536 events per millisecond, which keeps it monotonic).
        """
        candidate = max(self.last + 1, pack(wall_ms))
        if candidate > MAX_HLC:
            raise OverflowError("hybrid logical clock exhausted")
        self.last = candidate
        return candidate

    def observe(self, remote: int, wall_ms: int) -> bool:
        """Take a remote timestamp into account; returns whether it was adopted.

        A remote timestamp more than ``max_offset_ms`` ahead of ``wall_ms`` is refused (the
        caller stores its event anyway); one behind our clock changes nothing.
        """
        if wall_ms_of(remote) > wall_ms + self.max_offset_ms:
            return False
        if remote > self.last:
            self.last = remote
        return True

    def healthy(self, wall_ms: int) -> bool:
        """Whether the wall clock is within ``max_offset_ms`` of the clock (or ahead of it)."""
        return wall_ms_of(self.last) - wall_ms <= self.max_offset_ms
