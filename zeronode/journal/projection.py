"""Projections: the tables services read, one projection per event kind.

A projection owns its tables (created by its idempotent ``schema`` statements) and knows how to
show one entity's state in them. The fold calls ``apply`` only for the event that wins an
entity, so ``apply`` simply upserts (or, for ``None``, deletes) whatever rows the entity has:
it must depend on nothing but its arguments and the entity's own rows, and
``apply(db, entity, None)`` must remove every row ``apply(db, entity, state)`` created.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Projection(Protocol):
    kind: str
    schema: Sequence[str]

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        """Upsert (or delete, for ``None``) ``entity``'s rows; runs inside the fold's transaction."""
        ...


def entity_fields(entity: str, prefix: str, count: int) -> list[str]:
    """The ``count`` slash-separated fields of ``entity`` after ``prefix``; the last keeps any
    slashes (an S3 key, say). A projection's ``apply`` uses it to turn the entity id it built
    back into the columns of its rows."""
    return entity.removeprefix(prefix).split("/", count - 1)


RESERVED_PREFIX = "journal_"


class UnknownKindError(LookupError):
    """A local mutation produced a Change of a kind no projection handles (a programming error)."""


class ProjectionSet(Mapping[str, Projection]):
    """The projections a journal was opened with, by kind, and the tables they own."""

    def __init__(self, projections: Iterable[Projection]) -> None:
        self._by_kind: dict[str, Projection] = {}
        for projection in projections:
            kind = projection.kind
            if not isinstance(kind, str) or not kind:
                raise ValueError(f"projection {projection!r} has no kind")
            if kind in self._by_kind:
                raise ValueError(f"two projections for kind {kind!r}")
            self._by_kind[kind] = projection
        tables = _tables_created_by(self._by_kind.values())
        reserved = sorted(t for t in tables if t.startswith(RESERVED_PREFIX))
        if reserved:
            raise ValueError(f"table names starting with {RESERVED_PREFIX!r} are the journal's: {reserved}")
        self.tables: tuple[str, ...] = tuple(sorted(tables))

    def __getitem__(self, kind: str) -> Projection:
        return self._by_kind[kind]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_kind)

    def __len__(self) -> int:
        return len(self._by_kind)

    def create_schema(self, db: sqlite3.Connection) -> None:
        for projection in self._by_kind.values():
            for statement in projection.schema:
                db.execute(statement)


def _tables_created_by(projections: Iterable[Projection]) -> set[str]:
    """Run the schemas on a scratch database to learn which tables they create."""
    scratch = sqlite3.connect(":memory:")
    try:
        for projection in projections:
            for statement in projection.schema:
                scratch.execute(statement)
        rows = scratch.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        scratch.close()
    return {name for (name,) in rows}
