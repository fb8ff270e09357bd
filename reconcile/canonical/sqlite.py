"""SQLite canonical fragments: SQLite has no md5 and no date or decimal types, so the values go
through deterministic Python functions registered on the connection (the reference rules)."""

import sqlite3
from typing import Any

import sqlalchemy as sa

from pipewarden.reconcile.canonical import (
    MASK64,
    Canonical,
    ColumnSpec,
    date_text,
    decimal_text,
    float_text,
    json_text,
    md5_hash64,
    time_text,
    timestamp_text,
)


class _Sum64:
    """Sum of 64-bit hashes modulo 2^64, returned as text (it does not fit a SQLite integer)."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total = (self.total + value) & MASK64

    def finalize(self) -> str:
        return str(self.total)


def _safe(function: Any) -> Any:
    def wrapped(*args: Any) -> Any:
        try:
            return function(*args)
        except (ValueError, TypeError, ArithmeticError):
            return None if args[0] is None else "!" + str(args[0])  # unparseable: compared as is

    return wrapped


def register_functions(raw: sqlite3.Connection) -> None:
    """Register the canonical functions on a sqlite3 connection (idempotent)."""
    for name, nargs, function in (
        ("pw_h64", 1, lambda t: None if t is None else md5_hash64(t)),
        ("pw_decimal", 2, _safe(decimal_text)),
        ("pw_float", 2, _safe(float_text)),
        ("pw_timestamp", 2, _safe(timestamp_text)),
        ("pw_time", 2, _safe(time_text)),
        ("pw_date", 1, _safe(date_text)),
        ("pw_json", 1, _safe(json_text)),
    ):
        raw.create_function(name, nargs, function, deterministic=True)
    raw.create_aggregate("pw_sum64", 1, _Sum64)  # type: ignore[arg-type]


class SQLiteCanonical(Canonical):
    name = "sqlite"
    json_family = "python"

    def prepare(self, conn: sa.Connection) -> None:
        register_functions(conn.connection.driver_connection)  # type: ignore[arg-type]

    def value_text(self, column: Any, spec: ColumnSpec) -> Any:
        kind = spec.kind
        if kind.kind == "decimal":
            return sa.func.pw_decimal(column, kind.scale)
        if kind.kind == "float":
            return sa.func.pw_float(column, int(kind.single))
        if kind.kind == "boolean":
            return sa.case((column != 0, "1"), (column == 0, "0"))
        if kind.kind == "timestamp":
            return sa.func.pw_timestamp(column, spec.precision)
        if kind.kind == "date":
            return sa.func.pw_date(column)
        if kind.kind == "time":
            return sa.func.pw_time(column, spec.precision)
        if kind.kind == "json":
            return sa.func.pw_json(column)
        if kind.kind == "binary":  # hex(NULL) is '', the text of an empty blob
            return sa.case((column.is_not(None), sa.func.lower(sa.func.hex(column))))
        if kind.kind == "uuid":
            return sa.func.lower(column)
        return sa.cast(column, sa.Text)

    def length(self, text: Any) -> Any:
        return sa.func.length(text)

    def hash64(self, text: Any) -> Any:
        return sa.func.pw_h64(text)

    def sum64(self, hash_expr: Any) -> Any:
        return sa.func.pw_sum64(hash_expr)
