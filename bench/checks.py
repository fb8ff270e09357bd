"""Benchmark of the anomaly checks: the monitoring entry point over many tables, and a backtest.

Run as `python bench/checks.py`. Prints the median of several repetitions:
- 200 tables with 90 days of hourly history each, scoring the newest point of each with
  `score_latest` (the target: under 5 seconds for all 200);
- a full point-by-point backtest of one NAB Twitter series (about 16,000 points), if the shared
  data folder is beside the repository.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, score_latest  # noqa: E402
from pipewarden.checks.monitoring.backtest import backtest_series, infer_kind, read_series  # noqa: E402

TABLES = 200
DAYS = 90
REPEATS = 5
TWITTER = ROOT.parent / "shared" / "data" / "nab" / "realTweets" / "Twitter_volume_AAPL.csv"


def synthetic_tables(seed: int = 0) -> list[tuple[list[datetime], np.ndarray, str]]:
    """Hourly histories: seasonal counts and gauges, some with an incident at the newest point."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1)
    stamps = [start + timedelta(hours=h) for h in range(DAYS * 24)]
    hours = np.arange(DAYS * 24)
    tables = []
    for i in range(TABLES):
        level = rng.uniform(5, 5000)
        daily = 1 + 0.5 * np.sin(2 * np.pi * (hours % 24 - 6) / 24)
        weekly = np.where((hours // 24) % 7 >= 5, 0.6, 1.0) if i % 3 == 0 else 1.0
        if i % 2 == 0:
            values = rng.poisson(level * daily * weekly).astype(float)
            kind = "count"
        else:
            values = level * daily * weekly * (1 + rng.normal(0, 0.05, len(hours)))
            kind = "gauge"
        if i % 10 == 0:
            values[-1] *= 3
        tables.append((stamps, values, kind))
    return tables


def median_seconds(run: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float]:
    """Median wall and CPU seconds (CPU time tells a busy machine from a slow program)."""
    wall, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    # As run_checks scores: each point's own verdict, no keep_firing_for (checks/monitoring/run.py).
    settings = DetectorSettings(keep_firing_for=timedelta(0))
    tables = synthetic_tables()

    def check_all() -> int:
        return sum(score_latest(s, v, settings, kind=k).is_anomaly for s, v, k in tables)  # type: ignore[arg-type]

    flagged = check_all()
    seconds, cpu = median_seconds(check_all)
    print(
        f"score_latest: {TABLES} tables x {DAYS} days hourly: median {seconds:.2f} s wall, "
        f"{cpu:.2f} s CPU ({1000 * seconds / TABLES:.1f} ms per table; target < 5 s; "
        f"{flagged} of {TABLES} newest points flagged, {TABLES // 10} planted)"
    )
    if TWITTER.exists():
        texts, _, values = read_series(TWITTER)
        kind = infer_kind(values)
        backtest_seconds, backtest_cpu = median_seconds(
            lambda: backtest_series(texts, values, settings, kind), repeats=3
        )
        print(
            f"backtest: {TWITTER.name} ({len(values)} points, {kind}): median "
            f"{backtest_seconds:.2f} s wall, {backtest_cpu:.2f} s CPU "
            f"({1e6 * backtest_seconds / len(values):.0f} us per point)"
        )
    else:
        print(f"backtest: skipped, {TWITTER} not found")


if __name__ == "__main__":
    main()
