"""Fault injection decisions: reproducible from the seed, symmetric partitions."""

from __future__ import annotations

from cluster.faults import Faults


def drop_pattern(faults: Faults, count: int = 500) -> list[bool]:
    return [faults.drops() for _ in range(count)]


def test_same_seed_same_drops() -> None:
    first, second = Faults(seed=42), Faults(seed=42)
    first.drop_probability = second.drop_probability = 0.25
    pattern = drop_pattern(first)
    assert pattern == drop_pattern(second)
    assert 0.15 < sum(pattern) / len(pattern) < 0.35


def test_reseed_replays_the_sequence_and_other_seeds_differ() -> None:
    faults = Faults(seed=1)
    faults.drop_probability = 0.5
    pattern = drop_pattern(faults)
    faults.reseed(1)
    assert drop_pattern(faults) == pattern
    faults.reseed(2)
    assert drop_pattern(faults) != pattern


def test_nothing_is_drawn_while_loss_and_delay_are_off() -> None:
    quiet, reference = Faults(seed=3), Faults(seed=3)
    assert not any(drop_pattern(quiet)) and quiet.next_delay() == 0.0
    quiet.drop_probability = reference.drop_probability = 0.5
    assert drop_pattern(quiet) == drop_pattern(reference)  # the quiet period consumed nothing


def test_delay_stays_in_range() -> None:
    faults = Faults(seed=4)
    faults.delay = (0.01, 0.05)
    assert all(0.01 <= faults.next_delay() <= 0.05 for _ in range(200))


def test_partition_cuts_both_ways_between_sides_only() -> None:
    faults = Faults()
    faults.partition(["a", "b"], ["c"])
    assert faults.blocks("a", "c") and faults.blocks("c", "a") and faults.blocks("b", "c")
    assert not faults.blocks("a", "b") and not faults.blocks("c", "d")
    faults.heal()
    assert not faults.blocks("a", "c")
