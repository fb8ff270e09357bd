"""The small interface every database implements; one file per dialect implements it.

`Dialect` is the sync's half (types, reads, staging, merge, locks) composed with the
reconciliation's (`canonical.CanonicalForm`: canonical text and hashes; `segments.SegmentSQL`:
sampling and numbering key segments; `keyset.KeysetSQL`: key predicates, which the sync's keyset
pages use too). An engine's file overrides what differs there, and nothing outside
`pipewarden.dialects` asks which engine it talks to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.types import TypeEngine

from pipewarden.config.timeouts import DEFAULT_TIMEOUTS, TimeoutKind, Timeouts
from pipewarden.dialects.canonical import CanonicalForm
from pipewarden.dialects.kinds import ColumnKind, kind_of
from pipewarden.dialects.segments import SegmentSQL

if TYPE_CHECKING:  # polars and numpy load where a batch is handled, not for `pipewarden status`
    import numpy as np
    import polars as pl


@dataclass(frozen=True)
class Unreadable:
    """Which values of a column a batch cannot hold, found by the query that reads them.

    `bad` is true for such a value (never for NULL), `text` is the value as the database writes
    it, and `check` names the problem in the row's quarantine reason (`unreadable.…`).
    """

    bad: sa.ColumnElement[bool]
    text: sa.ColumnElement[str]
    check: str


#: A privilege on a table: (grantee, privilege such as SELECT, with grant option).
Grant = tuple[str, str, bool]
#: A warehouse's refusal: (column, check, mask of the rows whose value it cannot store).
Refusal = tuple[str, str, "pl.Expr"]


class Dialect(SegmentSQL, CanonicalForm):
    """Capabilities and the few SQL shapes that differ between databases."""

    name: str = "generic"
    #: Reconciliation can hash this database's rows (its canonical SQL is written).
    reconciles: bool = False
    #: pipewarden may keep its tables and copies here.
    warehouse: bool = False
    #: `bulk_insert` can put a first load straight into the target, faster than staging.
    direct_insert: bool = False
    #: A freshly loaded table's primary key can be added after its rows (one sort instead of
    #: a key kept row by row); where not, the table is created with it.
    late_primary_key: bool = False
    #: FULL OUTER JOIN is understood (a profile build joins customers and orders both ways).
    full_join: bool = True

    def engine_options(self, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> dict[str, Any]:
        """Keyword arguments for `sqlalchemy.create_engine`, the connection's limits included."""
        return {"pool_pre_ping": True}

    def timeout_kind(self, error: BaseException) -> TimeoutKind | None:
        """Whether a database error is a lock wait or a statement that ran past its limit."""
        return None

    def on_connect(self, dbapi_connection: Any, connection_record: Any) -> None:
        """Per-connection set-up (session time zone, functions)."""

    def limit_statements(self, engine: sa.Engine, timeouts: Timeouts) -> None:
        """Bound each statement's run time where the connection's options cannot (a server's
        own statement timeout is set by `engine_options`)."""

    def kind_of(self, type_: TypeEngine[Any]) -> ColumnKind:
        """The kind of a column reflected from this database."""
        return kind_of(type_)

    def table_kinds(self, conn: sa.Connection, table: sa.Table) -> dict[str, ColumnKind]:
        """The kind of every column of a reflected table (the sync and reconciliation both
        read a table's kinds here, so they cannot disagree about a column)."""
        return {c.name: self.kind_of(c.type) for c in table.columns}

    def refusal(self, type_: TypeEngine[Any]) -> str | None:
        """Why a source column of this type cannot be carried exactly, and what to do instead;
        None when it can. A sync refuses such a table before it loads anything."""
        if isinstance(type_, sa.types.NullType):
            return (
                "pipewarden does not know its type, so it cannot promise its values arrive "
                "exactly; declare the column's type, or read the table through a view that "
                "casts the column to a type pipewarden knows (text, a number, a date)"
            )
        return None

    def column_type(self, kind: ColumnKind) -> TypeEngine[Any]:
        """The type a warehouse column of this kind gets here."""
        return _generic_type(kind)

    def staging_type(self, kind: ColumnKind) -> TypeEngine[Any]:
        """The type of this kind in a staging table; the merge casts where it differs."""
        return self.column_type(kind)

    def from_staging(self, staged: sa.ColumnElement[Any], target: sa.Column[Any]) -> Any:
        """A staging column as a value of the warehouse column (cast where staging differs)."""
        return staged

    def read_expression(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Any:
        """How a column is selected so its value arrives exactly (JSON as text, …)."""
        if kind.kind == "json":  # the document's own text, not a parsed and re-dumped object
            return sa.type_coerce(column, sa.Text).label(column.key)
        return column

    def unreadable(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Unreadable | None:
        """Values of a source column that a batch cannot hold (an infinite or year-0 date, text
        that is no timestamp): read as NULL with their text beside, so the row is quarantined
        by name instead of failing the whole batch in the driver or in polars."""
        return None

    def refused(self, batch: pl.DataFrame, kinds: dict[str, ColumnKind]) -> list[Refusal]:
        """Values of a batch this warehouse cannot store (PostgreSQL: NUL in text)."""
        return []

    def lock_for_write(self, conn: sa.Connection) -> None:
        """Take the write lock at the start of a transaction that reads before it writes, where
        a read transaction may be refused the upgrade to a writer (SQLite)."""

    @contextmanager
    def run_lock(
        self,
        conn: sa.Connection,
        name: str,
        wait: float,
        on_wait: Callable[[], None] = lambda: None,
    ) -> Iterator[bool]:
        """Hold the lock that lets one run at a time work on `name` (a warehouse table), for
        the `with` block; yields False when another holder kept it for `wait` seconds, and
        calls `on_wait` once before waiting. A holder that dies (SIGKILL, a lost host) loses
        it: who holds it is alive. `conn` is the run's warehouse connection, outside a
        transaction."""
        raise NotImplementedError(f"{self.name} cannot be a warehouse")
        yield False  # pragma: no cover

    def relax_commit(self, conn: sa.Connection) -> None:
        """Let this transaction's commit return before its record is on disk, where the
        database can; only for records whose loss in a crash does no harm."""

    def favour_index_lookups(self, conn: sa.Connection) -> None:
        """Let this transaction's plans look a few rows up by index rather than read whole
        tables, where the planner weighs that by a cost of random reads."""

    def views_reading(self, conn: sa.Connection, table: sa.Table) -> list[str]:
        """The views that read `table`: it cannot be dropped and replaced under them."""
        return []

    def table_grants(self, conn: sa.Connection, table: sa.Table) -> list[Grant]:
        """The privileges granted on `table` to others, for `grant` to give a table that
        replaces it."""
        return []

    def grant(self, conn: sa.Connection, table: sa.Table, grants: Sequence[Grant]) -> None:
        """Give `table` the privileges `table_grants` read off the table it replaces."""

    def oldest_open_transaction_start(self, conn: sa.Connection) -> datetime | None:
        """Start of the oldest transaction still writing, where the database can tell."""
        return None

    def cursor_tick(self, type_: TypeEngine[Any], kind: ColumnKind) -> timedelta | int | None:
        """The smallest step between two values of a cursor column, where its type tells."""
        if kind.kind == "integer":
            return 1
        if kind.kind == "date":
            return timedelta(days=1)
        if kind.kind == "timestamp":
            return timedelta(microseconds=10 ** (6 - self.fraction_digits(type_)))
        return None

    def fraction_digits(self, type_: TypeEngine[Any]) -> int:
        """Digits of a second a timestamp column keeps; unknown here, so the coarsest (0)."""
        return 0

    def at_or_after(
        self, column: sa.ColumnElement[Any], value: Any, kind: ColumnKind
    ) -> sa.ColumnElement[bool]:
        """`column >= value`: where a delta starts reading."""
        return column >= value

    def fetch_tuples(self, conn: sa.Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        """Every row of a large read of pipewarden's own tables, as plain tuples (blobs as
        bytes)."""
        return list(conn.execute(query).tuples().all())

    def fetch_frame(
        self, conn: sa.Connection, query: sa.Select[Any], kinds: dict[str, ColumnKind]
    ) -> pl.DataFrame:
        """Run a query and return its rows as a batch typed by the columns' kinds."""
        import polars as pl

        rows = conn.execute(query).fetchall()
        schema = {n: k.polars_dtype() for n, k in kinds.items()}
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")

    def series_frame(self, conn: sa.Connection, query: sa.Select[Any]) -> pl.DataFrame:
        """The rows of a `fetch_series` query, unsorted, the instant as int64 microseconds."""
        import polars as pl

        *keys, at, value = (column.name for column in query.selected_columns)
        kinds = {k: ColumnKind("text") for k in keys}
        kinds |= {at: ColumnKind("timestamp", timezone=True), value: ColumnKind("float")}
        frame = self.fetch_frame(conn, query, kinds)
        return frame.with_columns(pl.col(at).dt.epoch("us"))

    def fetch_series(
        self, conn: sa.Connection, query: sa.Select[Any]
    ) -> dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]]:
        """Many time series in one read. The query selects key columns (text), then an instant
        and a float value, none NULL; per key: the instants as int64 microseconds since the
        epoch (UTC) and the values as float64, ordered by time, then value (so the order of
        points measured at the same instant does not depend on how the database returned them)."""
        import polars as pl

        *keys, at, value = (column.name for column in query.selected_columns)
        frame = self.series_frame(conn, query).sort([*keys, at, value])
        micros, values = frame.get_column(at).to_numpy(), frame.get_column(value).to_numpy()
        sizes = frame.group_by(keys, maintain_order=True).agg(pl.len().alias("_points"))
        out, start = {}, 0
        for *key, points in sizes.iter_rows():
            out[tuple(key)] = (micros[start : start + points], values[start : start + points])
            start += points
        return out

    def merge(
        self,
        target: sa.Table,
        staging: sa.Table,
        key: Sequence[str],
        cursor: str | None,
        columns: Sequence[str],
    ) -> sa.Executable:
        """One statement: insert new rows, update changed ones, never go back to an older one."""
        raise NotImplementedError(f"{self.name} cannot be a warehouse")

    def insert_or_skip(
        self,
        table: sa.Table,
        index_elements: Sequence[sa.Column[Any]],
        index_where: sa.ColumnElement[bool] | None = None,
    ) -> sa.Insert:
        """An INSERT that leaves out a row the unique index on `index_elements` (partial where
        `index_where`) already holds, instead of failing the transaction; a concurrent insert
        is waited for."""
        raise NotImplementedError(f"{self.name} cannot be a warehouse")

    def empty_staging(self, conn: sa.Connection, staging: sa.Table) -> None:
        """Empty the staging table before a batch (inside the batch's transaction)."""
        conn.execute(staging.delete())

    def bulk_insert(self, conn: sa.Connection, table: sa.Table, batch: pl.DataFrame) -> bool:
        """Insert a batch straight into a warehouse table, with no staging and no merge.

        Used while the target was empty when the run began; False (nothing done) where only
        the staging path is fast or exact, and the caller merges through staging instead.
        """
        return False

    def bulk_load(self, conn: sa.Connection, staging: sa.Table, batch: pl.DataFrame) -> None:
        """Put a batch into the (empty) staging table."""
        self.append(conn, staging, batch)

    def append(self, conn: sa.Connection, table: sa.Table, frame: pl.DataFrame) -> None:
        """Add a frame's rows to a table, in the caller's transaction (pipewarden's own records)."""
        rows = frame.to_dicts()
        if rows:
            conn.execute(table.insert(), rows)


def changed_condition(
    existing: sa.Table, incoming: Any, columns: Sequence[str], cursor: str | None
) -> sa.ColumnElement[bool]:
    """`incoming` is not older than `existing`, and differs from it in some column.

    The second half is what dedupes re-read rows by content: an identical re-read is no update.
    """
    differs = sa.or_(*(existing.c[c].is_distinct_from(incoming[c]) for c in columns))
    if cursor is None:
        return differs
    return sa.and_(
        sa.or_(existing.c[cursor].is_(None), existing.c[cursor] <= incoming[cursor]), differs
    )


def _generic_type(kind: ColumnKind) -> TypeEngine[Any]:
    if kind.kind == "integer":
        return sa.BigInteger()
    if kind.kind == "decimal":
        return sa.Numeric(kind.precision, kind.scale, asdecimal=True)
    if kind.kind == "float":
        return sa.REAL() if kind.single else sa.Float()
    if kind.kind == "boolean":
        return sa.Boolean()
    if kind.kind == "date":
        return sa.Date()
    if kind.kind == "timestamp":
        return sa.DateTime(timezone=True)
    if kind.kind == "time":
        return sa.Text() if kind.timezone else sa.Time()
    if kind.kind == "binary":
        return sa.LargeBinary()
    if kind.kind == "json":
        return sa.JSON()
    if kind.kind == "text" and kind.length:
        return sa.String(kind.length)
    return sa.Text()
