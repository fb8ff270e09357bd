"""Restarting a series' training: after a backfill or a known change, the points before a chosen
instant no longer teach the detector what normal is.

`pipewarden baseline reset TABLE METRIC --since WHEN` records the instant as a metric point of
its own (`baseline_reset:<metric>`, its value the instant in seconds since the epoch, measured
when the reset was asked for), so no table of pipewarden's changes and the reset is kept with the
history it applies to. A check run reads the newest reset of every table and metric it judges
and drops the points before it; until enough new points exist the check waits for history.
A later reset replaces an earlier one (a reset to an earlier instant undoes one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from pipewarden.records.metrics import EpochSeries, MetricPoint, latest_values, write_metrics

PREFIX = "baseline_reset:"


def reset_baseline(
    engine: sa.Engine, table: str, metric: str, since: datetime, now: datetime | None = None
) -> MetricPoint:
    """Records that `metric` of `table` learns only from points at or after `since`."""
    now = now or datetime.now(UTC)
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    point = MetricPoint(now, table, PREFIX + metric, since.timestamp())
    with engine.begin() as conn:
        write_metrics(conn, [point])
    return point


@dataclass(frozen=True)
class Reset:
    """The newest reset of one table's metric: when it was asked for, and from when it learns."""

    recorded_at: datetime
    since_micros: int


def reset_instants(
    conn: sa.Connection, tables: Sequence[str], metrics: Sequence[str]
) -> dict[str, dict[str, Reset]]:
    """`{metric: {table: Reset}}`: the newest reset of each table's metric that has one."""
    out: dict[str, dict[str, Reset]] = {}
    for metric in metrics:
        found = latest_values(conn, PREFIX + metric, tables)
        if found:
            out[metric] = {
                name: Reset(at, int(round(value * 1e6))) for name, (at, value) in found.items()
            }
    return out


def since_reset(series: EpochSeries, start: int | None) -> EpochSeries:
    """The points of a series at or after a reset's instant (all of them without one)."""
    if start is None:
        return series
    micros, values = series
    first = int(np.searchsorted(micros, start, side="left"))
    return micros[first:], values[first:]
