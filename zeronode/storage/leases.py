"""When the bytes of a replaced object version may be deleted: after every read that could
still want them is done (sans-I/O; :class:`~zeronode.storage.blobs.BlobStore` drives it).

A read is a lookup (which version? which blobs?) followed by streaming. An overwrite commits
and then frees the old version's blobs; without this, a GET that looked the key up just before
the commit finds its bytes gone, and a multipart GET breaks off in a later part. Two kinds of
hold close both gaps, with no timing guess:

* a **pin** covers a reader's lookup. A free waits for every pin that was already there when
  it was asked (a reader that looked up before the commit is such a pin, as the pin is taken
  on the loop before its lookup starts); later pins cannot have seen the old version.
* a **lease** names blobs a reader streams; the reader takes it while still pinned, so a free
  that waited out the pin then sees the lease, and waits for it too.

Everything runs on the event loop, so no lock is needed; the caller deletes what a call
returns. A free still pending at shutdown is lost, harmlessly: the blob is unreferenced, and
the start-up sweep removes it.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class _HasBlob(Protocol):
    @property
    def blob(self) -> str: ...


R = TypeVar("R", bound=_HasBlob)


class ReadHolds(Generic[R]):
    """Pins, leases and the frees waiting for them.

    Every call costs O(1) plus what it sets free, however many frees wait (an overwrite-heavy
    load during a long GET queues thousands): pin tokens only grow, so a free waits exactly
    while a pin older than its own place in that order is alive, and frees are queued in that
    same order; a free past its pins but blocked by a lease waits under its blob.
    """

    def __init__(self) -> None:
        self._pin_numbers = itertools.count()
        self._lease_numbers = itertools.count()
        self._pins: set[int] = set()
        self._pin_order: deque[int] = deque()  # pins in token order; dropped ones popped lazily
        self._leases: dict[int, tuple[str, ...]] = {}
        self._leased: Counter[str] = Counter()
        self._after_pins: deque[tuple[int, R]] = deque()  # (first pin not waited for, ref)
        self._after_lease: dict[str, list[R]] = {}
        self._waiting = 0

    def pin(self) -> int:
        """Take a pin (before a lookup); returns its token for :meth:`unpin`."""
        token = next(self._pin_numbers)
        self._pins.add(token)
        self._pin_order.append(token)
        return token

    def unpin(self, token: int) -> list[R]:
        """Drop a pin; returns the refs now free to delete."""
        self._pins.discard(token)
        while self._pin_order and self._pin_order[0] not in self._pins:
            self._pin_order.popleft()
        oldest = self._pin_order[0] if self._pin_order else None
        ready: list[R] = []
        while self._after_pins and (oldest is None or oldest >= self._after_pins[0][0]):
            _, ref = self._after_pins.popleft()
            self._waiting -= 1
            self._past_pins(ref, ready)
        return ready

    def lease(self, blobs: Iterable[str]) -> int:
        """Lease ``blobs`` (take it while pinned); returns its token for :meth:`unlease`."""
        token = next(self._lease_numbers)
        held = tuple(blobs)
        self._leases[token] = held
        self._leased.update(held)
        return token

    def unlease(self, token: int) -> list[R]:
        """Drop a lease; returns the refs now free to delete."""
        ready: list[R] = []
        for blob in self._leases.pop(token, ()):
            self._leased[blob] -= 1
            if self._leased[blob] <= 0:
                del self._leased[blob]
                released = self._after_lease.pop(blob, [])
                self._waiting -= len(released)
                ready.extend(released)
        return ready

    def free(self, refs: Iterable[R]) -> list[R]:
        """Ask for ``refs`` to be deleted (after the commit that dropped them); returns those
        free to delete now. The rest are returned by the :meth:`unpin` or :meth:`unlease` that
        lets them go."""
        ready: list[R] = []
        for ref in refs:
            if self._pins:  # every live pin is older than this free
                self._after_pins.append((next(self._pin_numbers), ref))
                self._waiting += 1
            else:
                self._past_pins(ref, ready)
        return ready

    @property
    def waiting(self) -> int:
        """How many frees are waiting for a reader."""
        return self._waiting

    def _past_pins(self, ref: R, ready: list[R]) -> None:
        if self._leased[ref.blob] > 0:
            self._after_lease.setdefault(ref.blob, []).append(ref)
            self._waiting += 1
        else:
            ready.append(ref)
