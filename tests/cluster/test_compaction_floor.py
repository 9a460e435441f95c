"""The causal-stability floor the compactor uses, and one compaction through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster.compaction import Compactor, causal_floor
from tests.journal.toy import kv_projections, put
from zeronode.journal import open_journal

A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_the_floor_is_the_minimum_of_every_voters_vector() -> None:
    floor, unknown = causal_floor(
        {A, B, C}, A, {A: 5, B: 2}, {B: {A: 3, B: 4}, C: {A: 4, B: 2, C: 1}}
    )
    assert unknown == [] and floor == {A: 3, B: 2}  # C's origin: 0 on A and B, so absent


def test_a_voter_never_heard_from_holds_the_floor_back() -> None:
    floor, unknown = causal_floor({A, B, C}, A, {A: 5}, {B: {A: 5}})
    assert floor is None and unknown == [C]


def test_a_single_node_is_its_own_floor() -> None:
    assert causal_floor({A}, A, {A: 7}, {}) == ({A: 7}, [])


class _Peers:
    def __init__(self, node_id: str, voters: set[str]) -> None:
        self.node_id = node_id
        self._voters = frozenset(voters)

    def voters(self) -> frozenset[str]:
        return self._voters


async def test_compact_once_drops_superseded_events_only_when_every_voter_is_known(
    tmp_path: Path,
) -> None:
    async with open_journal(tmp_path / "j.sqlite3", kv_projections()) as journal:
        for value in range(5):
            await journal.submit(put("k", value))
        me = journal.node_id
        other = "f" * 32
        known: dict[str, Any] = {}
        compactor = Compactor(journal, _Peers(me, {me, other}), lambda: known,
                              wall_clock_ms=lambda: 0)
        assert await compactor.compact_once() == 0
        assert compactor.status()["compaction_held_by"] == [other]
        known[other] = {me: 3}
        assert await compactor.compact_once() == 3  # seqs 1-3 are superseded and stable
        assert compactor.status()["compaction_floor"] == {me: 3}
        assert [e.seq for e in await journal.events({me: 3})] == [4, 5]
