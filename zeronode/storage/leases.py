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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class _HasBlob(Protocol):
    @property
    def blob(self) -> str: ...


R = TypeVar("R", bound=_HasBlob)


@dataclass
class _Pending(Generic[R]):
    ref: R
    pins: set[int] = field(default_factory=set)  # pins it still waits for


class ReadHolds(Generic[R]):
    """Pins, leases and the frees waiting for them."""

    def __init__(self) -> None:
        self._numbers = itertools.count()
        self._pins: set[int] = set()
        self._leases: dict[int, tuple[str, ...]] = {}
        self._leased: Counter[str] = Counter()
        self._pending: list[_Pending[R]] = []

    def pin(self) -> int:
        """Take a pin (before a lookup); returns its token for :meth:`unpin`."""
        token = next(self._numbers)
        self._pins.add(token)
        return token

    def unpin(self, token: int) -> list[R]:
        """Drop a pin; returns the refs now free to delete."""
        self._pins.discard(token)
        for pending in self._pending:
            pending.pins.discard(token)
        return self._ready()

    def lease(self, blobs: Iterable[str]) -> int:
        """Lease ``blobs`` (take it while pinned); returns its token for :meth:`unlease`."""
        token = next(self._numbers)
        held = tuple(blobs)
        self._leases[token] = held
        self._leased.update(held)
        return token

    def unlease(self, token: int) -> list[R]:
        """Drop a lease; returns the refs now free to delete."""
        self._leased.subtract(self._leases.pop(token, ()))
        self._leased += Counter()  # drop the zero counts
        return self._ready()

    def free(self, refs: Iterable[R]) -> list[R]:
        """Ask for ``refs`` to be deleted (after the commit that dropped them); returns those
        free to delete now. The rest are returned by the :meth:`unpin` or :meth:`unlease` that
        lets them go."""
        for ref in refs:
            self._pending.append(_Pending(ref, set(self._pins)))
        return self._ready()

    def is_leased(self, blob: str) -> bool:
        return self._leased[blob] > 0

    @property
    def waiting(self) -> int:
        """How many frees are waiting for a reader (for tests and status)."""
        return len(self._pending)

    def _ready(self) -> list[R]:
        ready = [p.ref for p in self._pending if not p.pins and not self._leased[p.ref.blob]]
        if ready:
            self._pending = [p for p in self._pending if p.pins or self._leased[p.ref.blob]]
        return ready
