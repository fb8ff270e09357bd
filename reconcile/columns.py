"""Which columns differ in a changed row: per-column canonical hashes, fetched by key."""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from reconcile.canonical import MASK64, md5_hash64, python_part
from reconcile.keys import Key, key_in
from reconcile.plan import Side

KEYS_PER_QUERY = 500


def column_hashes(
    conn: sa.Connection,
    side: Side,
    columns: Sequence[str],
    keys: Sequence[Key],
    matcher: Callable[[Key], Any] | None,
) -> dict[Any, tuple[Key, dict[str, int]]]:
    """`key → (key, {column: hash of its canonical text})` for the given keys."""
    side.canonical.prepare(conn)
    sql = [c for c in columns if c not in side.python_columns]
    py = [c for c in columns if c in side.python_columns]
    dialect_values = {v.name: v for v in side.python_values()}
    py_labels = [f"py_{side.python_columns.index(c)}" for c in py]
    width = len(side.key)
    out: dict[Any, tuple[Key, dict[str, int]]] = {}
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        query = sa.select(
            *side.key_columns,
            *(side.column_hash(c).label(f"h_{i}") for i, c in enumerate(sql)),
            *(dialect_values[label] for label in py_labels),
        ).where(key_in(side.key_columns, chunk))
        for row in conn.execute(query):
            key = tuple(row[:width])
            hashes = {c: int(row[width + i]) & MASK64 for i, c in enumerate(sql)}
            for i, c in enumerate(py):
                hashes[c] = md5_hash64(python_part(row[width + len(sql) + i], side.specs[c]))
            out[matcher(key) if matcher else (key[0] if width == 1 else key)] = (key, hashes)
    return out


def differing_columns(left: dict[str, int], right: dict[str, int]) -> list[str]:
    return [c for c in left if left[c] != right.get(c)]
