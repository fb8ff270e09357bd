"""PostgreSQL: a warehouse and a source. CSV COPY into staging (binary rows only for types CSV
cannot carry), ON CONFLICT merges; reconciliation samples with TABLESAMPLE, numbers segments with
`width_bucket` and, when both sides are PostgreSQL 14+, hashes rows with `hash_record_extended`.

Departure from the shared design, which asks for binary COPY into staging: binary COPY costs one
Python call per row and value (`write_row`), more than the whole CSV path, where polars writes
and PostgreSQL parses in C (bench/sync.py); binary stays the fallback for types CSV cannot carry.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.types import TypeEngine, UserDefinedType

from pipewarden.config.timeouts import DEFAULT_TIMEOUTS, TimeoutKind, Timeouts
from pipewarden.dialects.base import (
    Dialect,
    Grant,
    Refusal,
    Unreadable,
    _generic_type,
    changed_condition,
)
from pipewarden.dialects.canonical import ColumnSpec
from pipewarden.dialects.keyset import Key
from pipewarden.dialects.kinds import ColumnKind, kind_of

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

#: Bytes handed to COPY at a time: the driver copies what it is given into its buffers.
COPY_CHUNK = 1 << 20
#: `timestamptz_send(t) || float8send(v)`: microseconds since 2000-01-01 UTC, then the value.
_POINT = [("at", ">i8"), ("value", ">f8")]
_POSTGRES_EPOCH_US = 946_684_800_000_000
#: `date_trunc` units for the canonical precisions below microseconds.
_TRUNC = {0: "second", 3: "milliseconds"}
#: Keys past which `key IN (…)` is one array parameter (thousands of parameters plan slowly).
_KEYS_AS_ARRAY = 50
#: A random read's cost where lookups are favoured: the value PostgreSQL's documentation
#: suggests for storage that reads at random about as fast as in sequence (SSD, cached).
RANDOM_PAGE_COST = 1.1


#: The privileges a table's ACL can hold (`aclexplode`'s privilege_type).
_TABLE_PRIVILEGES = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}
)


class PostgreSQL(Dialect):
    name = "postgresql"
    row_value_keyset = True
    warehouse = True
    direct_insert = True
    late_primary_key = True
    reconciles = True
    json_family = "postgresql-jsonb"
    binary_collation = "C"
    cheap_sample = True

    def engine_options(self, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> dict[str, Any]:
        session = {
            "timezone": "UTC",
            "intervalstyle": "postgres",  # the text intervals travel as: one form everywhere
            "statement_timeout": _millis(timeouts.statement),
            "lock_timeout": _millis(timeouts.lock),
            # Floats sent as text that reads back exactly (a server set to 0 sends 15 digits),
            # in COPY output and in the canonical form alike.
            "extra_float_digits": 3,
        }
        return {
            "pool_pre_ping": True,
            "connect_args": {
                "options": " ".join(f"-c {k}={v}" for k, v in session.items()),
                "connect_timeout": max(1, math.ceil(timeouts.connect)),
            },
        }

    def timeout_kind(self, error: BaseException) -> TimeoutKind | None:
        state = getattr(getattr(error, "orig", error), "sqlstate", None)
        if state == "55P03":  # lock_not_available: lock_timeout
            return "lock"
        if state == "57014" and "statement timeout" in str(error):
            return "statement"
        return None

    def column_type(self, kind: ColumnKind) -> TypeEngine[Any]:
        if kind.kind == "json":
            return pg.JSONB()
        if kind.kind == "uuid":
            return pg.UUID(as_uuid=False)
        if kind.kind == "time" and kind.timezone:
            return pg.TIME(timezone=True)
        if kind.kind == "interval":
            return pg.INTERVAL()
        if kind.kind == "array" and kind.element:
            return ArrayOf(kind.element)
        return _generic_type(kind)

    def staging_type(self, kind: ColumnKind) -> TypeEngine[Any]:
        """JSON and unconstrained numerics travel as text and are cast in the merge."""
        if kind.kind == "json" or (kind.kind == "decimal" and kind.scale is None):
            return sa.Text()
        if kind.kind in ("uuid", "interval", "array") or (kind.kind == "time" and kind.timezone):
            return sa.Text()
        return self.column_type(kind)

    def from_staging(self, staged: sa.ColumnElement[Any], target: sa.Column[Any]) -> Any:
        if isinstance(staged.type, sa.Text) and not isinstance(target.type, (sa.Text, sa.String)):
            return sa.cast(staged, target.type)
        return staged

    def read_expression(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Any:
        if kind.kind in ("json", "uuid") or (kind.kind == "decimal" and kind.scale is None):
            return sa.cast(column, sa.Text).label(column.key)
        if kind.kind in ("interval", "array") or (kind.kind == "time" and kind.timezone):
            # PostgreSQL's own text: exact, and what it parses back (a timetz keeps its offset).
            return sa.cast(column, sa.Text).label(column.key)
        if kind.kind == "text" and not isinstance(column.type, sa.String):
            # inet, xml, money, bit, point, tsvector, a type of an extension: carried as the
            # text PostgreSQL writes for them (the driver would return objects on some paths).
            return sa.cast(column, sa.Text).label(column.key)
        return column

    def refusal(self, type_: TypeEngine[Any]) -> str | None:
        return None  # every type has a text form, and unknown ones travel as it

    def fraction_digits(self, type_: TypeEngine[Any]) -> int:
        """`timestamp(p)`; without `p`, microseconds."""
        precision = getattr(type_, "precision", None)
        return 6 if precision is None else int(precision)

    @contextmanager
    def run_lock(
        self,
        conn: sa.Connection,
        name: str,
        wait: float,
        on_wait: Callable[[], None] = lambda: None,
    ) -> Iterator[bool]:
        """A session-level advisory lock: it outlives the run's transactions, and the server
        drops it with the session of a holder that died."""
        key = advisory_key(f"{conn.engine.url.database}|{name}")
        with conn.begin():
            held = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            )
        if not held:
            on_wait()
            held = self._wait_for_lock(conn, key, wait)
        try:
            yield held
        finally:
            if held:
                _release(conn, key)

    def _wait_for_lock(self, conn: sa.Connection, key: int, wait: float) -> bool:
        try:
            with conn.begin():
                conn.execute(
                    sa.text("SELECT set_config('lock_timeout', :wait, true)"),
                    {"wait": f"{_millis(wait)}ms"},
                )
                conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        except sa.exc.DBAPIError as error:
            if self.timeout_kind(error) != "lock":
                raise
            return False
        return True

    def unreadable(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Unreadable | None:
        """`infinity`, `-infinity` and dates outside years 1-9999 (BC, year 10000+): Python and
        the batch hold none of them."""
        if kind.kind == "date":
            low, high = sa.literal(date.min, sa.Date), sa.literal(date.max, sa.Date)
        elif kind.kind == "timestamp":
            zone = UTC if kind.timezone else None
            low = sa.literal(datetime.min.replace(tzinfo=zone), column.type)
            high = sa.literal(datetime.max.replace(tzinfo=zone), column.type)
        else:
            return None
        return Unreadable(
            sa.or_(column < low, column > high),
            sa.cast(column, sa.Text),
            "unreadable.out_of_range",
        )

    def refused(self, batch: pl.DataFrame, kinds: dict[str, ColumnKind]) -> list[Refusal]:
        """Text cannot hold a NUL character, nor `jsonb` the escape `\\u0000`."""
        import polars as pl

        out: list[Refusal] = []
        for name, dtype in batch.schema.items():
            if dtype != pl.String:
                continue
            kind = kinds.get(name)
            wanted = [("refused.nul_character", "\x00")]
            if kind is not None and kind.kind == "json":
                wanted.append(("refused.json_nul_escape", "\\u0000"))
            for check, text in wanted:
                # One search of the column's text joined, then per row only where it found one.
                joined = pl.col(name).str.join("").str.contains(text, literal=True)
                if batch.select(joined).item():
                    out.append((name, check, pl.col(name).str.contains(text, literal=True)))
        return out

    def relax_commit(self, conn: sa.Connection) -> None:
        conn.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))

    def favour_index_lookups(self, conn: sa.Connection) -> None:
        # The default random_page_cost (4, for spinning disks) makes an incremental profile
        # build read all 10M orders to aggregate 100,000 of them (1.6 s against 0.47 s by
        # index, measured at 1M customers); a setting the server already has lower is kept.
        conn.execute(
            sa.text(
                "SELECT set_config('random_page_cost', "
                "least(current_setting('random_page_cost')::float8, :cost)::text, true)"
            ),
            {"cost": RANDOM_PAGE_COST},
        )

    def oldest_open_transaction_start(self, conn: sa.Connection) -> datetime | None:
        return conn.execute(
            sa.text(
                "SELECT min(xact_start) FROM pg_stat_activity "
                "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() "
                "AND datname = current_database()"
            )
        ).scalar()

    def views_reading(self, conn: sa.Connection, table: sa.Table) -> list[str]:
        """Views and materialized views whose rules read the table (`pg_depend`)."""
        name = conn.dialect.identifier_preparer.format_table(table)
        return list(
            conn.execute(
                sa.text(
                    "SELECT DISTINCT v.relname FROM pg_depend d "
                    "JOIN pg_rewrite r ON r.oid = d.objid "
                    "JOIN pg_class v ON v.oid = r.ev_class "
                    "WHERE d.refobjid = to_regclass(:name) AND v.oid <> d.refobjid "
                    "ORDER BY 1"
                ),
                {"name": name},
            ).scalars()
        )

    def table_grants(self, conn: sa.Connection, table: sa.Table) -> list[Grant]:
        """Privileges others hold on the table (its ACL, less the owner's own)."""
        name = conn.dialect.identifier_preparer.format_table(table)
        rows = conn.execute(
            sa.text(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,"
                " a.privilege_type, a.is_grantable "
                "FROM pg_class c, aclexplode(c.relacl) a "
                "WHERE c.oid = to_regclass(:name) AND a.grantee <> c.relowner ORDER BY 1, 2"
            ),
            {"name": name},
        )
        return [(str(who), str(privilege), bool(option)) for who, privilege, option in rows]

    def grant(self, conn: sa.Connection, table: sa.Table, grants: Sequence[Grant]) -> None:
        quote = conn.dialect.identifier_preparer
        for grantee, privilege, grantable in grants:
            if privilege not in _TABLE_PRIVILEGES:
                continue  # read from the catalog; only table privileges are ever there
            who = "PUBLIC" if grantee == "PUBLIC" else quote.quote_identifier(grantee)
            option = " WITH GRANT OPTION" if grantable else ""
            conn.execute(
                sa.text(f"GRANT {privilege} ON {quote.format_table(table)} TO {who}{option}")
            )

    def insert_or_skip(
        self,
        table: sa.Table,
        index_elements: Sequence[sa.Column[Any]],
        index_where: sa.ColumnElement[bool] | None = None,
    ) -> sa.Insert:
        return pg.insert(table).on_conflict_do_nothing(
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
        select = sa.select(*(self.from_staging(staging.c[c], target.c[c]) for c in columns))
        stmt = pg.insert(target).from_select(list(columns), select)
        updates = [c for c in columns if c not in key]
        if not updates:
            return stmt.on_conflict_do_nothing(index_elements=list(key))
        return stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={c: stmt.excluded[c] for c in updates},
            where=changed_condition(target, stmt.excluded, updates, cursor),
        )

    def fetch_series(
        self, conn: sa.Connection, query: sa.Select[Any]
    ) -> dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]]:
        """One row per series: its points packed by the server into one bytea of big-endian
        (µs since 2000, float8) pairs, read in binary: rows of text would cost the client a
        Python object per row and value. No ORDER BY in the aggregate: the database then hashes
        instead of sorting by text, and the points are put in order here."""
        import numpy as np

        points = query.subquery("points")
        *keys, at, value = points.c
        packed = sa.func.string_agg(
            sa.func.timestamptz_send(at).op("||")(sa.func.float8send(value)),
            sa.literal_column("''::bytea"),
        )
        grouped = sa.select(*keys, packed).group_by(*keys)
        compiled = grouped.compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        with _driver(conn).cursor(binary=True) as cur:
            cur.execute(str(compiled), compiled.params)
            rows = cur.fetchall()
        out = {}
        for *key, blob in rows:
            pairs = np.frombuffer(blob, dtype=np.dtype(_POINT))
            micros = pairs["at"].astype(np.int64) + _POSTGRES_EPOCH_US
            values = pairs["value"].astype(np.float64)
            if len(micros) > 1 and np.any(micros[1:] <= micros[:-1]):
                order = np.lexsort((values, micros))
                micros, values = micros[order], values[order]
            out[tuple(key)] = (micros, values)
        return out

    def fetch_tuples(self, conn: sa.Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        """The driver's own tuples, read in binary: psycopg returns typed values (aware
        datetimes, ints) without SQLAlchemy's result rows, and bytea as bytes rather than hex
        text to decode."""
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        with _driver(conn).cursor(binary=True) as cur:
            cur.execute(str(compiled), compiled.params)
            return cur.fetchall()

    def fetch_frame(
        self, conn: sa.Connection, query: sa.Select[Any], kinds: dict[str, ColumnKind]
    ) -> pl.DataFrame:
        """`COPY (query) TO STDOUT` as CSV, parsed by Arrow: no per-value Python objects."""
        import pyarrow as pa

        if not _arrow_csv().supports(kinds):
            return super().fetch_frame(conn, query, kinds)
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        raw = _driver(conn)
        buffer = io.BytesIO()
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY ({compiled}) TO STDOUT (FORMAT CSV)", compiled.params) as copy,
        ):
            for block in copy:
                buffer.write(block)
        try:
            return _arrow_csv().read_csv(buffer.getbuffer(), kinds)
        except pa.ArrowInvalid:
            # A value Arrow cannot parse exactly (`infinity`, a BC date): take the slow road.
            return super().fetch_frame(conn, query, kinds)

    def empty_staging(self, conn: sa.Connection, staging: sa.Table) -> None:
        # TRUNCATE, not DELETE: temporary tables are never vacuumed, and a reused staging table
        # would carry every earlier batch as dead rows through each merge's scan.
        preparer = conn.dialect.identifier_preparer
        conn.execute(sa.text(f"TRUNCATE {preparer.format_table(staging)}"))

    def bulk_insert(self, conn: sa.Connection, table: sa.Table, batch: pl.DataFrame) -> bool:
        """COPY as CSV straight into the table; the target's own types parse the text."""
        if not _arrow_csv().supports(_kinds(table, batch)):
            return False
        if batch.height:
            _copy_csv(conn, table, batch)
        return True

    def append(self, conn: sa.Connection, table: sa.Table, frame: pl.DataFrame) -> None:
        """COPY as CSV written by polars: no statement, and no Python object, per row."""
        if not _arrow_csv().supports(_kinds(table, frame)):
            super().append(conn, table, frame)
        elif frame.height:
            _copy_csv(conn, table, frame)

    def bulk_load(self, conn: sa.Connection, staging: sa.Table, batch: pl.DataFrame) -> None:
        """COPY into staging: CSV written by polars, or binary rows for types CSV cannot carry."""
        if batch.height == 0:
            return
        if _arrow_csv().supports(_kinds(staging, batch)):
            _copy_csv(conn, staging, batch)
            return
        preparer = conn.dialect.identifier_preparer
        names = ", ".join(preparer.quote(c) for c in batch.columns)
        # The column types are asked before the COPY starts: once it has, the connection
        # takes nothing but COPY data, and a query sent then waits for ever.
        oids = _type_oids(conn, staging, batch.columns)
        raw = _driver(conn)
        with (
            raw.cursor() as cur,
            cur.copy(
                f"COPY {preparer.format_table(staging)} ({names}) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(oids)
            for row in batch.iter_rows():
                copy.write_row(row)

    # --- reconciliation: canonical text, native hashes, segments, key lists ------------------

    def prepare_hashing(self, conn: sa.Connection) -> None:
        # JIT compilation of the long hashing expressions costs more than it saves here.
        conn.exec_driver_sql("SET jit = off")

    def value_text(self, column: Any, spec: ColumnSpec) -> Any:
        kind = spec.kind
        if kind.kind == "decimal":
            if kind.scale is None:
                return sa.cast(sa.func.trim_scale(column), sa.Text)
            if spec.own_scale != kind.scale:
                return sa.cast(sa.func.round(column, kind.scale), sa.Text)
            return sa.cast(column, sa.Text)
        if kind.kind == "float":
            # float4/float8 text is the shortest that reads back exactly (extra_float_digits
            # >= 1, set in `engine_options`); a 4-byte column compares as float32; -0 is 0.
            value = self.native_value(column, spec)
            return sa.case((value == 0, sa.literal("0")), else_=sa.cast(value, sa.Text))
        if kind.kind == "boolean":
            return sa.cast(sa.cast(column, sa.Integer), sa.Text)
        if kind.kind == "date":
            return sa.func.to_char(column, "YYYY-MM-DD")
        if kind.kind == "timestamp":
            value = sa.func.timezone("UTC", column) if spec.own_timezone else column
            if spec.precision in _TRUNC:
                value = sa.func.date_trunc(_TRUNC[spec.precision], value)
            # timestamp's text output is ISO with the fraction's trailing zeros dropped.
            return sa.cast(value, sa.Text)
        if kind.kind == "time":
            value = sa.cast(column, sa.Time)
            if spec.precision in _TRUNC:
                interval = sa.cast(column, pg.INTERVAL)
                value = sa.cast(sa.func.date_trunc(_TRUNC[spec.precision], interval), sa.Time)
            return sa.cast(value, sa.Text)
        if kind.kind == "json":
            return sa.cast(sa.cast(column, pg.JSONB), sa.Text)
        if kind.kind == "binary":
            return sa.func.encode(column, "hex")
        if kind.kind == "uuid":
            return sa.func.lower(sa.cast(column, sa.Text))
        return sa.cast(column, sa.Text)

    def text_length(self, text: Any) -> Any:
        return sa.func.length(text)

    def hash64(self, text: Any) -> Any:
        hex16 = sa.literal("x") + sa.func.substr(sa.func.md5(text), 1, 16)
        return sa.cast(sa.cast(hex16, pg.BIT(64)), sa.BigInteger)

    def native_hash64(self, text: Any) -> Any:
        # Cheaper than md5 plus the hex-to-bigint conversion; stable since PostgreSQL 11.
        return sa.func.hashtextextended(text, 0)

    def native_row_hash(
        self, server_version: int, columns: list[Any], specs: list[ColumnSpec]
    ) -> Any:
        """`hash_record_extended` (PostgreSQL 14+) over the values cast to one type per kind:
        each type's own hash function, no text conversion, far cheaper than md5 of text.
        Equal values of one type hash equally (numeric 1.5 = 1.50, -0.0 = 0.0, one instant in
        any zone), so the canonical rules hold without building text."""
        if server_version < 140000:
            return None
        values = [self.native_value(c, s) for c, s in zip(columns, specs)]
        return sa.func.hash_record_extended(sa.func.row(*values), 0)

    def native_value(self, column: Any, spec: ColumnSpec) -> Any:
        """A value cast to the one type its kind is hashed as."""
        kind = spec.kind
        if kind.kind == "integer":
            return sa.cast(column, sa.BigInteger)
        if kind.kind == "decimal":
            if kind.scale is not None and spec.own_scale != kind.scale:
                column = sa.func.round(column, kind.scale)
            return sa.cast(column, sa.Numeric)
        if kind.kind == "float":
            return sa.cast(column, sa.REAL if kind.single else sa.Float(53))
        if kind.kind == "boolean":
            return sa.cast(column, sa.Boolean)
        if kind.kind == "timestamp":
            value = column if spec.own_timezone else sa.func.timezone("UTC", column)
            if spec.precision in _TRUNC:
                value = sa.func.date_trunc(_TRUNC[spec.precision], value)
            return sa.cast(value, sa.DateTime(timezone=True))
        if kind.kind in ("text", "uuid", "time", "json"):
            # JSON as jsonb's text: jsonb's own hash is 0 for NULL and for every document
            # without a scalar ({}, [], [[]]), so those would all be equal.
            return self.value_text(column, spec)
        if kind.kind == "date":
            return sa.cast(column, sa.Date)
        if kind.kind == "binary":
            return sa.cast(column, sa.LargeBinary)
        return sa.cast(column, sa.Text)

    def server_version(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.text("SHOW server_version_num")).scalar() or 0)

    def estimated_rows(self, conn: sa.Connection, table: sa.Table) -> int | None:
        estimate = conn.execute(
            sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": conn.dialect.identifier_preparer.format_table(table)},
        ).scalar()
        return None if estimate is None else int(estimate)

    def sample(
        self, table: sa.Table, fraction: float, filtered: bool
    ) -> tuple[sa.FromClause, sa.ColumnElement[bool] | None]:
        """`TABLESAMPLE BERNOULLI` reads only the sampled pages' rows; a filtered query cannot
        sample before its WHERE, so it draws per row."""
        if filtered:
            return super().sample(table, fraction, filtered)
        return table.tablesample(sa.func.bernoulli(fraction * 100)), None

    def bucket_number(
        self, conn: sa.Connection, keys: Sequence[Any], boundaries: list[Key]
    ) -> sa.ColumnElement[Any]:
        """`width_bucket(key, boundaries)` binary-searches an array for a one-column key."""
        if len(keys) != 1:
            return super().bucket_number(conn, keys, boundaries)
        values = [b[0] for b in boundaries]
        array = sa.bindparam("pw_boundaries", values, type_=pg.ARRAY(keys[0].type))
        return sa.func.width_bucket(keys[0], array)

    def key_in(self, columns: Sequence[Any], keys: Sequence[Key]) -> sa.ColumnElement[bool]:
        """Many keys of one column as one array parameter."""
        if len(columns) == 1 and len(keys) > _KEYS_AS_ARRAY:
            array = sa.bindparam("pw_keys", [k[0] for k in keys], type_=pg.ARRAY(columns[0].type))
            return columns[0] == sa.any_(array)
        return super().key_in(columns, keys)


class ArrayOf(UserDefinedType[Any]):
    """`<element>[]`, the array type of a source column, named as the source names it."""

    cache_ok = True

    def __init__(self, element: str) -> None:
        self.element = element

    def get_col_spec(self, **kw: Any) -> str:
        return f"{self.element}[]"


def advisory_key(text: str) -> int:
    """A signed 64-bit advisory lock key for a name (a collision only serializes two runs)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


def _release(conn: sa.Connection, key: int) -> None:
    if conn.invalidated or conn.closed:
        return  # the session, and its lock, are gone
    try:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except sa.exc.DBAPIError:
        pass  # a broken session took its lock with it


def _millis(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _driver(conn: sa.Connection) -> Any:
    """The psycopg connection under a SQLAlchemy one (COPY is not in the DBAPI)."""
    raw = conn.connection.driver_connection
    assert raw is not None, "the SQLAlchemy connection is closed"
    return raw


def _arrow_csv() -> ModuleType:
    """Arrow and polars load with the first batch, not with the dialect: `pipewarden status`
    creates a PostgreSQL engine and should not wait for them."""
    from pipewarden.dialects import arrow_csv

    return arrow_csv


def _kinds(table: sa.Table, batch: pl.DataFrame) -> dict[str, ColumnKind]:
    return {c.name: kind_of(c.type) for c in table.columns if c.name in batch.columns}


def _copy_csv(conn: sa.Connection, table: sa.Table, batch: pl.DataFrame) -> None:
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in batch.columns)
    data = _arrow_csv().write_csv(batch)
    raw = _driver(conn)
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {preparer.format_table(table)} ({names}) FROM STDIN (FORMAT CSV)") as copy,
    ):
        for start in range(0, len(data), COPY_CHUNK):
            copy.write(data[start : start + COPY_CHUNK])


def _type_oids(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> list[int]:
    """The type OID of each column, in order, as the server has them."""
    preparer = conn.dialect.identifier_preparer
    rows = conn.execute(
        sa.text(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"table": preparer.format_table(table)},
    ).all()
    oids = {str(row[0]): int(str(row[1])) for row in rows}
    return [oids[c] for c in columns]
