"""The listing walk against a naive reference, over random key sets (no agent needed)."""

from __future__ import annotations

import sqlite3
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any, NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from zeronode.services.s3.list_walk import CommonPrefix, common_prefix, prefix_end, walk
from zeronode.services.s3.listing import ObjectSource, VersionSource
from zeronode.services.s3.projections import ObjectProjection, object_entity


class Entry(NamedTuple):
    key: str
    age: int  # 0 is the newest version of the key


class ListSource:
    """An in-memory source over ``entries`` (sorted by key, newest version first).

    ``complete_keys`` mimics the version source, which never ends a batch inside a key.
    ``fetched`` counts the entries handed out, to check that skips seek instead of scanning.
    """

    def __init__(self, entries: list[Entry], complete_keys: bool = False) -> None:
        self.entries = sorted(entries)
        self.keys = [e.key for e in self.entries]
        self.complete_keys = complete_keys
        self.fetched = 0
        self.calls = 0

    def _from(self, start: int, upper: str | None, limit: int) -> Sequence[Entry]:
        stop = len(self.entries) if upper is None else bisect_left(self.keys, upper)
        end = min(start + limit, stop)
        if self.complete_keys and end > start:
            end = max(end, min(bisect_right(self.keys, self.keys[end - 1]), stop))
        rows = self.entries[start:end]
        self.fetched += len(rows)
        self.calls += 1
        return rows

    def seek(self, key: str, inclusive: bool, upper: str | None, limit: int) -> Sequence[Entry]:
        start = bisect_left(self.keys, key) if inclusive else bisect_right(self.keys, key)
        return self._from(start, upper, limit)

    def resume(self, entry: Entry, upper: str | None, limit: int) -> Sequence[Entry]:
        return self._from(bisect_right(self.entries, entry), upper, limit)


def reference(
    entries: list[Entry], prefix: str, delimiter: str, after: str, after_entry: Entry | None
) -> list[Entry | CommonPrefix]:
    """Every item after the start, by the definition (no seeks, no batches)."""
    floor = after_entry.key if after_entry is not None else after
    items: list[Entry | CommonPrefix] = []
    seen: set[str] = set()
    for entry in sorted(entries):
        if not entry.key.startswith(prefix):
            continue
        if (entry <= after_entry) if after_entry is not None else (entry.key <= after):
            continue
        rolled = common_prefix(entry.key, prefix, delimiter)
        if rolled is None:
            items.append(entry)
        elif rolled > floor and rolled not in seen:
            seen.add(rolled)
            items.append(CommonPrefix(rolled))
    return items


# A small alphabet so that keys collide and share prefixes, with the code points where
# ordering and "the next string" are delicate.
ALPHABET = ["a", "b", "/", "-", "\x00", "\x7f", "é", "\ud7ff", "\ue000", "\U0010ffff"]
keys = st.text(alphabet=st.sampled_from(ALPHABET), min_size=1, max_size=5)
delimiters = st.sampled_from(["", "/", "-", "a/", "\U0010ffff", "//"])
prefixes = st.text(alphabet=st.sampled_from(ALPHABET), max_size=2)


@st.composite
def versioned_entries(draw: st.DrawFn) -> list[Entry]:
    chosen = draw(st.lists(keys, max_size=40, unique=True))
    return [Entry(k, age) for k in chosen for age in range(draw(st.integers(1, 3)))]


def test_prefix_end() -> None:
    assert prefix_end("") is None
    assert prefix_end("a/") == "a0"
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff\U0010ffff") is None
    assert prefix_end("x\ud7ff") == "x\ue000"


def test_common_prefix() -> None:
    assert common_prefix("a/b/c", "", "/") == "a/"
    assert common_prefix("a/b/c", "a/", "/") == "a/b/"
    assert common_prefix("a/b", "a/b", "/") is None
    assert common_prefix("abcbd", "", "bd") == "abcbd"
    assert common_prefix("a/b", "", "") is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(keys, max_size=40, unique=True),
    prefixes,
    delimiters,
    st.one_of(st.just(""), keys),
    st.integers(0, 6),
)
def test_one_page_matches_reference(
    chosen: list[str], prefix: str, delimiter: str, after: str, max_keys: int
) -> None:
    entries = [Entry(k, 0) for k in chosen]
    expected = reference(entries, prefix, delimiter, after, None)
    page = walk(
        ListSource(entries), prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
    )
    assert page.items == expected[:max_keys]
    assert page.truncated == (max_keys > 0 and len(expected) > max_keys)


def page_through(source: Any, prefix: str, delimiter: str, max_keys: int, bound: int) -> list[Any]:
    """Every item, page by page, each page starting after the last item of the one before."""
    listed: list[Any] = []
    after, after_entry = "", None
    for _ in range(bound):
        page = walk(
            source,
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            after_entry=after_entry,
            max_keys=max_keys,
        )
        listed += page.items
        if not page.truncated:
            return listed
        last = page.last
        if isinstance(last, CommonPrefix):
            after, after_entry = last.prefix, None
        else:
            after, after_entry = "", last
    raise AssertionError("pagination did not end")


@settings(max_examples=300, deadline=None)
@given(versioned_entries(), prefixes, delimiters, st.integers(1, 5), st.booleans())
def test_paging_by_last_item_lists_everything_once(
    entries: list[Entry], prefix: str, delimiter: str, max_keys: int, complete_keys: bool
) -> None:
    source = ListSource(entries, complete_keys=complete_keys)
    listed = page_through(source, prefix, delimiter, max_keys, bound=len(entries) + 2)
    assert listed == reference(entries, prefix, delimiter, "", None)


@settings(max_examples=200, deadline=None)
@given(versioned_entries(), prefixes, delimiters, st.integers(0, 5), st.data())
def test_resuming_inside_a_key_matches_reference(
    entries: list[Entry], prefix: str, delimiter: str, max_keys: int, data: st.DataObject
) -> None:
    if not entries:
        return
    start = data.draw(st.sampled_from(sorted(entries)))
    expected = reference(entries, prefix, delimiter, "", start)
    page = walk(
        ListSource(entries, complete_keys=True),
        prefix=prefix,
        delimiter=delimiter,
        after_entry=start,
        max_keys=max_keys,
    )
    assert page.items == expected[:max_keys]
    assert page.truncated == (max_keys > 0 and len(expected) > max_keys)


def test_common_prefix_is_skipped_with_a_seek_not_a_scan() -> None:
    entries = [Entry(f"big/{n:05d}", 0) for n in range(20_000)] + [
        Entry("small/x", 0),
        Entry("z", 0),
    ]
    source = ListSource(entries)
    page = walk(source, delimiter="/", max_keys=1000)
    assert page.items == [CommonPrefix("big/"), CommonPrefix("small/"), Entry("z", 0)]
    assert not page.truncated
    assert source.fetched < 2_100


def test_max_keys_counts_prefixes_and_marks_truncation() -> None:
    entries = [Entry(k, 0) for k in ["a/1", "a/2", "b", "c/1", "d"]]
    page = walk(ListSource(entries), delimiter="/", max_keys=3)
    assert page.items == [CommonPrefix("a/"), Entry("b", 0), CommonPrefix("c/")]
    assert page.truncated
    rest = walk(ListSource(entries), delimiter="/", after="c/", max_keys=3)
    assert rest.items == [Entry("d", 0)] and not rest.truncated


def test_start_inside_a_common_prefix_skips_it() -> None:
    entries = [Entry(k, 0) for k in ["a/1", "a/2", "a/3", "b/1"]]
    page = walk(ListSource(entries), delimiter="/", after="a/1")
    assert page.items == [CommonPrefix("b/")]
    before = walk(ListSource(entries), delimiter="/", after="a")
    assert before.items == [CommonPrefix("a/"), CommonPrefix("b/")]


def test_zero_max_keys_is_an_empty_untruncated_page() -> None:
    source = ListSource([Entry("a", 0)])
    page = walk(source, max_keys=0)
    assert page.items == [] and not page.truncated and source.calls == 0


# --- the walk over the SQL sources of listing.py, on the real projection tables ---------------


def _projected(history: dict[str, list[bool]]) -> sqlite3.Connection:
    """A database holding ``history``: per key, its versions oldest first (True: delete marker)."""
    db = sqlite3.connect(":memory:")
    projection = ObjectProjection()
    for statement in projection.schema:
        db.execute(statement)
    order = 0
    for key, versions in history.items():
        for markers in versions:
            order += 1
            version_id = f"{order:032x}"
            state = {
                "bucket": "b",
                "key": key,
                "version_id": version_id,
                "ord": f"{order:032x}",
                "delete_marker": markers,
                "last_modified_ms": order,
                "owner": "o",
            }
            if not markers:
                state.update(size=order, etag="e", storage_class="STANDARD")
            projection.apply(db, object_entity("b", version_id, key), state)
    return db


histories = st.dictionaries(keys, st.lists(st.booleans(), min_size=1, max_size=3), max_size=30)


@settings(max_examples=150, deadline=None)
@given(histories, prefixes, delimiters, st.integers(1, 4))
def test_sql_sources_page_like_the_reference(
    history: dict[str, list[bool]], prefix: str, delimiter: str, max_keys: int
) -> None:
    db = _projected(history)
    current = [Entry(k, 0) for k, versions in history.items() if not versions[-1]]
    every = [Entry(k, age) for k, versions in history.items() for age in range(len(versions))]
    as_entry = {}
    for key, versions in history.items():
        ids = [
            row[0]
            for row in db.execute(
                "SELECT version_id FROM s3_versions WHERE key = ? ORDER BY ord DESC", (key,)
            )
        ]
        as_entry.update({(key, vid): Entry(key, age) for age, vid in enumerate(ids)})

    bound = len(every) + 2
    objects = page_through(ObjectSource(db, "b"), prefix, delimiter, max_keys, bound)
    assert [i if isinstance(i, CommonPrefix) else Entry(i.key, 0) for i in objects] == reference(
        current, prefix, delimiter, "", None
    )
    versions = page_through(VersionSource(db, "b"), prefix, delimiter, max_keys, bound)
    assert [
        i if isinstance(i, CommonPrefix) else as_entry[(i.key, i.version_id)] for i in versions
    ] == reference(every, prefix, delimiter, "", None)
    latest = [row for row in walk(VersionSource(db, "b"), max_keys=1000).entries if row.is_latest]
    assert [row.key for row in latest] == sorted(history)
