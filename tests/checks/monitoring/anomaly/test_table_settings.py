"""A table's own anomaly settings (sensitivity, smallest change) and `baseline reset`, through
run_checks and the command line, on the test warehouses."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

from pipewarden.checks.monitoring.run import run_checks
from pipewarden.cli.baseline import baseline_app
from pipewarden.config.load import parse_config
from pipewarden.db.engines import cached_engine
from pipewarden.records.metrics import MetricPoint, write_metrics
from pipewarden.records.migrate import ensure_tables

NOW = datetime(2026, 3, 2, 15, 20, tzinfo=UTC)
LATENCY = "latency_p95_seconds"


def _config_dict(warehouse_url: str, anomaly: dict[str, dict]) -> dict:
    return {
        "warehouse": {"url": warehouse_url},
        "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
        "tables": {
            name: {"source": "shop", "primary_key": ["id"], "cursor": "updated_at", **extra}
            for name, extra in anomaly.items()
        },
    }


def _latency(table: str, hours: int, jump_at: int | None = None, last: float | None = None):
    """Hourly latency around 600 s up to NOW; from `jump_at` hours ago it is 1,500 s."""
    rng = np.random.default_rng(7)
    points = []
    for i in range(hours):
        ago = hours - 1 - i
        value = float(rng.normal(600, 20))
        if jump_at is not None and ago < jump_at:
            value += 900
        if ago == 0 and last is not None:
            value = last
        points.append(MetricPoint(NOW - timedelta(hours=ago), table, LATENCY, value))
    return points


def _seed(warehouse_url: str, points: list[MetricPoint]) -> None:
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    with engine.begin() as conn:
        write_metrics(conn, points)


def test_sensitivity_and_min_change_are_per_table(warehouse_url: str) -> None:
    tables = {
        "plain": {},
        "quiet": {"anomaly": {"sensitivity": 30.0}},
        "coarse": {"anomaly": {"min_change": 500}},
        "keen": {"anomaly": {"sensitivity": "high"}},
    }
    config = parse_config(_config_dict(warehouse_url, tables), Path("t.yaml"))
    # The same history for every table; the newest point is 300 s (15 sigma) above normal.
    _seed(warehouse_url, [p for name in tables for p in _latency(name, 14 * 24, last=900.0)])
    results = {
        r.table_name: r for r in run_checks(config, now=NOW) if r.check == f"anomaly:{LATENCY}"
    }
    assert results["plain"].status == "anomaly"
    assert results["keen"].status == "anomaly"
    assert results["quiet"].status == "ok"
    assert results["coarse"].status == "ok"
    assert results["coarse"].expected_high is not None and results["coarse"].expected_high >= 1000


def test_config_refuses_a_sensitivity_that_means_nothing(warehouse_url: str) -> None:
    for wrong in ("loud", -1.0):
        with pytest.raises(ValueError, match="sensitivity"):
            parse_config(
                _config_dict(warehouse_url, {"t": {"anomaly": {"sensitivity": wrong}}}),
                Path("t.yaml"),
            )


def test_baseline_reset_restarts_the_training_from_the_instant_given(
    warehouse_url: str, tmp_path: Path
) -> None:
    config_dict = _config_dict(warehouse_url, {"orders": {}})
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config_dict), encoding="utf-8")
    config = parse_config(config_dict, Path("t.yaml"))
    _seed(warehouse_url, _latency("orders", 14 * 24, jump_at=20))

    def verdict() -> str:
        (result,) = [r for r in run_checks(config, now=NOW) if r.check == f"anomaly:{LATENCY}"]
        return result.status

    assert verdict() == "anomaly"  # a backfill moved the level 20 hours ago
    app = typer.Typer()
    app.add_typer(baseline_app, name="baseline")
    runner = CliRunner()
    since = (NOW - timedelta(hours=20)).isoformat()
    reset = ["baseline", "reset", "orders", LATENCY, "--since", since, "--config", str(path)]
    done = runner.invoke(app, reset)
    assert done.exit_code == 0, done.output
    assert "learns from" in done.output
    # Twenty points since the reset: too few to judge; the old level no longer counts.
    assert verdict() == "insufficient_history"
    earlier = (NOW - timedelta(days=20)).isoformat()
    undone = runner.invoke(app, [*reset[:4], "--since", earlier, "--config", str(path)])
    assert undone.exit_code == 0, undone.output
    assert verdict() == "anomaly"  # a reset to an earlier instant undoes the first

    wrong_metric = runner.invoke(app, ["baseline", "reset", "orders", "nope", "-c", str(path)])
    assert wrong_metric.exit_code == 2 and "latency_p95_seconds" in wrong_metric.output
    wrong_table = runner.invoke(app, ["baseline", "reset", "nope", LATENCY, "-c", str(path)])
    assert wrong_table.exit_code == 2 and "orders" in wrong_table.output
    wrong_time = runner.invoke(app, [*reset[:4], "--since", "yesterday", "-c", str(path)])
    assert wrong_time.exit_code == 2 and "ISO 8601" in wrong_time.output
