"""The metrics of one sync run, written right after it: volume, latency, freshness, profiles."""

from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.config import TableConfig
from pipewarden.config.pii import looks_like_pii, pii_columns
from pipewarden.measurements.cursor import NEWEST_CURSOR, cursor_instant
from pipewarden.measurements.profiles import ProfileAccumulator
from pipewarden.records.column_samples import DELTA, FULL, ColumnSample, write_samples
from pipewarden.records.metrics import MetricPoint, latest_values, write_metrics
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.pii_salt import redactor
from pipewarden.records.sync_runs import SyncRun
from pipewarden.records.values import utc


def run_points(
    run: SyncRun, newest_loaded: datetime | None, measured_at: datetime
) -> list[MetricPoint]:
    """The run-level points; `newest_loaded` is the newest cursor instant loaded so far."""
    name = run.table_name
    values: dict[str, float | None] = {
        "rows_read": run.rows_read,
        "rows_loaded": run.rows_loaded,
        "rows_unchanged": run.rows_unchanged,
        "rows_quarantined": run.rows_quarantined,
        "duration_seconds": run.duration_seconds,
        "latency_p50_seconds": run.latency_p50_seconds,
        "latency_p95_seconds": run.latency_p95_seconds,
        "latency_max_seconds": run.latency_max_seconds,
        "sync_succeeded": 1.0 if run.status == "success" else 0.0,
    }
    if newest_loaded is not None:
        # A source clock ahead of ours must not show as negative age.
        values["freshness_seconds"] = max(0.0, (measured_at - newest_loaded).total_seconds())
        values[NEWEST_CURSOR] = newest_loaded.timestamp()
    labels = {"load": "full"} if run.full_refresh or run.old_watermark is None else None
    return [
        MetricPoint(measured_at, name, metric, float(v), labels)
        for metric, v in values.items()
        if v is not None
    ]


def record_sync_metrics(
    engine: sa.Engine,
    run: SyncRun,
    table_config: TableConfig,
    profiles: ProfileAccumulator | None = None,
) -> int:
    """Write the run's metrics; returns the points written.

    Freshness is now minus the newest cursor value ever loaded: this run's newest row (from the
    profiles, which saw the loaded rows, else the run's watermark) or, when the run loaded
    nothing new, the newest one of earlier runs; so a source that stops ages visibly.
    """
    ensure_tables(engine)
    with engine.begin() as conn:
        return write_sync_metrics(conn, run, table_config, profiles)


def write_sync_metrics(
    conn: sa.Connection,
    run: SyncRun,
    table_config: TableConfig,
    profiles: ProfileAccumulator | None = None,
) -> int:
    """`record_sync_metrics` in the caller's transaction (the sync writes them with its outcome)."""
    measured_at = utc(run.finished_at or datetime.now(UTC))
    this_run = cursor_instant(profiles.newest_cursor) if profiles is not None else None
    # The watermark stands in only for rows loaded: it moves past rows held in the quarantine.
    if this_run is None and run.rows_loaded:
        this_run = cursor_instant(run.new_watermark)
    # Each run writes the newest so far, so the latest point is the maximum (an index lookup).
    before = latest_values(conn, NEWEST_CURSOR, [table_config.name]).get(table_config.name)
    newest = this_run
    if before is not None:
        earlier = datetime.fromtimestamp(before[1], UTC)
        newest = earlier if newest is None or earlier > newest else newest
    points = run_points(run, newest, measured_at)
    if profiles is not None:
        profiles.table_name = profiles.table_name or table_config.name
        full = run.full_refresh or run.old_watermark is None
        points += profiles.points(measured_at, {"load": FULL} if full else None)
        if run.rows_loaded:  # a run that loaded nothing new re-read only the lookback
            samples = profiles.samples(measured_at, run.run_id, FULL if full else DELTA)
            write_samples(conn, _hidden_categories(conn, samples, table_config))
    return write_metrics(conn, points)


def _hidden_categories(
    conn: sa.Connection, samples: list[ColumnSample], table_config: TableConfig
) -> list[ColumnSample]:
    """The samples with customer values among their category counts (a pii column's, an
    email- or phone-shaped one) as hash prefixes: drift compares prefixes as well as values."""
    pii = pii_columns(table_config)
    hidden = {
        s.column
        for s in samples
        if s.counts and (s.column in pii or any(looks_like_pii(v) for v in s.counts))
    }
    if not hidden:
        return samples
    hide = redactor(conn, pii)
    return [
        replace(s, counts={str(hide.value(s.column, v)): n for v, n in s.counts.items()})
        if s.column in hidden and s.counts
        else s
        for s in samples
    ]
