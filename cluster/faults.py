"""Deterministic fault injection for the node-to-node transport.

This kernel has no ``tc netem`` (research A7), so loss, latency and partitions are injected by
the transport itself, which also makes them reproducible: every random decision comes from one
``random.Random`` seeded by the test, consumed in the order messages pass through.

The transport consults a ``Faults`` object on both paths of every control message, so a fault
set on one node cuts both ways even when the peer knows nothing about it:

- a *partition* between two named nodes drops every message between them, in either direction,
  and makes new connections between them fail;
- ``drop_probability`` drops each message this node sends or receives with that probability;
- ``delay`` holds each message this node sends for a uniform time in ``(low, high)`` seconds,
  keeping per-connection order (latency with jitter, as on a real TCP link).

Bulk transfers are byte streams: a lost chunk would corrupt them silently, so for them a
partition aborts the transfer and loss and delay do not apply.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

__all__ = ["Faults"]


class Faults:
    """The faults one node injects; all off until a test (or an admin call) turns them on."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self.drop_probability = 0.0
        self.delay: tuple[float, float] = (0.0, 0.0)
        self._cut: set[frozenset[str]] = set()

    def reseed(self, seed: int) -> None:
        """Restart the random sequence, so the same traffic sees the same drops again."""
        self._rng.seed(seed)

    def partition(self, side_a: Iterable[str], side_b: Iterable[str]) -> None:
        """Cut every link between a node of ``side_a`` and a node of ``side_b``."""
        side_b = list(side_b)
        self._cut.update(frozenset((a, b)) for a in side_a for b in side_b if a != b)

    def heal(self) -> None:
        """Remove every partition (loss and delay stay as set)."""
        self._cut.clear()

    def blocks(self, node_a: str, node_b: str) -> bool:
        """Whether the link between the two named nodes is cut."""
        return frozenset((node_a, node_b)) in self._cut

    def drops(self) -> bool:
        """Decide whether to lose the message now passing (draws only when loss is on)."""
        return self.drop_probability > 0 and self._rng.random() < self.drop_probability

    def next_delay(self) -> float:
        """Seconds to hold the message now being sent (draws only when delay is on)."""
        low, high = self.delay
        if high <= 0:
            return 0.0
        return self._rng.uniform(low, high)
