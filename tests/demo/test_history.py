"""The demo's seeded history: quiet by itself, and the demo's next sync is judged against it."""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipewarden.checks.monitoring.anomaly.detector import Kind, detect_series
from pipewarden.checks.monitoring.column_monitor import KINDS
from pipewarden.checks.monitoring.run import run_checks
from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.demo.config import demo_config
from pipewarden.demo.history import SHAPES, seed_history, sync_times, table_history
from pipewarden.demo.reference import seed_reference
from pipewarden.demo.sources import DemoSources
from pipewarden.records.metrics import history
from pipewarden.sync.run import SyncOptions, sync_table

SERIES: list[tuple[str, Kind]] = [
    ("rows_loaded", "count"),
    ("rows_by_cursor_hour", "count"),
    ("latency_p95_seconds", "gauge"),
    ("freshness_seconds", "gauge"),
]


@pytest.mark.parametrize("hours_later", [0, 5, 11, 17, 23, 24 * 3 + 8])
def test_the_seeded_past_raises_no_alarm(hours_later: int) -> None:
    now = datetime(2026, 11, 28, 16, 40, tzinfo=UTC) + timedelta(hours=hours_later)
    rng = np.random.default_rng(hours_later)
    for name, shape in SHAPES.items():
        points = table_history(name, shape, now, rng)
        for metric, kind in SERIES:
            series = [p for p in points if p.metric == metric]
            verdicts = detect_series(
                [p.measured_at for p in series], [p.value for p in series], kind=kind
            )
            flagged = [v.timestamp for v in verdicts if v.is_anomaly]
            # The checks judge the newest point against weeks of past. In its first week, with
            # little to learn from, the detector may still take noise for a season (a "9h
            # period" was seen) and start at shadows; after that the seeded past must be quiet.
            assert all(t < now - timedelta(days=21) for t in flagged), (name, metric, flagged)


def test_syncs_are_hourly_and_end_before_now() -> None:
    now = datetime(2026, 3, 1, 12, 12, tzinfo=UTC)
    times = sync_times(now)
    assert len(times) == 28 * 24
    assert times[-1] == datetime(2026, 3, 1, 11, 7, tzinfo=UTC)
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {timedelta(hours=1)}


def _sync_all(config: PipewardenConfig) -> None:
    """Every table through the sync with the demo's schema gate (it writes its own metrics)."""
    for name in config.tables:
        sync_table(config, name, SyncOptions())


def test_the_demo_catches_the_stale_source_and_the_order_burst(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    sources = DemoSources(tmp_path)
    sources.create(random.Random(20261129), now - timedelta(hours=1))
    config = parse_config(demo_config(tmp_path), tmp_path / "pipewarden.yaml")
    written = seed_history(config.warehouse.url, config, now, random.Random(3))
    assert written > 3 * 28 * 24 * 9
    assert seed_history(config.warehouse.url, config, now, random.Random(3)) == 0  # once only

    _sync_all(config)  # the first load: labelled full, left out of the histories
    seed_reference(config.warehouse.url, config, now, np.random.default_rng(5))
    sources.change(random.Random(7), datetime.now(UTC), 1)
    _sync_all(config)  # the delta the checks judge
    results = {(r.table_name, r.check): r for r in run_checks(config)}

    columns = {k: r.status for k, r in results.items() if k[1].startswith(KINDS)}
    assert {k for k, status in columns.items() if status == "anomaly"} == {
        ("orders", "drift:amount"),  # the checkout release's cents
        ("customers", "null_rate:country"),  # the signup form's lost field
    }, "\n".join(f"{k}: {r.reason}" for k, r in results.items() if k in columns)
    assert {k for k, status in columns.items() if status == "insufficient_history"} == {
        ("customers", "drift:loyalty_tier"),  # added this round: no past yet
        ("customers", "null_rate:loyalty_tier"),
    }
    statuses = {key: r.status for key, r in results.items() if key not in columns}
    assert statuses == {
        ("customers", "freshness"): "ok",
        ("orders", "freshness"): "ok",
        ("events", "freshness"): "error",
        ("customers", "anomaly:rows_by_cursor_hour"): "ok",
        ("customers", "anomaly:latency_p95_seconds"): "ok",
        ("customers", "anomaly:freshness_seconds"): "ok",
        ("orders", "anomaly:rows_by_cursor_hour"): "anomaly",
        ("orders", "anomaly:latency_p95_seconds"): "ok",
        ("orders", "anomaly:freshness_seconds"): "ok",
        # The web source stopped: no rows in the hours since, the data ages. Both are true alarms.
        ("events", "anomaly:rows_by_cursor_hour"): "anomaly",
        ("events", "anomaly:latency_p95_seconds"): statuses[
            "events", "anomaly:latency_p95_seconds"
        ],
        ("events", "anomaly:freshness_seconds"): "anomaly",
    }, "\n".join(f"{k}: {r.reason}" for k, r in results.items())
    # The delta loads no event; whether the lookback's re-read rows (four hours old) count
    # towards latency is the sync's choice: either way nothing false is said.
    assert statuses["events", "anomaly:latency_p95_seconds"] in ("ok", "anomaly")
    burst = results["orders", "anomaly:rows_by_cursor_hour"]
    assert burst.expected_high is not None and burst.observed is not None
    assert burst.observed > burst.expected_high
    events_age = results["events", "freshness"].observed or 0
    assert 3.9 * 3600 < events_age < 4.5 * 3600

    engine = cached_engine(config.warehouse.url)
    with engine.connect() as conn:
        seeded = history(conn, "events", "rows_loaded", until=now, labels={})[1]
        profiled = history(conn, "orders", "null_rate", labels={"column": "customer_id"})
        columns = conn.execute(sa.text("SELECT count(*) FROM pipewarden_metrics")).scalar()
    assert seeded[-3:] == [0.0, 0.0, 0.0]  # the stop is in the seeded past too
    assert len(profiled[1]) == 2 and columns, profiled
