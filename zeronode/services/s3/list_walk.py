"""The S3 listing walk: one page of keys and common prefixes, from a sorted source.

Theory of operation. A listing is a sorted sequence of *items*. Walking the entries under
``prefix`` in key order (UTF-8 binary order, which is code point order, which is what SQLite's
``BINARY`` collation and Python's ``str`` comparison both give), each entry whose key holds
``delimiter`` after the prefix rolls up into the common prefix that ends at the first such
delimiter; every other entry is an item by itself. A common prefix is one item however many
entries it covers, and it counts toward ``max_keys`` exactly like a key, as in S3.

The start position (``StartAfter``, ``Marker``, ``KeyMarker``, a continuation token) is the
last item of the previous page, or any string: items that sort at or before it are not listed.
For a common prefix that means it is skipped when the start position lies inside it (or is
the prefix itself), which is what makes "the last item returned" a correct resume point: the
next page neither repeats the prefix nor loses anything after it.

Cost. Entries come from a :class:`Source` in batches. Once a common prefix is emitted, the
walk skips the rest of it inside the batch it holds and, when the batch runs out while still
inside the prefix, asks the source for keys ``>=`` the prefix's upper bound — one seek,
whatever the number of keys under it. So a page costs about ``max_keys`` entries plus one seek
per common prefix, not a scan of the bucket.

The walk does no I/O of its own: the handler runs it inside one read of the journal (one
snapshot), with a source that queries the projection tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Generic, NamedTuple, Protocol, TypeVar

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)
BATCH = 1000


class Keyed(Protocol):
    @property
    def key(self) -> str: ...


E = TypeVar("E", bound=Keyed)


class Source(Protocol[E]):
    """Entries in listing order, restricted to keys below ``upper`` (None: no bound).

    ``seek`` returns the first entries whose key is ``> key`` (``>= key`` when ``inclusive``);
    ``resume`` the entries that follow ``entry`` in listing order (for versions: the older
    versions of the same key, then the next keys). Either may return more than ``limit``
    entries (a source may complete a key's versions); returning fewer than ``limit`` means
    nothing follows.
    """

    def seek(self, key: str, inclusive: bool, upper: str | None, limit: int) -> Sequence[E]: ...

    def resume(self, entry: E, upper: str | None, limit: int) -> Sequence[E]: ...


class CommonPrefix(NamedTuple):
    prefix: str


@dataclass(frozen=True)
class Page(Generic[E]):
    """One page: ``items`` in listing order (entries and :class:`CommonPrefix`)."""

    items: list[E | CommonPrefix]
    truncated: bool

    @property
    def entries(self) -> list[E]:
        return [item for item in self.items if not isinstance(item, CommonPrefix)]

    @property
    def prefixes(self) -> list[str]:
        return [item.prefix for item in self.items if isinstance(item, CommonPrefix)]

    @property
    def last(self) -> E | CommonPrefix | None:
        return self.items[-1] if self.items else None


def prefix_end(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``.

    None when there is none (empty prefix, or a prefix made only of U+10FFFF). Surrogates
    cannot occur in a key (keys are UTF-8), so the successor of U+D7FF is U+E000.
    """
    stripped = prefix.rstrip(chr(MAX_CODE_POINT))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if following in _SURROGATES:
        following = _SURROGATES.stop
    return stripped[:-1] + chr(following)


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` rolls up into, or None when it is listed by itself."""
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    if at < 0:
        return None
    return key[: at + len(delimiter)]


def walk(
    source: Source[E],
    *,
    prefix: str = "",
    delimiter: str = "",
    after: str = "",
    after_entry: E | None = None,
    max_keys: int = 1000,
) -> Page[E]:
    """The page of at most ``max_keys`` items after the start position.

    The start is ``after`` (a key or common prefix; "" for the beginning) or, for version
    listings that resume inside a key, ``after_entry`` (its key is then the start position
    for common prefixes). ``truncated`` is true when at least one more item follows.
    """
    if max_keys <= 0:
        return Page([], False)
    found = _items(source, prefix, delimiter, after, after_entry, max_keys)
    items = list(islice(found, max_keys + 1))
    return Page(items[:max_keys], len(items) > max_keys)


def _items(
    source: Source[E], prefix: str, delimiter: str, after: str, after_entry: E | None, max_keys: int
) -> Iterator[E | CommonPrefix]:
    upper = prefix_end(prefix) if prefix else None
    floor = after_entry.key if after_entry is not None else after
    batch = min(max_keys + 1, BATCH)
    if prefix > floor:
        rows = source.seek(prefix, True, upper, batch)
    elif after_entry is not None:
        rows = source.resume(after_entry, upper, batch)
    else:
        rows = source.seek(after, False, upper, batch)
    while True:
        index = 0
        inside: str | None = None  # the common prefix the batch ended in, if it did
        while index < len(rows):
            entry = rows[index]
            rolled = common_prefix(entry.key, prefix, delimiter)
            if rolled is None:
                yield entry
                index += 1
                continue
            if rolled > floor:
                yield CommonPrefix(rolled)
            while index < len(rows) and rows[index].key.startswith(rolled):
                index += 1
            inside = rolled
        if len(rows) < batch:
            return
        if inside is not None and rows[-1].key.startswith(inside):
            resume_at = prefix_end(inside)
            if resume_at is None:
                return
            rows = source.seek(resume_at, True, upper, batch)
        else:
            rows = source.resume(rows[-1], upper, batch)
