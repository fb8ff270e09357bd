"""Column types that keep values exact in SQLite, which has no decimal or time zone types."""

import math
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

_WIDE = Context(prec=100)


class DecimalText(TypeDecorator[Decimal]):
    """A decimal kept as its exact text; SQLite's NUMERIC affinity would turn it into a float."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, scale: int | None = None) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        number = Decimal(str(value))
        if self.scale is not None:
            number = number.quantize(Decimal(1).scaleb(-self.scale), context=_WIDE)
        return format(number, "f")

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(str(value))


class ExactFloat(TypeDecorator[float]):
    """A double that keeps NaN. SQLite stores a bound NaN as NULL; the text `NaN` it keeps as
    text (REAL affinity converts only well-formed numbers), and reading turns it back into NaN.
    Infinities, -0.0 and subnormals are stored as the doubles they are."""

    impl = sa.Float
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> float | str | None:
        if value is None:
            return None
        number = float(value)
        return "NaN" if math.isnan(number) else number

    def bind_processor(self, dialect: Any) -> Any:
        # Not composed with the Float's own processor, which would turn `NaN` back into NaN.
        return lambda value: self.process_bind_param(value, dialect)

    def process_result_value(self, value: Any, dialect: Any) -> float | None:
        return None if value is None else float(value)


class UtcDateTime(TypeDecorator[datetime]):
    """An instant stored as UTC text `YYYY-MM-DD HH:MM:SS.ffffff`, read back time-zone aware."""

    impl = sa.String(26)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        # Not strftime: its %Y writes the year 188 as `188`, which no reader parses back.
        return value.isoformat(sep=" ", timespec="microseconds")

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
