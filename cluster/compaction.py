"""When to compact the journal: the causal-stability floor, learnt from replication.

Theory of operation
-------------------
An event may be dropped once every durable member holds it (and it is superseded: the journal
decides that, ``zeronode/journal/compaction.py``). What each member holds is learnt by the
replicator from every push and pull reply, as version vectors that only grow, so the last
vector heard from a member is a lower bound of what it holds *now*. The floor is the
element-wise minimum of those vectors over every voter, this node's own position included.

A voter never heard from since this node started (down, partitioned, or just joined) holds
the floor back entirely: its vector is unknown, and guessing would let it come back to find
its peers' logs full of holes. That is the safe side; the cost is a log that grows while a
member is away, which ``status`` shows (``compaction_held_by``). An operator who knows the
member is gone for good removes it (``zeronode remove``), which takes it out of the voters.

A member that joins later starts below the floor and installs a snapshot (``snapshots.py``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio

from cluster.peers import Peers

log = logging.getLogger("cluster.compaction")

DEFAULT_INTERVAL = 300.0


def causal_floor(
    voters: Iterable[str],
    own_id: str,
    own_position: Mapping[str, int],
    known: Mapping[str, Mapping[str, int]],
) -> tuple[dict[str, int] | None, list[str]]:
    """``(floor, unknown voters)``: the element-wise minimum of every voter's vector, or
    ``None`` with the voters whose vector is unknown (they hold it back)."""
    vectors: list[Mapping[str, int]] = []
    unknown = []
    for voter in sorted(set(voters) | {own_id}):
        vector = own_position if voter == own_id else known.get(voter)
        if vector is None:
            unknown.append(voter)
        else:
            vectors.append(vector)
    if unknown:
        return None, unknown
    origins = set().union(*(vector.keys() for vector in vectors))
    floor = {origin: min(vector.get(origin, 0) for vector in vectors) for origin in origins}
    return {origin: seq for origin, seq in floor.items() if seq > 0}, []


class Compactor:
    """Runs the journal's compaction every ``interval`` seconds (jittered) at the floor."""

    def __init__(
        self,
        journal: Any,
        peers: Peers,
        known_positions: Callable[[], Mapping[str, Mapping[str, int]]],
        *,
        wall_clock_ms: Callable[[], int],
        interval: float = DEFAULT_INTERVAL,
        rng: random.Random | None = None,
    ) -> None:
        self._journal = journal
        self._peers = peers
        self._known = known_positions
        self._wall_ms = wall_clock_ms
        self._interval = interval
        self._rng = rng or random.Random()
        self.held_by: list[str] = []
        self.removed = 0

    def status(self) -> dict[str, Any]:
        return {"compaction_held_by": list(self.held_by), "compacted_events": self.removed,
                "compaction_floor": dict(self._journal.floor())}

    async def compact_once(self) -> int:
        """Compact at the current floor; returns the number of events removed."""
        floor, self.held_by = causal_floor(
            self._peers.voters(), self._peers.node_id, self._journal.position(), self._known()
        )
        if floor is None:
            log.debug("compaction.held_back voters=%s", ",".join(self.held_by))
            return 0
        report = await self._journal.compact(floor, now_ms=self._wall_ms())
        removed = int(report.superseded + report.tombstones)
        self.removed += removed
        if removed:
            log.info("compaction.done superseded=%d tombstones=%d transactions=%d",
                     report.superseded, report.tombstones, report.transactions)
        return removed

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self._interval * self._rng.uniform(0.8, 1.2))
            await self.compact_once()
