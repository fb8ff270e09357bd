"""Reading a source in keyset order `(cursor, key)`, in bounded columnar batches.

Memory stays flat whatever the table size: one batch of rows is held at a time, and each batch
query starts strictly after the last row of the previous one, so no row is read twice within a
run unless it changed (and moved forward) while the run was going.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from pipewarden.dialects import Dialect
from pipewarden.dialects.kinds import ColumnKind


@dataclass(frozen=True)
class Position:
    """A point in keyset order: the cursor value and the primary key after it."""

    cursor: Any
    key: tuple[Any, ...]


def bind_value(value: Any, kind: ColumnKind) -> Any:
    """A watermark value in the form the source column compares with.

    Columns without a time zone (MariaDB DATETIME, SQLite) hold UTC wall-clock time.
    """
    if isinstance(value, datetime) and kind.kind == "timestamp" and not kind.timezone:
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def after(order: Sequence[sa.ColumnElement[Any]], values: Sequence[Any], row_value: bool) -> Any:
    """`(c1, c2, …) > (v1, v2, …)`, as a row value or expanded for databases that need it."""
    if row_value:
        return sa.tuple_(*order) > sa.tuple_(
            *(sa.literal(v, c.type) for c, v in zip(order, values))
        )
    clauses = []
    for i, (column, value) in enumerate(zip(order, values)):
        equal = [order[j] == values[j] for j in range(i)]
        clauses.append(sa.and_(*equal, column > value))
    return sa.or_(*clauses)


def read_batches(
    conn: sa.Connection,
    dialect: Dialect,
    table: sa.Table,
    kinds: dict[str, ColumnKind],
    key: Sequence[str],
    cursor: str,
    start_at: Any,
    batch_size: int,
    resume_after: Position | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield batches of rows with `cursor >= start_at` (all rows when None), in keyset order.

    With `resume_after`, reading resumes strictly after that `(cursor, key)` instead.
    """
    names = list(kinds)
    columns = [dialect.read_expression(table.c[n], kinds[n]) for n in names]
    order = [table.c[cursor], *(table.c[k] for k in key)]
    order_kinds = [kinds[cursor], *(kinds[k] for k in key)]
    base = sa.select(*columns).where(table.c[cursor].is_not(None))
    if start_at is not None:
        start = bind_value(start_at, kinds[cursor])
        base = base.where(dialect.at_or_after(table.c[cursor], start, kinds[cursor]))
    base = base.order_by(*order).limit(batch_size)
    position: list[Any] | None = (
        None if resume_after is None else [resume_after.cursor, *resume_after.key]
    )
    cursor_at, key_at = names.index(cursor), [names.index(k) for k in key]
    while True:
        query = base
        if position is not None:
            bound = [bind_value(v, k) for v, k in zip(position, order_kinds)]
            query = query.where(after(order, bound, dialect.row_value_keyset))
        batch = dialect.fetch_frame(conn, query, kinds)
        conn.rollback()  # no snapshot held on the source between batches
        if batch.height == 0:
            return
        last = batch.row(batch.height - 1)
        position = [last[cursor_at], *(last[i] for i in key_at)]
        yield batch
        if batch.height < batch_size:
            return


def read_null_cursor_rows(
    conn: sa.Connection,
    dialect: Dialect,
    table: sa.Table,
    kinds: dict[str, ColumnKind],
    key: Sequence[str],
    cursor: str,
    batch_size: int,
) -> Iterator[pl.DataFrame]:
    """Rows whose cursor is NULL, in key order: a delta cannot see them, a full load must."""
    names = list(kinds)
    columns = [dialect.read_expression(table.c[n], kinds[n]) for n in names]
    order = [table.c[k] for k in key]
    base = sa.select(*columns).where(table.c[cursor].is_(None)).order_by(*order).limit(batch_size)
    position: list[Any] | None = None
    key_at = [names.index(k) for k in key]
    while True:
        query = (
            base
            if position is None
            else base.where(after(order, position, dialect.row_value_keyset))
        )
        batch = dialect.fetch_frame(conn, query, kinds)
        conn.rollback()
        if batch.height == 0:
            return
        last = batch.row(batch.height - 1)
        position = [last[i] for i in key_at]
        yield batch
        if batch.height < batch_size:
            return


def newest_cursor(conn: sa.Connection, table: sa.Table, cursor: str) -> Any:
    """The newest cursor value in the source (for freshness and lag)."""
    return conn.execute(sa.select(sa.func.max(table.c[cursor]))).scalar()
