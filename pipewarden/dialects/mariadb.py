"""MariaDB / MySQL: a source (and a merge target for completeness). DATETIME has no time zone.

The session time zone is UTC (`engine_options`), which the canonical timestamps rely on. MariaDB
has no JSON function that sorts keys, and its float-to-text conversion differs from the other
engines', so JSON columns, and float columns compared with another engine, are canonicalized in
Python (`json_family = None`, `float_in_sql = False`).
"""

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

from pipewarden.config.timeouts import DEFAULT_TIMEOUTS, TimeoutKind, Timeouts
from pipewarden.dialects.base import Dialect, Unreadable, _generic_type
from pipewarden.dialects.canonical import ColumnSpec
from pipewarden.dialects.keyset import Key
from pipewarden.dialects.kinds import ColumnKind


class MariaDB(Dialect):
    name = "mariadb"
    # MariaDB does not use an index for `(a, b) > (x, y)`; the expanded OR form it does.
    row_value_keyset = False
    warehouse = False
    reconciles = True
    json_family = None
    float_in_sql = False
    # NO PAD: trailing spaces count, as in the other engines; text keys then cannot use the
    # column's (case-insensitive) index for ranges.
    binary_collation = "utf8mb4_nopad_bin"
    # MariaDB runs a query on one core: two key-range halves on two connections use two.
    scan_slices = 2

    def engine_options(self, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> dict[str, Any]:
        lock = max(1, math.ceil(timeouts.lock))
        # max_statement_time is MariaDB's: inside `/*M! … */`, which MySQL reads as a comment
        # (there the socket's read timeout below is the statement's limit).
        session = (
            "SET time_zone = '+00:00', "
            f"SESSION lock_wait_timeout = {lock}, SESSION innodb_lock_wait_timeout = {lock}"
            f" /*M!100108 , SESSION max_statement_time = {timeouts.statement:g} */"
        )
        # The socket's own limits back the server's: a server that stops answering is left.
        network = math.ceil(max(timeouts.statement, timeouts.lock)) + 30
        return {
            "pool_pre_ping": True,
            "connect_args": {
                "init_command": session,
                "connect_timeout": max(1, math.ceil(timeouts.connect)),
                "read_timeout": network,
                "write_timeout": network,
            },
        }

    def timeout_kind(self, error: BaseException) -> TimeoutKind | None:
        args = getattr(getattr(error, "orig", error), "args", ())
        code = args[0] if args else None
        if code == 1205:  # ER_LOCK_WAIT_TIMEOUT
            return "lock"
        if code == 1969:  # ER_STATEMENT_TIMEOUT (max_statement_time)
            return "statement"
        return None

    def fraction_digits(self, type_: TypeEngine[Any]) -> int:
        """`DATETIME(fsp)`; plain `DATETIME` keeps whole seconds."""
        return int(getattr(type_, "fsp", None) or 0)

    def read_expression(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Any:
        # SQLAlchemy's MySQL DOUBLE/FLOAT default to asdecimal=True and round to 10 places
        # (-1.5e-10 arrives as -1E-10): read floats as the driver's exact Python float.
        if kind.kind == "float":
            # FLOAT is sent as text of 6 significant digits (16777216 as 16777200); as a DOUBLE
            # (`+ 0e0`: CAST AS DOUBLE is not in every version) it arrives exact.
            value = column + sa.literal_column("0e0") if kind.single else column
            return sa.type_coerce(value, sa.Float(asdecimal=False)).label(column.key)
        if isinstance(column.type, (mysql.YEAR, mysql.SET)):
            # As their text (`2024`, `a,b`): SQLAlchemy would give an int and a Python set.
            return sa.cast(column, sa.CHAR).label(column.key)
        return super().read_expression(column, kind)

    def unreadable(self, column: sa.ColumnElement[Any], kind: ColumnKind) -> Unreadable | None:
        """`0000-00-00`, a zero month or day, or year 0: a permissive `sql_mode` stores them,
        the driver hands them over as text, and no date holds them."""
        if kind.kind not in ("date", "timestamp"):
            return None
        invalid = sa.or_(
            *(part(column) == 0 for part in (sa.func.year, sa.func.month, sa.func.dayofmonth)),
            sa.func.last_day(column).is_(None),
        )
        return Unreadable(
            sa.and_(column.is_not(None), invalid),
            sa.cast(column, sa.String),
            "unreadable.invalid_date",
        )

    def kind_of(self, type_: TypeEngine[Any]) -> ColumnKind:
        if isinstance(type_, (mysql.YEAR, mysql.SET)):  # a SET's text is longer than a member
            return ColumnKind("text")
        return super().kind_of(type_)

    def table_kinds(self, conn: sa.Connection, table: sa.Table) -> dict[str, ColumnKind]:
        """MariaDB's JSON is LONGTEXT with a `json_valid` check: SQLAlchemy reflects text, the
        check says JSON."""
        json_columns = _json_checked_columns(conn, table.name)
        kinds = super().table_kinds(conn, table)
        return {n: ColumnKind("json") if n in json_columns else k for n, k in kinds.items()}

    def refusal(self, type_: TypeEngine[Any]) -> str | None:
        if isinstance(type_, mysql.BIT):
            return (
                "MariaDB sends BIT values as raw bytes; read the table through a view with "
                "CAST(column AS UNSIGNED)"
            )
        if isinstance(type_, sa.types.NullType):
            return (
                "pipewarden does not know its type (geometry, INET6, a plugin's type), so it "
                "cannot promise its values arrive exactly; read the table through a view that "
                "casts the column (ST_AsText(column), CAST(column AS CHAR))"
            )
        return super().refusal(type_)

    def column_type(self, kind: ColumnKind) -> TypeEngine[Any]:
        if kind.kind == "timestamp":
            return mysql.DATETIME(fsp=6)
        if kind.kind == "text":
            return sa.String(kind.length) if kind.length else sa.Text()
        if kind.kind == "json":
            return sa.JSON()
        if kind.kind == "uuid":
            return sa.String(36)
        return _generic_type(kind)

    def merge(
        self,
        target: sa.Table,
        staging: sa.Table,
        key: Sequence[str],
        cursor: str | None,
        columns: Sequence[str],
    ) -> sa.Executable:
        select = sa.select(*(staging.c[c] for c in columns))
        stmt = mysql.insert(target).from_select(list(columns), select)
        updates = [c for c in columns if c not in key]
        newer = sa.true() if cursor is None else target.c[cursor] <= stmt.inserted[cursor]
        # Assignments run left to right and see earlier ones: the cursor column goes last.
        ordered = [c for c in updates if c != cursor] + ([cursor] if cursor in updates else [])
        return stmt.on_duplicate_key_update(
            [(c, sa.func.IF(newer, stmt.inserted[c], target.c[c])) for c in ordered]
        )

    # --- reconciliation: canonical text, segments --------------------------------------------

    def canonical_fraction_digits(self, type_: TypeEngine[Any]) -> int:
        return self.fraction_digits(type_)

    def value_text(self, column: Any, spec: ColumnSpec) -> Any:
        kind = spec.kind
        if kind.kind == "decimal":
            if kind.scale is not None and spec.own_scale != kind.scale:
                column = sa.func.round(column, kind.scale)
            return sa.cast(column, sa.CHAR)
        if kind.kind == "boolean":
            return sa.case((column != 0, "1"), (column == 0, "0"))
        if kind.kind == "date":
            return sa.func.date_format(column, "%Y-%m-%d")
        if kind.kind == "timestamp":
            if spec.precision <= 0:
                return sa.func.date_format(column, "%Y-%m-%d %H:%i:%s")
            text = sa.func.date_format(column, "%Y-%m-%d %H:%i:%s.%f")
            return trim_fraction(sa.func.substring(text, 1, 20 + spec.precision))
        if kind.kind == "time":
            if spec.precision <= 0:
                return sa.func.time_format(column, "%H:%i:%s")
            text = sa.func.time_format(column, "%H:%i:%s.%f")
            return trim_fraction(sa.func.substring(text, 1, 9 + spec.precision))
        if kind.kind == "binary":
            return sa.func.lower(sa.func.hex(column))
        if kind.kind == "uuid":
            return sa.func.lower(column)
        if kind.kind == "text":  # YEAR is a number to `+`, which would add instead of concatenate
            return column if isinstance(column.type, sa.String) else sa.cast(column, sa.CHAR)
        return sa.cast(column, sa.CHAR)

    def concat(self, parts: list[Any]) -> Any:
        return sa.func.concat(*parts)

    def hash64(self, text: Any) -> Any:
        hex16 = sa.func.substring(sa.func.md5(utf8(text)), 1, 16)
        return sa.cast(sa.func.conv(hex16, 16, 10), mysql.INTEGER(unsigned=True))

    def estimated_rows(self, conn: sa.Connection, table: sa.Table) -> int | None:
        estimate = conn.execute(
            sa.text(
                "SELECT table_rows FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = :t"
            ),
            {"t": table.name},
        ).scalar()
        return None if estimate is None else int(estimate)

    def random_order(self) -> sa.ColumnElement[Any]:
        return sa.func.rand()

    def bucket_number(
        self, conn: sa.Connection, keys: Sequence[Any], boundaries: list[Key]
    ) -> sa.ColumnElement[Any]:
        """`INTERVAL(k, b1, b2, …)` binary-searches a constant list of integers: MariaDB's
        `width_bucket`, for a one-column integer key."""
        if len(keys) != 1 or not _integers(boundaries):
            return super().bucket_number(conn, keys, boundaries)
        return sa.func.interval(keys[0], *(sa.literal_column(str(int(b[0]))) for b in boundaries))


def _json_checked_columns(conn: sa.Connection, table: str) -> set[str]:
    """Columns with a `json_valid(column)` check: the columns MariaDB declares as JSON."""
    clauses: list[Any] = list(
        conn.execute(
            sa.text(
                "SELECT check_clause FROM information_schema.check_constraints "
                "WHERE constraint_schema = DATABASE() AND table_name = :t"
            ),
            {"t": table},
        ).scalars()
    )
    columns: set[str] = set()
    for clause in clauses:
        text = str(clause).strip()
        if text.lower().startswith("json_valid(") and text.endswith(")"):
            columns.add(text[len("json_valid(") : -1].strip("`"))
    return columns


def _integers(boundaries: list[Key]) -> bool:
    return all(isinstance(b[0], int) and not isinstance(b[0], bool) for b in boundaries)


class trim_fraction(FunctionElement[str]):  # noqa: N801 - reads as the SQL function it renders
    """`12:00:00.500000` → `12:00:00.5`, `12:00:00.000000` → `12:00:00` (fractions only)."""

    type = sa.Text()
    inherit_cache = True
    name = "trim_fraction"


class utf8(FunctionElement[str]):  # noqa: N801
    """`CONVERT(x USING utf8mb4)`: md5 hashes UTF-8 bytes whatever the columns' character sets."""

    type = sa.Text()
    inherit_cache = True
    name = "utf8"


@compiles(trim_fraction)
def _trim_fraction(element: trim_fraction, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(list(element.clauses)[0], **kw)
    return f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {inner}))"


@compiles(utf8)
def _utf8(element: utf8, compiler: Any, **kw: Any) -> str:
    return f"CONVERT({compiler.process(list(element.clauses)[0], **kw)} USING utf8mb4)"
