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

#: Prefix of the text column read beside a column whose value a batch may not hold:
#: `pipewarden:unreadable:<check>:<column>`, the value's text where it cannot be read, else NULL.
UNREADABLE = "pipewarden:unreadable:"


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


def select_list(
    dialect: Dialect, table: sa.Table, kinds: dict[str, ColumnKind]
) -> tuple[list[Any], dict[str, ColumnKind]]:
    """The columns a batch query selects, and the kinds of what it returns.

    A column the dialect knows may hold values no batch can hold is read as NULL where it does,
    with the value's text in a column of its own after the table's (`UNREADABLE`): the sync
    quarantines that row by name (`sync.screen`) instead of failing the batch.
    """
    columns: list[Any] = []
    flags: list[Any] = []
    fetched = dict(kinds)
    for name, kind in kinds.items():
        column = table.c[name]
        expression = dialect.read_expression(column, kind)
        problem = dialect.unreadable(column, kind)
        if problem is None:
            columns.append(expression)
            continue
        inner = expression.element if isinstance(expression, sa.Label) else expression
        value = sa.case((problem.bad, sa.null()), else_=inner)
        columns.append(sa.type_coerce(value, inner.type).label(name))
        flag = f"{UNREADABLE}{problem.check}:{name}"
        flags.append(sa.case((problem.bad, problem.text)).label(flag))
        fetched[flag] = ColumnKind("text")
    return columns + flags, fetched


def last_position(batch: pl.DataFrame, columns: Sequence[str]) -> list[Any]:
    """The values of `columns` in the batch's last row where none is NULL (else its last row).

    A NULL in a keyset position compares as unknown and would end the read; rows with a NULL
    key are quarantined, not followed.
    """
    names = list(dict.fromkeys(columns))  # a cursor that is also the key is one column
    complete = batch.select(names).filter(pl.all_horizontal(pl.all().is_not_null()))
    source = complete if complete.height else batch.select(names)
    last = dict(zip(names, source.row(source.height - 1), strict=True))
    return [last[name] for name in columns]


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
    columns, fetched = select_list(dialect, table, kinds)
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
    while True:
        query = base
        if position is not None:
            bound = [bind_value(v, k) for v, k in zip(position, order_kinds)]
            query = query.where(dialect.keyset(order, bound, ">"))
        batch = dialect.fetch_frame(conn, query, fetched)
        conn.rollback()  # no snapshot held on the source between batches
        if batch.height == 0:
            return
        position = last_position(batch, [cursor, *key])
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
    columns, fetched = select_list(dialect, table, kinds)
    order = [table.c[k] for k in key]
    base = sa.select(*columns).where(table.c[cursor].is_(None)).order_by(*order).limit(batch_size)
    position: list[Any] | None = None
    while True:
        query = base if position is None else base.where(dialect.keyset(order, position, ">"))
        batch = dialect.fetch_frame(conn, query, fetched)
        conn.rollback()
        if batch.height == 0:
            return
        position = last_position(batch, key)
        yield batch
        if batch.height < batch_size:
            return


def newest_cursor(
    conn: sa.Connection,
    table: sa.Table,
    cursor: str,
    dialect: Dialect | None = None,
    kind: ColumnKind | None = None,
) -> Any:
    """The newest cursor value in the source (for freshness and lag), among values a batch can
    hold (an `infinity` or `'not a date'` cursor is quarantined, not the newest)."""
    column = table.c[cursor]
    query = sa.select(sa.func.max(column))
    problem = None if dialect is None or kind is None else dialect.unreadable(column, kind)
    if problem is not None:
        query = query.where(sa.not_(problem.bad))
    return conn.execute(query).scalar()
