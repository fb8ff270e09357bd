"""run_checks over recorded metrics, and the check / status commands, on PostgreSQL and SQLite."""

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import typer
import yaml
from typer.testing import CliRunner

from pipewarden.checks.monitoring.anomaly.detector import score_tail
from pipewarden.checks.monitoring.run import run_checks, table_states
from pipewarden.cli.check import check, status
from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.measurements.sync_metrics import NEWEST_CURSOR
from pipewarden.records.metrics import MetricPoint, check_results, metrics, write_metrics
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.sync_runs import SyncRun, finish_run, start_run
from tests.fixtures.shop import ORDERS, Shop

NOW = datetime(2026, 3, 2, 15, 20, tzinfo=UTC)


def _config_dict(warehouse_url: str, tables: tuple[str, ...] = ("orders", "customers")) -> dict:
    return {
        "warehouse": {"url": warehouse_url},
        "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
        "tables": {
            name: {
                "source": "shop",
                "primary_key": ["id"],
                "cursor": "updated_at",
                "freshness": {"warn_after": "1h", "error_after": "2h"},
            }
            for name in tables
        },
    }


def _config(warehouse_url: str, tables: tuple[str, ...] = ("orders", "customers")) -> Any:
    return parse_config(_config_dict(warehouse_url, tables), Path("t.yaml"))


def _hourly_history(
    table: str, end: datetime, days: int, last: float | None = None, seed: int = 1
) -> list[MetricPoint]:
    """Rows by cursor hour (daily cycle), latency and freshness, one point an hour up to `end`."""
    rng = np.random.default_rng(seed)
    points = []
    n = days * 24
    for i in range(n):
        at = end - timedelta(hours=n - 1 - i)
        mean = 200 + 150 * math.sin(2 * math.pi * at.hour / 24)
        rows = float(rng.poisson(mean))
        if i == n - 1 and last is not None:
            rows = last
        points += [
            MetricPoint(at, table, "rows_by_cursor_hour", rows),
            MetricPoint(at, table, "latency_p95_seconds", float(rng.normal(600, 40))),
            MetricPoint(at, table, "freshness_seconds", float(rng.normal(120, 10))),
        ]
    return points


def _seed(config: PipewardenConfig, points: list[MetricPoint]) -> sa.Engine:
    engine = cached_engine(config.warehouse.url)
    ensure_tables(engine)
    with engine.begin() as conn:
        write_metrics(conn, points)
    return engine


def _newest(table: str, at: datetime) -> MetricPoint:
    return MetricPoint(at, table, NEWEST_CURSOR, at.timestamp())


def _by_check(results: list[Any]) -> dict[tuple[str, str], Any]:
    return {(r.table_name, r.check): r for r in results}


def test_stale_table_and_volume_spike_are_caught_and_recorded(warehouse_url: str) -> None:
    config = _config(warehouse_url)
    end = NOW - timedelta(minutes=5)
    engine = _seed(
        config,
        _hourly_history("orders", end, 14, last=4000.0)
        + _hourly_history("customers", end, 14, seed=2)
        + [_newest("orders", NOW - timedelta(minutes=10))]
        + [_newest("customers", NOW - timedelta(hours=3))],
    )
    results = _by_check(run_checks(config, now=NOW))

    assert results["orders", "freshness"].status == "ok"
    assert results["customers", "freshness"].status == "error"
    assert results["customers", "freshness"].observed == 3 * 3600
    spike = results["orders", "anomaly:rows_by_cursor_hour"]
    assert spike.status == "anomaly"
    assert spike.observed == 4000 and spike.expected_high is not None
    assert spike.expected_high < 4000
    assert spike.observed_at == end.replace(minute=0)  # the hour in progress, already too high
    assert results["customers", "anomaly:rows_by_cursor_hour"].status == "ok"
    for name in ("orders", "customers"):
        for metric in ("latency_p95_seconds", "freshness_seconds"):
            assert results[name, f"anomaly:{metric}"].status == "ok"

    with engine.connect() as conn:
        recorded = conn.execute(
            sa.select(check_results.c.table_name, check_results.c.check, check_results.c.status)
        ).all()
        outcomes = conn.execute(
            sa.select(metrics.c.table_name, metrics.c.value, metrics.c.labels).where(
                metrics.c.metric == "check_outcome"
            )
        ).all()
        ages = dict(
            conn.execute(
                sa.select(metrics.c.table_name, metrics.c.value).where(
                    metrics.c.metric == "check_freshness_seconds"
                )
            ).all()
        )
    assert len(recorded) == 8
    assert ("customers", "freshness", "error") in recorded
    assert ("orders", "anomaly:rows_by_cursor_hour", "anomaly") in recorded
    assert ("customers", 2.0, '{"check": "freshness", "status": "error"}') in outcomes
    assert ages == {"orders": 600.0, "customers": 3 * 3600.0}


def test_short_or_missing_history_is_insufficient(warehouse_url: str) -> None:
    config = _config(warehouse_url)
    _seed(config, _hourly_history("orders", NOW, 1)[:30])
    results = _by_check(run_checks(config, now=NOW))
    assert results["orders", "anomaly:rows_by_cursor_hour"].status == "insufficient_history"
    assert results["customers", "anomaly:rows_by_cursor_hour"].status == "insufficient_history"
    assert results["customers", "anomaly:rows_by_cursor_hour"].history_size == 0
    # Nothing loaded yet under an SLA is an error, not a silence.
    assert results["customers", "freshness"].status == "error"


def test_full_loads_stay_out_of_the_history(warehouse_url: str) -> None:
    config = _config(warehouse_url, ("orders",))
    end = NOW - timedelta(hours=1)
    _seed(
        config,
        _hourly_history("orders", end, 10)
        + [MetricPoint(end, "orders", "rows_by_cursor_hour", 250_000.0, {"load": "full"})],
    )
    result = _by_check(run_checks(config, now=NOW))["orders", "anomaly:rows_by_cursor_hour"]
    assert result.status == "ok"
    assert result.observed_at == end.replace(minute=0) - timedelta(hours=1)  # `end` in progress


def test_only_the_named_tables_are_checked(warehouse_url: str) -> None:
    config = _config(warehouse_url)
    results = run_checks(config, ["orders"], now=NOW)
    assert {r.table_name for r in results} == {"orders"}
    with pytest.raises(KeyError, match="unknown table"):
        run_checks(config, ["nope"], now=NOW)


def test_without_metrics_freshness_comes_from_the_warehouse_table(shop: Shop) -> None:
    stamp = shop.add(3, minutes_ago=45)
    config = shop.config()
    shop.sync(config)
    with cached_engine(config.warehouse.url).begin() as conn:
        conn.execute(metrics.delete())  # as if synced before metrics were recorded
    now = datetime.now(UTC)
    result = _by_check(run_checks(config, now=now))["orders", "freshness"]
    assert result.status == "warn"  # warn_after 30m, error_after 2h
    assert result.observed == pytest.approx((now - stamp).total_seconds(), abs=1e-3)


def test_a_table_whose_every_row_is_held_is_not_fresh(shop: Shop) -> None:
    """Every row read went to the quarantine: the watermark moved past them, but the warehouse
    table is empty, so no freshness may be read from that watermark ("newest row 5m old")."""
    shop.add(3, minutes_ago=5)
    config = shop.config(columns={"amount": {"between": [1000, None]}})
    run = shop.sync(config)
    assert (run.rows_loaded, run.rows_quarantined) == (0, 3)
    result = _by_check(run_checks(config, now=datetime.now(UTC)))["orders", "freshness"]
    assert result.status == "error"
    assert result.reason.startswith("no rows with a cursor time loaded yet")


def test_without_metrics_or_table_freshness_comes_from_the_watermark(warehouse_url: str) -> None:
    config = _config(warehouse_url, ("orders",))
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    run = SyncRun("r1", "orders", started_at=NOW - timedelta(minutes=3))
    start_run(engine, run)
    run.new_watermark = NOW - timedelta(minutes=90)
    finish_run(engine, run, "success")
    result = _by_check(run_checks(config, now=NOW))["orders", "freshness"]
    assert result.status == "warn"
    assert result.observed == 90 * 60


@pytest.fixture
def shop(warehouse_url: str, sqlite_url: Any) -> Shop:
    source = sqlite_url("shop")
    engine = sa.create_engine(source)
    ORDERS.metadata.create_all(engine)
    engine.dispose()
    return Shop(source, warehouse_url)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(check)
    app.command()(status)
    return app


def _write_config(tmp_path: Path, warehouse_url: str) -> str:
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(_config_dict(warehouse_url)), encoding="utf-8")
    return str(path)


def test_check_exit_codes(warehouse_url: str, tmp_path: Path) -> None:
    path = _write_config(tmp_path, warehouse_url)
    config = _config(warehouse_url)
    now = datetime.now(UTC)
    _seed(config, [_newest("orders", now - timedelta(minutes=5))])
    runner = CliRunner()

    fresh = runner.invoke(_app(), ["check", "orders", "--config", path])
    assert fresh.exit_code == 0, fresh.output
    # Three checks wait for history: they are not counted as ok.
    assert "1 of 4 checks ok, 3 waiting for history" in fresh.output

    stale = runner.invoke(_app(), ["check", "--config", path])
    assert stale.exit_code == 1, stale.output
    assert "customers" in stale.output and "error" in stale.output

    unknown = runner.invoke(_app(), ["check", "nope", "--config", path])
    assert unknown.exit_code == 2
    missing = runner.invoke(_app(), ["check", "--config", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2


def test_status_shows_every_table_with_its_sla_status(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich reads the width from here when not a terminal
    path = _write_config(tmp_path, warehouse_url)
    config = _config(warehouse_url)
    now = datetime.now(UTC)
    _seed(
        config,
        [
            _newest("orders", now - timedelta(minutes=5)),
            _newest("customers", now - timedelta(hours=1, minutes=30)),
        ],
    )
    runner = CliRunner()
    runner.invoke(_app(), ["check", "--config", path])
    result = runner.invoke(_app(), ["status", "--config", path])
    assert result.exit_code == 1, result.output  # customers is over its SLA
    lines = {line.split()[1]: line for line in result.output.splitlines() if "│ " in line[:3]}
    assert " ok " in lines["orders"] and "5m" in lines["orders"]
    assert " warn " in lines["customers"] and "1h 30m" in lines["customers"]
    assert "never" in lines["orders"]  # never synced


def test_a_point_already_scored_is_not_scored_again(warehouse_url: str) -> None:
    config = _config(warehouse_url, ("orders",))
    end = NOW - timedelta(hours=1)
    _seed(config, _hourly_history("orders", end, 5, last=4000.0))
    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["kind"])
        return score_tail(*args, **kwargs)

    first = _by_check(run_checks(config, now=NOW, scorer=counting))
    assert len(calls) == 3  # two gauges; one replay for the complete hour and the one in progress
    again = _by_check(run_checks(config, now=NOW + timedelta(minutes=5), scorer=counting))
    assert len(calls) == 3
    assert again["orders", "anomaly:rows_by_cursor_hour"].status == "anomaly"
    assert (
        again["orders", "anomaly:rows_by_cursor_hour"].reason
        == first["orders", "anomaly:rows_by_cursor_hour"].reason
    )
    assert again["orders", "anomaly:rows_by_cursor_hour"].checked_at == NOW + timedelta(minutes=5)

    _seed(config, [MetricPoint(NOW, "orders", "rows_by_cursor_hour", 210.0)])
    run_checks(config, now=NOW + timedelta(minutes=10), scorer=counting)
    assert calls[3:] == []  # 14:00 is complete now, and its anomaly was already scored
    _seed(config, [MetricPoint(NOW + timedelta(hours=1), "orders", "rows_by_cursor_hour", 5.0)])
    run_checks(config, now=NOW + timedelta(hours=1, minutes=5), scorer=counting)
    assert calls[3:4] == ["count"]  # a new complete hour is scored


def test_the_flow_task_records_and_returns_plain_rows(warehouse_url: str, tmp_path: Path) -> None:
    from pipewarden.flows.checks import ARTIFACT_KEY, run_checks_task

    path = _write_config(tmp_path, warehouse_url)
    _seed(_config(warehouse_url), [_newest("orders", datetime.now(UTC))])
    rows = run_checks_task.fn(path, ["orders"])
    assert [(r["table"], r["check"], r["status"]) for r in rows][0] == ("orders", "freshness", "ok")
    assert len(rows) == 4 and all(isinstance(r["reason"], str) for r in rows)
    assert re.fullmatch(r"[a-z0-9-]+", ARTIFACT_KEY)
    with cached_engine(warehouse_url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(check_results)).scalar() == 4


def test_staleness_counts_from_the_last_success_not_the_last_failure(warehouse_url: str) -> None:
    config = _config(warehouse_url, ("orders",))
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    runs = {}
    for run_id, minutes_ago in (("a", 50), ("b", 20), ("c", 5)):
        run = SyncRun(run_id, "orders", started_at=NOW - timedelta(minutes=minutes_ago))
        start_run(engine, run)
        if run_id != "c":
            run.new_watermark = NOW - timedelta(minutes=minutes_ago + 30)
            run.latency_p95_seconds = float(minutes_ago)
            finish_run(engine, run, "success")
        else:
            finish_run(engine, run, "failed", "boom")
        runs[run_id] = run
    state = table_states(engine, config, ["orders"], NOW)["orders"]
    assert state.last_run_status == "failed"
    assert state.last_success == runs["b"].finished_at
    assert state.latency_p95_seconds is None  # the failed run measured nothing
    # The failed run moved no watermark: freshness falls back to run b's.
    assert state.freshness.age == timedelta(minutes=50)


def test_a_sequence_cursor_is_judged_by_the_last_successful_sync(warehouse_url: str) -> None:
    config = _config(warehouse_url, ("orders",))
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    run = SyncRun("r1", "orders", started_at=datetime.now(UTC))
    start_run(engine, run)
    run.new_watermark = 41_207  # a sequence number, not a time
    finish_run(engine, run, "success")
    assert run.finished_at is not None
    later = run.finished_at + timedelta(hours=1, seconds=1)
    state = table_states(engine, config, ["orders"], later)["orders"]
    assert state.freshness.status == "warn"
    assert state.freshness.age == timedelta(hours=1, seconds=1)
    assert state.freshness.reason.startswith("cursor is not a time; last success 1h 00m old")


def test_latency_far_below_its_band_is_no_incident_but_far_above_is(warehouse_url: str) -> None:
    config = _config(warehouse_url)
    end = NOW - timedelta(minutes=5)
    history = _hourly_history("orders", end, 14) + _hourly_history("customers", end, 14, seed=2)
    latest = {
        "orders": 5.0,  # a sync that caught up quickly: faster than ever
        "customers": 9000.0,  # rows arriving hours late
    }
    points = [
        MetricPoint(p.measured_at, p.table_name, p.metric, latest[p.table_name])
        if p.metric == "latency_p95_seconds" and p.measured_at == end
        else p
        for p in history
    ]
    _seed(config, points + [_newest("orders", NOW), _newest("customers", NOW)])
    results = _by_check(run_checks(config, now=NOW))
    fast = results["orders", "anomaly:latency_p95_seconds"]
    assert fast.status == "ok" and fast.observed == 5.0
    assert fast.expected_low is not None and fast.expected_low > 5.0
    assert "lower is better" in (fast.reason or "")
    assert results["customers", "anomaly:latency_p95_seconds"].status == "anomaly"
