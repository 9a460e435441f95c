"""When freed blobs may be deleted: after the pins and leases of reads that may want them."""

from __future__ import annotations

import random
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
    assert holds.unlease(lease) == [A]


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


def test_random_histories_match_the_plain_rule() -> None:
    """Against the rule written plainly (a free waits for the pins alive when it was asked
    and for every lease on its blob), over random interleavings."""
    rng = random.Random(7)
    for _ in range(300):
        holds: ReadHolds[Ref] = ReadHolds()
        pins: list[int] = []
        leases: dict[int, list[str]] = {}
        waiting: list[tuple[Ref, set[int]]] = []  # the plain model: (ref, pins it waits for)
        deleted: list[Ref] = []
        expected: list[Ref] = []

        def settle() -> None:
            leased = {b for bs in leases.values() for b in bs}
            for item in list(waiting):
                if not item[1] and item[0].blob not in leased:
                    waiting.remove(item)
                    expected.append(item[0])

        for step in range(40):
            action = rng.choice(("pin", "unpin", "lease", "unlease", "free"))
            if action == "pin":
                pins.append(holds.pin())
            elif action == "unpin" and pins:
                token = pins.pop(rng.randrange(len(pins)))
                deleted += holds.unpin(token)
                for _, waited in waiting:
                    waited.discard(token)
            elif action == "lease":
                blobs = rng.sample("abcd", rng.randint(1, 2))
                leases[holds.lease(blobs)] = blobs
            elif action == "unlease" and leases:
                token = rng.choice(list(leases))
                del leases[token]
                deleted += holds.unlease(token)
            elif action == "free":
                ref = Ref(rng.choice("abcd"))  # blobs repeat: a lease on "a" holds them all
                waiting.append((ref, set(pins)))
                deleted += holds.free([ref])
            settle()
            assert sorted(r.blob for r in deleted) == sorted(r.blob for r in expected)
            assert holds.waiting == len(waiting)
