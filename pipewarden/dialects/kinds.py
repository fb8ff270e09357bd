"""What a column holds, independent of any database: the common ground between dialects.

Every dialect maps its own types to a `ColumnKind` (reading a source) and a `ColumnKind` back to
its own type (creating a warehouse table); batches, hashing and checks speak only of kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from sqlalchemy.types import TypeEngine

if TYPE_CHECKING:
    import polars as pl

Kind = Literal[
    "integer",
    "decimal",
    "float",
    "text",
    "boolean",
    "date",
    "timestamp",
    "time",
    "json",
    "binary",
    "uuid",
    "interval",
    "array",
]


#: `ColumnKind("float", precision=SINGLE)`: a 4-byte float (PostgreSQL `real`, MariaDB `FLOAT`);
#: precision None is an 8-byte double.
SINGLE = 24


@dataclass(frozen=True)
class ColumnKind:
    """The portable description of one column's values."""

    kind: Kind
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    timezone: bool = False
    #: An array's element type as PostgreSQL names it (`INTEGER`, `TEXT`, `VARCHAR(20)`).
    element: str | None = None

    @property
    def single(self) -> bool:
        """A 4-byte float: its values are compared, and stored where possible, as float32."""
        return self.kind == "float" and self.precision == SINGLE

    def polars_dtype(self) -> pl.DataType:
        """The batch column type; decimals stay decimals so no value passes through float."""
        import polars as pl

        if self.kind == "integer":
            return pl.Int64()
        if self.kind == "decimal":
            if self.scale is None:
                return pl.String()  # unconstrained numeric: its text is the only exact form
            return pl.Decimal(self.precision or 38, self.scale)
        if self.kind == "float":
            return pl.Float64()
        if self.kind == "boolean":
            return pl.Boolean()
        if self.kind == "date":
            return pl.Date()
        if self.kind == "timestamp":
            return pl.Datetime("us", "UTC")
        if self.kind == "time":
            # A time with its UTC offset (timetz) has no polars type: its text is exact.
            return pl.String() if self.timezone else pl.Time()
        if self.kind == "binary":
            return pl.Binary()
        return pl.String()


def kind_of(type_: TypeEngine[object]) -> ColumnKind:
    """Classify a reflected SQLAlchemy type; unknown types are carried as text."""
    name = type(type_).__name__.upper()
    if isinstance(type_, sa.ARRAY):
        from sqlalchemy.dialects import postgresql

        return ColumnKind("array", element=type_.item_type.compile(dialect=postgresql.dialect()))
    if name == "INTERVAL" or isinstance(type_, sa.Interval):
        return ColumnKind("interval")
    if name in ("JSON", "JSONB"):
        return ColumnKind("json")
    if name == "UUID" or isinstance(type_, sa.Uuid):
        return ColumnKind("uuid")
    if isinstance(type_, sa.Boolean) or name in ("BOOL", "BOOLEAN"):
        return ColumnKind("boolean")
    if isinstance(type_, sa.Integer):
        return ColumnKind("integer")
    if isinstance(type_, sa.Float) or name in ("REAL", "DOUBLE", "DOUBLE_PRECISION", "FLOAT"):
        # PostgreSQL `real` and MariaDB `FLOAT` hold 4-byte floats (SQLite: see its dialect).
        single = isinstance(type_, (sa.REAL, sa.FLOAT)) and not isinstance(type_, sa.Double)
        return ColumnKind("float", precision=SINGLE if single else None)
    if isinstance(type_, sa.Numeric):
        return ColumnKind("decimal", precision=type_.precision, scale=type_.scale)
    if isinstance(type_, sa.DateTime):
        return ColumnKind("timestamp", timezone=bool(getattr(type_, "timezone", False)))
    if isinstance(type_, sa.Date):
        return ColumnKind("date")
    if isinstance(type_, sa.Time):
        return ColumnKind("time", timezone=bool(getattr(type_, "timezone", False)))
    if isinstance(type_, (sa.LargeBinary, sa.types._Binary)):
        return ColumnKind("binary")
    if isinstance(type_, sa.String):
        return ColumnKind("text", length=type_.length)
    return ColumnKind("text")


def compatible(source: ColumnKind, target: ColumnKind) -> bool:
    """Can values of `source` load into a column of `target` without loss or surprise?"""
    if source.kind == target.kind:
        if source.kind == "decimal" and source.scale is not None and target.scale is not None:
            return source.scale <= target.scale
        return True
    widenings = {
        ("integer", "decimal"),
        ("integer", "float"),
        ("uuid", "text"),
        ("json", "text"),
        ("boolean", "integer"),
        # Tables created before intervals and arrays had kinds of their own hold their text.
        ("interval", "text"),
        ("array", "text"),
    }
    return (source.kind, target.kind) in widenings
