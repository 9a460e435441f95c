"""The hybrid logical clock, driven by a mock wall clock."""

from __future__ import annotations

import pytest

from zeronode.journal.hlc import (
    MAX_HLC,
    HybridLogicalClock,
    logical_of,
    pack,
    wall_ms_of,
)

T0 = 1_700_000_000_000  # an ordinary wall time, in ms


def test_pack_round_trips_and_orders_by_time_then_counter() -> None:
    stamp = pack(T0, 7)
    assert (wall_ms_of(stamp), logical_of(stamp)) == (T0, 7)
    assert pack(T0, 65535) < pack(T0 + 1, 0)
    with pytest.raises(ValueError):
        pack(T0, 1 << 16)


def test_now_follows_the_wall_clock_when_it_moves_forward() -> None:
    clock = HybridLogicalClock()
    assert clock.now(T0) == pack(T0)
    assert clock.now(T0 + 5) == pack(T0 + 5)


def test_now_counts_within_one_millisecond() -> None:
    clock = HybridLogicalClock()
    stamps = [clock.now(T0) for _ in range(3)]
    assert stamps == [pack(T0, 0), pack(T0, 1), pack(T0, 2)]


def test_monotonic_across_a_backward_step_of_the_wall_clock() -> None:
    clock = HybridLogicalClock()
    before = clock.now(T0)
    after = [clock.now(T0 - 10_000) for _ in range(3)]
    assert before < after[0] < after[1] < after[2]
    assert all(wall_ms_of(s) == T0 for s in after)  # held at the old time, counting
    assert clock.now(T0 + 1) == pack(T0 + 1)  # and back to wall time once it catches up


def test_counter_overflow_carries_into_the_millisecond_and_stays_monotonic() -> None:
    clock = HybridLogicalClock(pack(T0, 65535))
    assert clock.now(T0) == pack(T0 + 1, 0)


def test_restart_continues_from_the_persisted_value() -> None:
    first = HybridLogicalClock()
    last = max(first.now(T0 + 3_000) for _ in range(5))
    # the machine reboots with its clock stepped back a minute
    second = HybridLogicalClock(last)
    assert second.now(T0 - 60_000) > last


def test_observe_adopts_a_remote_timestamp_within_the_offset() -> None:
    clock = HybridLogicalClock(max_offset_ms=500)
    remote = pack(T0 + 400, 3)
    assert clock.observe(remote, T0)
    assert clock.now(T0) == remote + 1


def test_observe_ignores_a_remote_timestamp_in_the_past() -> None:
    clock = HybridLogicalClock()
    mine = clock.now(T0)
    assert clock.observe(pack(T0 - 1_000), T0)
    assert clock.now(T0) == mine + 1


def test_far_future_remote_is_not_adopted() -> None:
    clock = HybridLogicalClock(max_offset_ms=500)
    assert not clock.observe(pack(T0 + 501), T0)
    assert not clock.observe(pack(T0 + 3_600_000), T0)
    assert clock.now(T0) == pack(T0)
    assert clock.healthy(T0)


def test_healthy_while_wall_clock_within_offset_of_the_clock() -> None:
    clock = HybridLogicalClock(max_offset_ms=500)
    clock.now(T0)
    assert clock.healthy(T0)
    assert clock.healthy(T0 - 500)
    assert not clock.healthy(T0 - 501)  # wall clock stepped back beyond the offset
    # an unhealthy clock still issues monotonic timestamps
    assert clock.now(T0 - 10_000) > pack(T0)
    assert clock.healthy(T0 + 1)


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValueError):
        HybridLogicalClock(-1)
    clock = HybridLogicalClock(MAX_HLC)
    with pytest.raises(OverflowError):
        clock.now(T0)
