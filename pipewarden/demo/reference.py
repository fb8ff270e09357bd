"""A day of column samples for the demo's seeded syncs, so the drift monitors have a reference.

The seeded metric history (`demo.history`) has no rows behind it. After the first, full sync the
warehouse holds the real rows, and that load's samples (what the sync's gate let through,
profiled by the sync's own code) are redrawn as the samples of the last day of seeded hourly
syncs: each run's size from its table's hourly volume, its nulls binomial, its numbers and
categories drawn from the full load's. The demo's delta is then judged against that past.
"""

from datetime import UTC, datetime, timedelta

import numpy as np

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.demo.history import DEFAULT_SHAPE, SHAPES, sync_times
from pipewarden.measurements.sync_metrics import NEWEST_CURSOR
from pipewarden.records.column_samples import (
    FULL,
    SAMPLE_SIZE,
    ColumnSample,
    read_samples,
    write_samples,
)
from pipewarden.records.metrics import latest_values

RUNS = 24


def seed_reference(
    warehouse_url: str, config: PipewardenConfig, now: datetime, rng: np.random.Generator
) -> int:
    """Write the seeded runs' samples of every table with a full load; returns rows written."""
    engine = cached_engine(warehouse_url)
    names = list(config.tables)
    with engine.connect() as conn:
        full = read_samples(conn, names, load=FULL)
        newest = latest_values(conn, NEWEST_CURSOR, names)
    samples: list[ColumnSample] = []
    for name in names:
        if name not in full:
            continue
        shape = SHAPES.get(name, DEFAULT_SHAPE)
        last = datetime.fromtimestamp(newest[name][1], UTC) if name in newest else now
        # A source that stopped sending had empty syncs since: those left no samples.
        times = [t for t in sync_times(now) if t - timedelta(hours=1) <= last][-RUNS:]
        for i, at in enumerate(times):
            rows = max(1, int(rng.poisson(shape.rows_per_hour)))
            samples += [_redrawn(s, at, f"demo-seed-{name}-{i}", rows, rng) for s in full[name]]
    with engine.begin() as conn:
        return write_samples(conn, samples)


def _redrawn(
    full: ColumnSample, at: datetime, run_id: str, rows: int, rng: np.random.Generator
) -> ColumnSample:
    nulls = int(rng.binomial(rows, full.nulls / full.rows)) if full.rows else 0
    present = rows - nulls
    values = counts = None
    if full.values is not None and len(full.values):
        values = rng.choice(full.values, min(present, SAMPLE_SIZE))
    if full.counts:
        keys = sorted(full.counts)
        shares = np.array([full.counts[k] for k in keys], dtype=np.float64)
        drawn = rng.multinomial(present, shares / shares.sum())
        counts = {k: int(n) for k, n in zip(keys, drawn, strict=True) if n}
    return ColumnSample(
        measured_at=at,
        table_name=full.table_name,
        run_id=run_id,
        column=full.column,
        rows=rows,
        nulls=nulls,
        values=values,
        counts=counts,
    )
