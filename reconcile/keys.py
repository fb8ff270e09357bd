"""Key predicates and key values: ranges of keys in SQL, and keys matched across drivers."""

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from pipewarden.dialects.kinds import ColumnKind
from pipewarden.reconcile.canonical import ColumnSpec, python_text

Key = tuple[Any, ...]


def compare_key(
    columns: Sequence[Any], values: Sequence[Any], op: str, row_value: bool
) -> sa.ColumnElement[bool]:
    """`(c1, c2) op (v1, v2)` for op in `<`, `>=`, as a row value or expanded."""
    if len(columns) == 1:
        column, value = columns[0], values[0]
        return column < value if op == "<" else column >= value
    if row_value:
        left = sa.tuple_(*columns)
        right = sa.tuple_(*(sa.literal(v, c.type) for c, v in zip(columns, values)))
        return left < right if op == "<" else left >= right
    clauses = []
    for i, (column, value) in enumerate(zip(columns, values)):
        equal = [columns[j] == values[j] for j in range(i)]
        strict = column < value if op == "<" else column > value
        clauses.append(sa.and_(*equal, strict))
    if op == ">=":
        clauses.append(sa.and_(*(c == v for c, v in zip(columns, values))))
    return sa.or_(*clauses)


def in_span(
    columns: Sequence[Any], low: Key | None, high: Key | None, row_value: bool
) -> sa.ColumnElement[bool]:
    """`low <= key < high`; None is unbounded."""
    parts = []
    if low is not None:
        parts.append(compare_key(columns, low, ">=", row_value))
    if high is not None:
        parts.append(compare_key(columns, high, "<", row_value))
    return sa.and_(*parts) if parts else sa.true()


def key_in(columns: Sequence[Any], keys: Sequence[Key]) -> sa.ColumnElement[bool]:
    """`key IN (…)` for single or composite keys."""
    if len(columns) == 1:
        return columns[0].in_([k[0] for k in keys])
    return sa.or_(*(sa.and_(*(c == v for c, v in zip(columns, k))) for k in keys))


def key_in_for(conn: sa.Connection, columns: Sequence[Any], keys: Sequence[Key]) -> Any:
    """`key_in`, as one array parameter on PostgreSQL (thousands of parameters plan slowly)."""
    if conn.dialect.name == "postgresql" and len(columns) == 1 and len(keys) > 50:
        array = sa.bindparam("pw_keys", [k[0] for k in keys], type_=pg.ARRAY(columns[0].type))
        return columns[0] == sa.any_(array)
    return key_in(columns, keys)


def key_matcher(kinds: Sequence[ColumnKind]) -> Any:
    """A function from fetched key values to a value equal across drivers for the same key."""
    if all(k.kind in ("integer", "text") for k in kinds):
        return None
    specs = [ColumnSpec(f"k{i}", k) for i, k in enumerate(kinds)]

    def normalize(values: Key) -> Key:
        return tuple(python_text(v, s) for v, s in zip(values, specs))

    return normalize


def json_key(values: Key) -> list[Any]:
    """A key as a JSON-ready list of its column values."""
    out: list[Any] = []
    for value in values:
        if value is None or isinstance(value, (bool, int, str, float)):
            out.append(value)
        elif isinstance(value, Decimal):
            out.append(format(value, "f"))
        elif isinstance(value, (datetime, date)):
            out.append(value.isoformat())
        elif isinstance(value, (bytes, bytearray, memoryview)):
            out.append(bytes(value).hex())
        else:
            out.append(str(value))
    return out


def split_key_range(text: str) -> tuple[str | None, str | None]:
    """`LOW:HIGH` as its two ends, None for an open one."""
    if ":" not in text:
        raise ValueError(f"--key-range takes LOW:HIGH (either end may be empty), got {text!r}")
    low, high = text.split(":", 1)
    return low or None, high or None


def empty_range(low: str | None, high: str | None) -> bool:
    """Both ends read as numbers (or as dates and times) and the low one is above the high one.

    Checked before the key's type is known; other ends are compared in the key's own type
    once the table is reflected (`reconcile.diff`)."""
    if low is None or high is None:
        return False
    for read in (Decimal, datetime.fromisoformat):
        try:
            return bool(read(low) > read(high))  # type: ignore[operator]
        except (ValueError, ArithmeticError, TypeError):
            continue
    return False


def parse_key_bound(text: str, kind: ColumnKind, column: str) -> Any:
    """`parse_bound`, with an error naming the column and the type it expected."""
    try:
        return parse_bound(text, kind)
    except (ValueError, ArithmeticError):
        raise ValueError(
            f"--key-range bound {text!r} is not a valid {kind.kind} for key column {column!r}"
        ) from None


def parse_bound(text: str, kind: ColumnKind) -> Any:
    """A `--key-range` bound in the key column's type."""
    if kind.kind == "integer":
        return int(text)
    if kind.kind == "decimal":
        return Decimal(text)
    if kind.kind == "timestamp":
        return datetime.fromisoformat(text)
    if kind.kind == "date":
        return date.fromisoformat(text)
    return text
