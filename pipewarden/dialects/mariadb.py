"""MariaDB / MySQL: a source (and a merge target for completeness). DATETIME has no time zone."""

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

from pipewarden.config.timeouts import DEFAULT_TIMEOUTS, TimeoutKind, Timeouts
from pipewarden.dialects.base import Dialect, Unreadable, _generic_type
from pipewarden.dialects.kinds import ColumnKind


class MariaDB(Dialect):
    name = "mariadb"
    # MariaDB does not use an index for `(a, b) > (x, y)`; the expanded OR form it does.
    row_value_keyset = False
    warehouse = False

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
