"""Key predicates: where a keyset page starts, a key range's ends, a list of keys.

The sync pages through a table in `(cursor, key)` order and reconciliation bounds its buckets
by keys: both compare a composite key with a tuple of values, written once here.
"""

from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa

KeysetOp = Literal["<", ">", ">="]
Key = tuple[Any, ...]


class KeysetSQL:
    """The key predicates a dialect writes; `row_value_keyset` picks their form."""

    #: `(a, b) > (x, y)` uses an index on this database (else the expanded OR form does).
    row_value_keyset: bool = False

    def keyset(
        self, columns: Sequence[Any], values: Sequence[Any], op: KeysetOp
    ) -> sa.ColumnElement[bool]:
        """`(c1, c2, …) op (v1, v2, …)` in key order: a row value where this database uses an
        index for one, expanded into `c1 op v1 OR (c1 = v1 AND c2 op v2) …` otherwise."""
        if len(columns) == 1:
            return _compare(columns[0], op, values[0])
        if self.row_value_keyset:
            left = sa.tuple_(*columns)
            right = sa.tuple_(*(sa.literal(v, c.type) for c, v in zip(columns, values)))
            return _compare(left, op, right)
        strict = ">" if op == ">=" else op
        clauses = [
            sa.and_(*(columns[j] == values[j] for j in range(i)), _compare(column, strict, value))
            for i, (column, value) in enumerate(zip(columns, values))
        ]
        if op == ">=":
            clauses.append(sa.and_(*(c == v for c, v in zip(columns, values))))
        return sa.or_(*clauses)

    def key_in(self, columns: Sequence[Any], keys: Sequence[Key]) -> sa.ColumnElement[bool]:
        """`key IN (…)` for single or composite keys."""
        if len(columns) == 1:
            return columns[0].in_([k[0] for k in keys])
        return sa.or_(*(sa.and_(*(c == v for c, v in zip(columns, k))) for k in keys))


def _compare(left: Any, op: KeysetOp, right: Any) -> sa.ColumnElement[bool]:
    if op == "<":
        return left < right
    return left > right if op == ">" else left >= right
