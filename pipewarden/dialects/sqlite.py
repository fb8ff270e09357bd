"""SQLite: the embedded warehouse and the demo's sources. Decimals are stored as exact text.

SQLite has no md5 and no date or decimal types: reconciliation's canonical values go through the
Python reference (`canonical`), registered on the connection as deterministic SQL functions.
"""

import bisect
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import processors
from sqlalchemy.types import TypeEngine

from pipewarden.config.timeouts import DEFAULT_TIMEOUTS, TimeoutKind, Timeouts
from pipewarden.dialects.base import Dialect, Unreadable, _generic_type, changed_condition
from pipewarden.dialects.canonical import (
    MASK64,
    ColumnSpec,
    date_text,
    decimal_text,
    float_text,
    json_text,
    md5_hash64,
    time_text,
    timestamp_text,
)
from pipewarden.dialects.keyset import Key
from pipewarden.dialects.kinds import ColumnKind, kind_of
from pipewarden.dialects.sqlite_deadline import INTERRUPTED, limit_statements
from pipewarden.dialects.sqlite_lock import file_lock
from pipewarden.dialects.sqlite_types import DecimalText, ExactFloat, UtcDateTime

if TYPE_CHECKING:
    import polars as pl


class SQLite(Dialect):
    name = "sqlite"
    #: Only from SQLite 3.39 (Ubuntu 22.04's Python links 3.37).
    full_join = sqlite3.sqlite_version_info >= (3, 39)
    row_value_keyset = True
    warehouse = True
    reconciles = True
    json_family = "python"

    def engine_options(self, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> dict[str, Any]:
        # The busy timeout: how long a writer waits for the database's one write lock. It is
        # the only wait SQLite has (no server, no network), so the lock limit bounds it.
        return {"connect_args": {"timeout": timeouts.lock}}

    def timeout_kind(self, error: BaseException) -> TimeoutKind | None:
        text = str(error)
        if "database is locked" in text:
            return "lock"
        return "statement" if INTERRUPTED in text else None

    def limit_statements(self, engine: sa.Engine, timeouts: Timeouts) -> None:
        limit_statements(engine, timeouts.statement)

    def on_connect(self, dbapi_connection: Any, connection_record: Any) -> None:
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        dbapi_connection.create_function(
            "pipewarden_unreadable", 2, _unreadable, deterministic=True
        )

    def unreadable(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Unreadable | None:
        """SQLite stores any text in any column: a timestamp or date that SQLAlchemy cannot
        parse (`'not a date'`), or a declared JSON column holding text that is not JSON."""
        if kind.kind not in _PARSERS:
            return None
        parsed = sa.func.pipewarden_unreadable(column, kind.kind) == 1
        canonical = _canonical(column, kind.kind)
        return Unreadable(
            parsed if canonical is None else sa.and_(sa.not_(canonical), parsed),
            sa.cast(column, sa.Text),
            f"unreadable.not_{'a_' if kind.kind != 'json' else ''}{kind.kind}",
        )

    def fraction_digits(self, type_: TypeEngine[Any]) -> int:
        """Timestamps are text, written by anything (`CURRENT_TIMESTAMP` keeps whole seconds):
        the coarsest precision is the safe one."""
        return 0

    def at_or_after(
        self, column: sa.ColumnElement[Any], value: Any, kind: ColumnKind
    ) -> sa.ColumnElement[bool]:
        """Compared as text in its shortest form: `'… 12:00:00'` (CURRENT_TIMESTAMP) sorts
        before `'… 12:00:00.000000'` (SQLAlchemy), so a bound written the long way would leave
        out rows of the very second it names."""
        if kind.kind == "timestamp" and isinstance(value, datetime):
            text = value.strftime("%Y-%m-%d %H:%M:%S")
            if value.microsecond:
                text += f".{value.microsecond:06d}"
            return sa.type_coerce(column, sa.Text) >= sa.literal(text, sa.Text)
        return column >= value

    def views_reading(self, conn: sa.Connection, table: sa.Table) -> list[str]:
        """Views and triggers whose SQL names the table (by text: a false match only means the
        table is rewritten in place; renaming a table over them fails in SQLite)."""
        rows = conn.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')")
        )
        name = table.name.lower()
        return sorted(str(n) for n, sql in rows if sql and name in str(sql).lower())

    def lock_for_write(self, conn: sa.Connection) -> None:
        """`BEGIN IMMEDIATE`: in WAL mode a transaction that has read cannot become a writer once
        another connection has committed since (SQLITE_BUSY_SNAPSHOT, "database is locked" at
        once, with no busy wait); one that takes the write lock first waits its turn instead.
        This failed the demo's first sync about one time in two: three tables created at once."""
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @contextmanager
    def run_lock(
        self,
        conn: sa.Connection,
        name: str,
        wait: float,
        on_wait: Callable[[], None] = lambda: None,
    ) -> Iterator[bool]:
        """An exclusive `flock` on a file beside the database: the kernel drops it with the
        process that held it, and SQLite's own write lock cannot be held across a run's
        transactions without stopping every other table's writes."""
        with file_lock(conn.engine.url.database, name, wait, on_wait) as held:
            yield held

    def kind_of(self, type_: TypeEngine[Any]) -> ColumnKind:
        kind = kind_of(type_)
        # REAL, FLOAT and DOUBLE all store 8-byte doubles here.
        return ColumnKind("float") if kind.kind == "float" else kind

    def read_expression(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Any:
        if kind.kind == "float":  # a NaN kept as text (see `ExactFloat`) is read as NaN
            return sa.type_coerce(column, ExactFloat()).label(column.key)
        return super().read_expression(column, kind)

    def series_frame(self, conn: sa.Connection, query: sa.Select[Any]) -> "pl.DataFrame":
        """As the base class, but the instants are read as the text SQLite stores and parsed in
        one vectorised call: SQLAlchemy's per-row datetime parsing and Row objects were most of a
        check run's history read (400,000 points for 200 tables). Text in any other shape than
        SQLAlchemy's `YYYY-MM-DD HH:MM:SS[.ffffff]` takes the base class's way."""
        import polars as pl

        *keys, at, value = (column.name for column in query.selected_columns)
        raw = query.with_only_columns(
            *(
                sa.type_coerce(column, sa.String).label(at) if column.name == at else column
                for column in query.selected_columns
            )
        )
        with conn.execute(raw) as result:
            rows = result.cursor.fetchall()  # plain tuples: no processor has anything to do
        schema = {k: pl.String for k in keys} | {at: pl.String, value: pl.Float64}
        try:
            frame = pl.DataFrame(rows, schema=schema, orient="row", strict=True)
            instants = frame.get_column(at).str.to_datetime(
                "%Y-%m-%d %H:%M:%S%.f", time_unit="us", time_zone="UTC", strict=True
            )
        except (pl.exceptions.PolarsError, TypeError, ValueError):
            return super().series_frame(conn, query)
        return frame.with_columns(instants.dt.epoch("us").alias(at))

    def column_type(self, kind: ColumnKind) -> TypeEngine[Any]:
        if kind.kind == "float":
            return ExactFloat()
        if kind.kind == "decimal":
            return DecimalText(kind.scale)
        if kind.kind == "timestamp":
            return UtcDateTime()
        if kind.kind in ("json", "uuid"):
            return sa.Text()
        return _generic_type(kind)

    def insert_or_skip(
        self,
        table: sa.Table,
        index_elements: Sequence[sa.Column[Any]],
        index_where: sa.ColumnElement[bool] | None = None,
    ) -> sa.Insert:
        return sqlite.insert(table).on_conflict_do_nothing(
            index_elements=list(index_elements), index_where=index_where
        )

    def merge(
        self,
        target: sa.Table,
        staging: sa.Table,
        key: Sequence[str],
        cursor: str | None,
        columns: Sequence[str],
    ) -> sa.Executable:
        # `WHERE true` resolves SQLite's parsing ambiguity between a join and the upsert clause.
        select = sa.select(*(staging.c[c] for c in columns)).where(sa.true())
        stmt = sqlite.insert(target).from_select(list(columns), select)
        updates = [c for c in columns if c not in key]
        if not updates:
            return stmt.on_conflict_do_nothing(index_elements=list(key))
        return stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={c: stmt.excluded[c] for c in updates},
            where=changed_condition(target, stmt.excluded, updates, cursor),
        )

    # --- reconciliation: canonical text through Python functions, segments by bisect ---------

    def prepare_hashing(self, conn: sa.Connection) -> None:
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

    def text_length(self, text: Any) -> Any:
        return sa.func.length(text)

    def hash64(self, text: Any) -> Any:
        return sa.func.pw_h64(text)

    def sum64(self, hash_expr: Any) -> Any:
        return sa.func.pw_sum64(hash_expr)

    def sample(
        self, table: sa.Table, fraction: float, filtered: bool
    ) -> tuple[sa.FromClause, sa.ColumnElement[bool] | None]:
        """SQLite's `random()` is a 64-bit integer, not a fraction."""
        return table, sa.func.abs(sa.func.random()) % 1_000_000 < int(fraction * 1e6)

    def bucket_number(
        self, conn: sa.Connection, keys: Sequence[Any], boundaries: list[Key]
    ) -> sa.ColumnElement[Any]:
        """A Python `bisect` over the boundaries, registered on this connection."""

        def bucket(*key: Any) -> int:
            try:
                return bisect.bisect_right(boundaries, key)
            except TypeError:
                return 0  # not comparable with these boundaries: one bucket, narrowed whole

        raw = conn.connection.driver_connection
        raw.create_function("pw_bucket", len(keys), bucket, deterministic=True)  # type: ignore[union-attr]
        return sa.func.pw_bucket(*keys)


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


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


#: How SQLAlchemy reads each kind back (the same parsers, so they fail on the same values).
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "timestamp": processors.str_to_datetime,
    "date": processors.str_to_date,
    "json": _strict_json,
}


_DAY = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]"
_SECOND = _DAY + " [0-2][0-9]:[0-5][0-9]:[0-5][0-9]"


def _canonical(column: sa.ColumnElement[Any], kind: str) -> sa.ColumnElement[bool] | None:
    """The forms SQLAlchemy writes, checked in SQL (a valid day and time of a year from 1):
    the common value costs no call into Python; anything else asks the parser itself."""
    text = sa.type_coerce(column, sa.Text)
    day = sa.and_(
        sa.func.substr(text, 1, 4) != "0000",
        # A modifier makes SQLite normalize: `2026-02-30` becomes `2026-03-02`, unequal.
        sa.func.date(text, "+0 days") == sa.func.substr(text, 1, 10),
    )
    if kind == "date":
        return sa.and_(text.op("GLOB")(_DAY), day)
    if kind == "timestamp":
        shape = sa.or_(text.op("GLOB")(_SECOND), text.op("GLOB")(_SECOND + "." + "[0-9]" * 6))
        return sa.and_(shape, sa.func.substr(text, 12, 2) < "24", day)
    return None


def _unreadable(value: Any, kind: str) -> int:
    """1 when the value (not NULL) would fail its kind's parser: an SQL function of SQLite."""
    if value is None:
        return 0
    try:
        _PARSERS[kind](value)
    except (ValueError, TypeError):
        return 1
    return 0
