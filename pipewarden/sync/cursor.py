"""What a table's cursor allows: the lookback its type takes, and where a delta starts reading.

A cursor's values come in ticks: whole seconds in a MariaDB `DATETIME`, microseconds in a
PostgreSQL `timestamp`, one in an integer. Two changes of a row within one tick carry the same
cursor value, so a run that resumed strictly after the watermark would never see the second:
every run re-reads at least the watermark's own tick, whatever the lookback says, and the window
starts on a tick boundary (a capped watermark, the run's start, falls between ticks).
"""

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipewarden.config import TableConfig
from pipewarden.dialects.kinds import ColumnKind

Lookback = timedelta | int
Tick = timedelta | int | None

#: Kinds whose values are instants or days: they look back by a duration.
TIME_KINDS = ("timestamp", "date")
#: Kinds whose values are numbers: they look back by a count of cursor values.
NUMBER_KINDS = ("integer", "decimal", "float")
#: The lookback of a time cursor when the configuration gives none (late commits, clock skew).
DEFAULT_TIME_LOOKBACK = timedelta(seconds=1)


def lookback_problem(table: TableConfig, cursor_kind: ColumnKind) -> str | None:
    """Why `table.lookback` cannot apply to its cursor's type, or None when it can."""
    lookback = table.lookback
    if lookback is None or _is_zero(lookback):
        return None
    where = f"tables.{table.name}.lookback"
    article = "an" if cursor_kind.kind[0] in "aeiou" else "a"
    column = f"cursor {table.cursor!r} is {article} {cursor_kind.kind} column in the source"
    if cursor_kind.kind in TIME_KINDS and not isinstance(lookback, timedelta):
        return (
            f"{where}: {lookback} is a count of cursor values, but {column}: write a duration "
            f"such as {lookback}s or {lookback}m"
        )
    if cursor_kind.kind in NUMBER_KINDS and isinstance(lookback, timedelta):
        return (
            f"{where}: {_duration(lookback)} is a duration, but {column}: write how many cursor "
            "values to re-read, such as 100"
        )
    if cursor_kind.kind not in TIME_KINDS + NUMBER_KINDS:
        return (
            f"{where}: {column}, and nothing can be subtracted from it: set lookback: 0 (each "
            "run still re-reads the rows at the watermark's own value)"
        )
    return None


def effective_lookback(lookback: Lookback | None, cursor_kind: ColumnKind) -> Lookback:
    """The configured lookback, or the default of the cursor's type."""
    if lookback is not None:
        return lookback
    return DEFAULT_TIME_LOOKBACK if cursor_kind.kind in TIME_KINDS else 0


def read_from(watermark: Any, lookback: Lookback, tick: Tick) -> Any:
    """The first cursor value a delta reads: `watermark − lookback`, down to its tick's start.

    The watermark's own value is always included: a row changed again within its tick is
    re-read, and the merge tells by content whether it changed.
    """
    if watermark is None:
        return None
    if isinstance(watermark, datetime):
        start = watermark - lookback if isinstance(lookback, timedelta) else watermark
        return _floor(start, tick) if isinstance(tick, timedelta) else start
    if isinstance(watermark, date):
        days = lookback / timedelta(days=1) if isinstance(lookback, timedelta) else 0
        return watermark - timedelta(days=math.ceil(days))
    if isinstance(lookback, int) and isinstance(watermark, (int, float, Decimal)):
        return watermark - lookback
    return watermark


def _floor(moment: datetime, tick: timedelta) -> datetime:
    """The start of the tick holding `moment` (ticks of whole microseconds up to a second)."""
    micros = tick // timedelta(microseconds=1)
    if micros <= 1:
        return moment
    if micros >= 1_000_000:
        return moment.replace(microsecond=0)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % micros)


def _is_zero(lookback: Lookback) -> bool:
    return lookback == timedelta(0) if isinstance(lookback, timedelta) else lookback == 0


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds:g}s" if seconds < 60 or seconds % 60 else f"{seconds / 60:g}m"
