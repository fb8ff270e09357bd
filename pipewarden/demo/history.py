"""Four weeks of plausible sync metrics for the demo, so that its first checks have a past.

A real deployment learns from its own runs; the demo has none. `seed_history` writes, for every
demo table, one sync an hour (at minute 7, as the hourly deployment runs) over the last 28 days:
rows read, loaded, unchanged and quarantined, rows by cursor hour, duration, latency p50/p95/max
and freshness. Column samples of the last day of those syncs come from `demo.reference`.

The shapes are those of the sources the demo simulates:

* customers (a CRM): about 100 changed rows an hour with a mild working-day rhythm;
* orders (a shop): about 8 orders an hour, busy in the evening, quiet at night, more at weekends;
* events (web analytics): a few hundred events an hour with a strong daily cycle.

Counts are negative binomial (overdispersed, as real volumes are), latency and freshness
log-normal, both cut short of their tails (so the seeded past holds no outlier by chance). The
demo's next delta then looks like this against its past: customers' 100 changed rows are
ordinary; orders' 200 new orders in half an hour are a burst far above any hour of the last
four weeks (the anomaly the checks catch); events, whose source stopped sending, are stale
(`seed_history` reads each source's newest cursor and continues the history from that moment
with empty syncs and a growing age), and their cursor hours since are empty. Nothing else in the
seeded past stands out.
"""

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from scipy import stats

from pipewarden.config import PipewardenConfig, TableConfig
from pipewarden.db.engines import cached_engine
from pipewarden.measurements.sync_metrics import cursor_instant
from pipewarden.records.metrics import MetricPoint, metrics, write_metrics
from pipewarden.records.migrate import ensure_tables

DAYS = 28


@dataclass(frozen=True)
class Shape:
    """How a table's hourly syncs look: volume and its rhythm, latency, freshness."""

    rows_per_hour: float
    daily_swing: float  # relative amplitude of the daily cycle
    peak_hour: int  # UTC hour of the daily peak
    weekend: float  # volume factor on Saturdays and Sundays
    dispersion: float  # negative binomial size: smaller is burstier
    # Seconds, median of the p95 over runs: an hourly sync loads rows up to an hour old, and
    # its lookback re-reads a few older ones.
    latency_p95: float
    freshness: float  # seconds, median age of the newest row at the end of a sync
    quarantine_rate: float


SHAPES = {
    "customers": Shape(100, 0.15, 14, 0.9, 40, 3300, 150, 0.04),
    "orders": Shape(8, 0.6, 19, 1.15, 15, 2000, 90, 0.05),
    "events": Shape(300, 0.7, 20, 0.85, 25, 400, 60, 0.01),
}
DEFAULT_SHAPE = Shape(50, 0.4, 14, 0.9, 20, 900, 120, 0.01)


def seed_history(
    warehouse_url: str, config: PipewardenConfig, now: datetime, rng: random.Random
) -> int:
    """Write the history of every configured table that has none yet; returns points written.

    Call it after the sources exist and before the first sync: a source's newest cursor tells
    whether (and since when) it stopped sending.
    """
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    generator = np.random.default_rng(rng.getrandbits(64))
    now = now.astimezone(UTC)
    written = 0
    for name, table in config.tables.items():
        with engine.connect() as conn:
            has_history = conn.execute(
                sa.select(metrics.c.id).where(metrics.c.table_name == name).limit(1)
            ).first()
        if has_history:
            continue
        stopped = _stopped_at(config, table, now)
        points = table_history(name, SHAPES.get(name, DEFAULT_SHAPE), now, generator, stopped)
        with engine.begin() as conn:
            written += write_metrics(conn, points)
    return written


def sync_times(now: datetime, days: int = DAYS) -> list[datetime]:
    """One sync an hour at minute 7, the newest at least ten minutes before `now`."""
    last = now.replace(minute=7, second=0, microsecond=0)
    if last > now - timedelta(minutes=10):
        last -= timedelta(hours=1)
    return [last - timedelta(hours=h) for h in range(days * 24 - 1, -1, -1)]


def table_history(
    name: str,
    shape: Shape,
    now: datetime,
    rng: np.random.Generator,
    stopped: datetime | None = None,
) -> list[MetricPoint]:
    """The points of one table's seeded syncs (see the module docstring)."""
    points: list[MetricPoint] = []
    for at in sync_times(now):
        at = at + timedelta(seconds=float(rng.uniform(5, 40)))  # runs take a moment to finish
        duration = _lognormal(rng, 1.5, 0.3)
        values: dict[str, float] = {"duration_seconds": duration, "sync_succeeded": 1.0}
        if stopped is not None and at > stopped:
            # The source sends nothing: syncs succeed, load nothing, and the data ages.
            values.update(rows_read=0.0, rows_loaded=0.0, rows_unchanged=0.0)
            values.update(rows_quarantined=0.0)
            values["freshness_seconds"] = (at - stopped).total_seconds()
        else:
            mean = shape.rows_per_hour * _rhythm(shape, at)
            loaded = _count(rng, mean, shape.dispersion)
            unchanged = float(rng.poisson(0.05 * mean))  # the lookback re-reads a few rows
            held = float(rng.binomial(int(loaded), shape.quarantine_rate))
            values.update(
                rows_read=loaded + unchanged + held,
                rows_loaded=loaded,
                rows_unchanged=unchanged,
                rows_quarantined=held,
                freshness_seconds=_lognormal(rng, shape.freshness, 0.2),
            )
            if loaded + unchanged:
                p95 = _lognormal(rng, shape.latency_p95, 0.25)
                values.update(
                    latency_p50_seconds=p95 * float(rng.uniform(0.35, 0.55)),
                    latency_p95_seconds=p95,
                    latency_max_seconds=p95 * float(rng.uniform(1.1, 1.8)),
                )
        points += [MetricPoint(at, name, metric, v) for metric, v in values.items()]
        # What the hourly sync loaded changed in the hour before it, by cursor time; the hour
        # in which the source stopped still had its rows.
        hour = at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        rows = values["rows_loaded"]
        if stopped is not None and not rows and hour < stopped:
            rows = round(shape.rows_per_hour * _rhythm(shape, hour))
        if rows:
            points.append(MetricPoint(hour, name, "rows_by_cursor_hour", rows))
    # The hour before now is complete by the demo's delta, yet no seeded sync ran after it: its
    # rows until the source went quiet are the seeded past's, as for every hour before.
    last = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    if sync_times(now)[-1] < last + timedelta(hours=1) and (stopped is None or last < stopped):
        rows = round(shape.rows_per_hour * _rhythm(shape, last))
        points.append(MetricPoint(last, name, "rows_by_cursor_hour", rows))
    return points


def _count(rng: np.random.Generator, mean: float, size: float) -> float:
    """A negative binomial count kept within its 2%-98% range, for the same reason."""
    p = size / (size + mean)
    low, high = stats.nbinom.ppf([0.02, 0.98], size, p)
    return float(np.clip(rng.negative_binomial(size, p), low, high))


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    """Log-normal noise cut at 2 sigma: plausible spread, and no outlier the seed invented."""
    return median * math.exp(sigma * float(np.clip(rng.standard_normal(), -2.0, 2.0)))


def _rhythm(shape: Shape, at: datetime) -> float:
    """Volume factor of the hour: a daily cosine around the peak hour, and the weekend."""
    daily = 1 + shape.daily_swing * math.cos(2 * math.pi * (at.hour - shape.peak_hour) / 24)
    return daily * (shape.weekend if at.weekday() >= 5 else 1.0)


def _stopped_at(config: PipewardenConfig, table: TableConfig, now: datetime) -> datetime | None:
    """When the source's newest row was written, if that is more than an hour ago."""
    source = sa.table(table.source_table, schema=table.source_schema)
    query: sa.Select[Any] = sa.select(sa.func.max(sa.column(table.cursor)))
    query = query.select_from(source)
    try:
        engine = sa.create_engine(config.sources[table.source].url)
        with engine.connect() as conn:
            newest = cursor_instant(conn.execute(query).scalar())
        engine.dispose()
    except sa.exc.SQLAlchemyError:
        return None
    if newest is None or now - newest < timedelta(hours=1):
        return None
    return newest
