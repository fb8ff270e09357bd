"""MariaDB / MySQL canonical SQL fragments (session time zone is UTC: see the dialect).

MariaDB has no JSON function that sorts keys, and its float-to-text conversion differs from the
other engines', so JSON columns, and float columns compared with another engine, are canonicalized
in Python (`json_family = None`, `float_in_sql = False`).
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from pipewarden.reconcile.canonical import Canonical, ColumnSpec


class MariaDBCanonical(Canonical):
    name = "mariadb"
    json_family = None
    float_in_sql = False
    # NO PAD: trailing spaces count, as in the other engines; text keys then cannot use the
    # column's (case-insensitive) index for ranges.
    binary_collation = "utf8mb4_nopad_bin"
    # MariaDB runs a query on one core: two key-range halves on two connections use two.
    scan_slices = 2

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
