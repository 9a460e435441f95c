"""When freed blobs may be deleted: after the pins and leases of reads that may want them."""

from __future__ import annotations

from dataclasses import dataclass

from zeronode.storage.leases import ReadHolds


@dataclass(frozen=True)
class Ref:
    blob: str


A, B = Ref("a"), Ref("b")


def test_a_free_with_no_reader_is_immediate() -> None:
    holds: ReadHolds[Ref] = ReadHolds()
    assert holds.free([A, B]) == [A, B]
    assert holds.waiting == 0


def test_a_free_waits_for_the_pins_already_taken_but_not_for_later_ones() -> None:
    holds: ReadHolds[Ref] = ReadHolds()
    early = holds.pin()
    assert holds.free([A]) == []
    late = holds.pin()  # a lookup after the commit cannot have seen A
    assert holds.unpin(late) == []
    assert holds.unpin(early) == [A]
    assert holds.waiting == 0


def test_a_lease_taken_while_pinned_outlasts_the_pin() -> None:
    holds: ReadHolds[Ref] = ReadHolds()
    pin = holds.pin()
    lease = holds.lease(["a"])
    assert holds.free([A, B]) == []
    assert holds.unpin(pin) == [B]  # only A is being streamed
    assert holds.is_leased("a")
    assert holds.unlease(lease) == [A]
    assert not holds.is_leased("a")


def test_a_blob_leased_twice_waits_for_both() -> None:
    holds: ReadHolds[Ref] = ReadHolds()
    first, second = holds.lease(["a"]), holds.lease(["a", "b"])
    assert holds.free([A]) == []
    assert holds.unlease(first) == []
    assert holds.unlease(second) == [A]


def test_releases_of_unknown_tokens_change_nothing() -> None:
    holds: ReadHolds[Ref] = ReadHolds()
    lease = holds.lease(["a"])
    assert holds.unpin(12345) == []
    assert holds.unlease(12345) == []
    assert holds.free([A]) == []
    assert holds.unlease(lease) == [A]
