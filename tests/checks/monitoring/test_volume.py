"""Volume per cursor hour: the same source volume reads the same whatever the sync cadence."""

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipewarden.checks.monitoring.run import run_checks
from pipewarden.checks.monitoring.volume import hourly_counts
from pipewarden.config.load import parse_config
from pipewarden.db.engines import cached_engine
from pipewarden.measurements.sync_metrics import NEWEST_CURSOR
from pipewarden.records.metrics import MetricPoint, as_instant, write_metrics
from pipewarden.records.migrate import ensure_tables

NOW = datetime(2026, 3, 2, 15, 20, tzinfo=UTC)
CHECK = "anomaly:rows_by_cursor_hour"


def _volume(warehouse_url: str, points: list[MetricPoint], newest: datetime) -> Any:
    config = parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
            "tables": {"orders": {"source": "shop", "primary_key": ["id"], "cursor": "t"}},
        },
        Path("t.yaml"),
    )
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    points = [*points, MetricPoint(newest, "orders", NEWEST_CURSOR, newest.timestamp())]
    with engine.begin() as conn:
        write_metrics(conn, points)
    return {r.check: r for r in run_checks(config, now=NOW)}[CHECK]


def _hourly_past(days: int = 14, seed: int = 1) -> list[MetricPoint]:
    """One point per cursor hour up to 13:00, as an hourly sync writes them."""
    rng = np.random.default_rng(seed)
    last = NOW.replace(minute=0) - timedelta(hours=2)
    hours = [last - timedelta(hours=h) for h in range(days * 24 - 1, -1, -1)]
    return [
        MetricPoint(h, "orders", "rows_by_cursor_hour", float(rng.poisson(_mean(h)))) for h in hours
    ]


def _mean(hour: datetime) -> float:
    return 200 + 150 * math.sin(2 * math.pi * hour.hour / 24)


def test_an_hour_loaded_by_twelve_runs_reads_as_one(warehouse_url: str) -> None:
    """Syncs every five minutes each write their share of 14:00: the hour is their sum."""
    hour = NOW.replace(minute=0) - timedelta(hours=1)
    shares = [MetricPoint(hour, "orders", "rows_by_cursor_hour", 10.0) for _ in range(12)]
    result = _volume(warehouse_url, _hourly_past() + shares, newest=NOW - timedelta(minutes=2))
    assert result.status == "ok", result.reason
    assert result.observed_at == hour and result.observed == 120  # about 14:00's usual 125
    # One run's share alone is below the band: that was the cadence problem of rows per run.
    assert result.expected_low is not None and result.expected_low > 10


def test_an_hour_without_rows_counts_as_zero(warehouse_url: str) -> None:
    result = _volume(warehouse_url, _hourly_past(), newest=NOW - timedelta(minutes=2))
    # 14:00 has no point, yet the sync saw past it: no rows changed in that hour.
    assert result.observed_at == NOW.replace(minute=0) - timedelta(hours=1)
    assert result.observed == 0 and result.status == "anomaly"


def test_the_hour_in_progress_counts_only_when_already_too_high(warehouse_url: str) -> None:
    last = NOW.replace(minute=0) - timedelta(hours=1)
    complete = [MetricPoint(last, "orders", "rows_by_cursor_hour", round(_mean(last)))]
    early = [MetricPoint(NOW.replace(minute=0), "orders", "rows_by_cursor_hour", 3.0)]
    quiet = _volume(warehouse_url, _hourly_past() + complete + early, newest=NOW)
    assert quiet.status == "ok" and quiet.observed_at == last  # 3 rows so far is no shortfall


def test_a_burst_in_the_hour_in_progress_is_reported_at_once(warehouse_url: str) -> None:
    last = NOW.replace(minute=0) - timedelta(hours=1)
    complete = [MetricPoint(last, "orders", "rows_by_cursor_hour", round(_mean(last)))]
    burst = [MetricPoint(NOW.replace(minute=0), "orders", "rows_by_cursor_hour", 5000.0)]
    result = _volume(warehouse_url, _hourly_past() + complete + burst, newest=NOW)
    assert result.status == "anomaly" and result.observed == 5000
    assert result.observed_at == NOW.replace(minute=0) and "in progress" in (result.reason or "")


def test_hourly_counts_sum_fill_and_stop_at_the_open_hour() -> None:
    h = datetime(2026, 3, 2, 10, tzinfo=UTC)
    times = [h, h + timedelta(minutes=30), h + timedelta(hours=2), h + timedelta(hours=9)]
    micros = np.array([int(t.timestamp()) * 1_000_000 for t in times])
    hours, counts = hourly_counts(micros, np.array([1.0, 2.0, 4.0, 99.0]), h + timedelta(hours=3))
    assert [as_instant(m) for m in hours] == [h + timedelta(hours=i) for i in range(4)]
    assert counts.tolist() == [3.0, 0.0, 4.0, 0.0]  # a row stamped in the future waits its hour
