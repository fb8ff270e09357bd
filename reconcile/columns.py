"""Which columns differ in a changed row: per-column canonical hashes, fetched by key."""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from pipewarden.dialects.canonical import MASK64, md5_hash64, python_part
from pipewarden.dialects.keyset import Key
from pipewarden.reconcile.narrow import raw_rows
from pipewarden.reconcile.plan import Side

KEYS_PER_QUERY = 5000


def column_hashes(
    conn: sa.Connection,
    side: Side,
    columns: Sequence[str],
    keys: Sequence[Key],
    matcher: Callable[[Key], Any] | None,
) -> dict[Any, tuple[Key, tuple[int, ...]]]:
    """`key → (key, hashes)` for the given keys: one hash per column, SQL columns first, then
    Python columns (the order `ordered_columns` gives)."""
    side.dialect.prepare_hashing(conn)
    sql = [c for c in columns if c not in side.python_columns]
    py = [c for c in columns if c in side.python_columns]
    dialect_values = {v.name: v for v in side.python_values()}
    py_labels = [f"py_{side.python_columns.index(c)}" for c in py]
    width = len(side.key)
    out: dict[Any, tuple[Key, tuple[int, ...]]] = {}
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        query = sa.select(
            *side.key_columns,
            *(side.column_hash(c).label(f"h_{i}") for i, c in enumerate(sql)),
            *(dialect_values[label] for label in py_labels),
        ).where(side.dialect.key_in(side.key_columns, chunk))
        for row in raw_rows(conn, query):
            key = tuple(row[:width])
            hashes = row[width : width + len(sql)]
            if py:
                parts = zip(row[width + len(sql) :], (side.specs[c] for c in py))
                hashes = (*hashes, *(md5_hash64(python_part(v, spec)) for v, spec in parts))
            out[matcher(key) if matcher else (key[0] if width == 1 else key)] = (key, hashes)
    return out


def ordered_columns(side: Side, columns: Sequence[str]) -> list[str]:
    """The columns in the order `column_hashes` returns their hashes."""
    sql = [c for c in columns if c not in side.python_columns]
    return sql + [c for c in columns if c in side.python_columns]


def differing_columns(
    columns: Sequence[str], left: Sequence[int], right: Sequence[int], unsigned: bool
) -> list[str]:
    if unsigned:
        return [c for c, a, b in zip(columns, left, right) if (a - b) & MASK64]
    return [c for c, a, b in zip(columns, left, right) if a != b]
