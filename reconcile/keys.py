"""Key ranges and key values: spans of keys in SQL (the dialect writes the comparisons), keys
matched across drivers, and `--key-range` bounds."""

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pipewarden.dialects.canonical import ColumnSpec, python_text
from pipewarden.dialects.keyset import Key, KeysetSQL
from pipewarden.dialects.kinds import ColumnKind


def in_span(
    dialect: KeysetSQL, columns: Sequence[Any], low: Key | None, high: Key | None
) -> sa.ColumnElement[bool]:
    """`low <= key < high`; None is unbounded."""
    parts = []
    if low is not None:
        parts.append(dialect.keyset(columns, low, ">="))
    if high is not None:
        parts.append(dialect.keyset(columns, high, "<"))
    return sa.and_(*parts) if parts else sa.true()


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


def json_key_text(values: Key) -> str:
    """`json_key` as JSON text; integer keys (the common case, and a million of them when a
    million rows differ) are written without building a list or calling the JSON encoder."""
    if all(type(value) is int for value in values):
        return "[" + ", ".join(map(str, values)) + "]"
    return json.dumps(json_key(values))


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
