"""Toy projections for the journal tests: each shows an entity's state as one row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from zeronode.journal import Change

KV = "test.kv"
KV_V2 = "test.kv@2"
BOOM = "boom"  # a value the toy projection refuses to show, to test failing folds


class KeyValueProjection:
    """``kind``'s entities as rows of ``table(entity, value)``, value the state as sorted JSON."""

    def __init__(self, kind: str = KV, table: str = "kv") -> None:
        self.kind = kind
        self.table = table
        self.schema: Sequence[str] = (
            f"CREATE TABLE IF NOT EXISTS {table} (entity TEXT PRIMARY KEY, value TEXT NOT NULL)"
            " WITHOUT ROWID",
        )

    def apply(self, db: sqlite3.Connection, entity: str, state: dict[str, Any] | None) -> None:
        if state is not None and state.get("v") == BOOM:
            raise ValueError("this projection cannot show a boom")
        if state is None:
            db.execute(f"DELETE FROM {self.table} WHERE entity = ?", (entity,))
        else:
            db.execute(
                f"INSERT OR REPLACE INTO {self.table} VALUES (?, ?)",
                (entity, json.dumps(state, sort_keys=True)),
            )


def kv_projections() -> list[KeyValueProjection]:
    return [KeyValueProjection(KV, "kv"), KeyValueProjection(KV_V2, "kv2")]


def put(entity: str, value: Any, kind: str = KV) -> Any:
    """A mutation that sets ``entity`` to ``{"v": value}`` unconditionally."""

    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        return [Change(entity, kind, {"v": value})]

    return mutation


def delete(entity: str, kind: str = KV) -> Any:
    def mutation(db: sqlite3.Connection) -> Sequence[Change]:
        return [Change(entity, kind, None)]

    return mutation


def rows(db: sqlite3.Connection, table: str = "kv") -> dict[str, Any]:
    return {e: json.loads(v) for e, v in db.execute(f"SELECT entity, value FROM {table}")}
