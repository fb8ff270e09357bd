"""What a check run costs at scale: 200 tables × 90 days of hourly metrics in PostgreSQL.

Seeds, per table: `pipewarden_metrics` with hourly rows by cursor hour (daily and weekly cycle,
overdispersed counts), latency_p95_seconds, freshness_seconds and the newest loaded cursor; a
successful sync that started five minutes before the check; and `pipewarden_column_samples` of
its last 25 delta runs (two numeric columns with 1,000-value samples, two category columns).
Then times `checks.monitoring.run.run_checks` over all tables: reading every history (one query per
metric family), scoring each table's newest points with the anomaly detector (latency,
freshness, the last complete cursor hour and the hour in progress), the drift and null-rate
monitors of every column with Benjamini–Hochberg across them, recording the results.
Figures, medians of `--repeat` runs:

* store: the reads alone (the freshness inputs and the histories of the metrics);
* column monitors: `checks.monitoring.column_monitor.column_results` alone, reads included
  (goal: 0.5 s);
* run_checks, null scorer: reads, bookkeeping and writes, the detector replaced by a constant;
* run_checks, cold: the whole check run with every series scored by the detector (earlier
  verdicts deleted before each run, untimed) (goal: under 5 s), with the tables shared by
  forked helpers as on the command line (`checks.monitoring.processes`);
* run_checks, cold, one process: the same scored in this process alone, as a Prefect flow does;
* run_checks, warm: the same with no new point since the last check, whose verdicts are reused.

Run: `.venv/bin/python bench/checks_store.py [--tables N] [--days N] [--repeat N]`.
"""

import argparse
import io
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PG_ADMIN, fresh_database, report  # noqa: E402
from pipewarden.checks.monitoring import processes  # noqa: E402
from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, Verdict  # noqa: E402
from pipewarden.checks.monitoring.column_monitor import column_results  # noqa: E402
from pipewarden.checks.monitoring.run import run_checks, table_states  # noqa: E402
from pipewarden.checks.monitoring.scoring import ANOMALY_METRICS  # noqa: E402
from pipewarden.checks.monitoring.volume import VOLUME  # noqa: E402
from pipewarden.config.load import parse_config  # noqa: E402
from pipewarden.config.models import PipewardenConfig  # noqa: E402
from pipewarden.db.engines import cached_engine  # noqa: E402
from pipewarden.records.column_samples import ColumnSample, write_samples  # noqa: E402
from pipewarden.records.metrics import as_instant, metric_arrays  # noqa: E402
from pipewarden.records.migrate import ensure_tables  # noqa: E402
from pipewarden.records.sync_runs import SyncRun, finish_run, start_run  # noqa: E402

NOW = datetime(2026, 3, 30, 12, 5, tzinfo=UTC)


def bench_config(url: str, tables: int) -> PipewardenConfig:
    return parse_config(
        {
            "warehouse": {"url": url},
            "sources": {"src": {"url": "sqlite:///unused.sqlite"}},
            "tables": {
                f"table_{i:03d}": {
                    "source": "src",
                    "primary_key": ["id"],
                    "cursor": "updated_at",
                    "freshness": {"warn_after": "2h", "error_after": "6h"},
                }
                for i in range(tables)
            },
        },
        Path("bench.yaml"),
    )


def seed(url: str, tables: int, days: int) -> int:
    """Write the hourly history of every table with COPY; returns the rows written."""
    rng = np.random.default_rng(5)
    hours = days * 24
    times = np.array([NOW - timedelta(hours=hours - i) for i in range(hours)], dtype=object)
    hour = np.array([t.hour for t in times])
    weekday = np.array([t.weekday() for t in times])
    stamps = [t.isoformat() for t in times]
    total = 0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for i in range(tables):
            scale = rng.uniform(5, 5000)
            mean = scale * (1 + 0.6 * np.sin(2 * np.pi * (hour - 6) / 24))
            mean = mean * np.where(weekday >= 5, 0.7, 1.0)
            rows = rng.negative_binomial(20, 20 / (20 + mean))
            latency = rng.lognormal(np.log(rng.uniform(60, 3600)), 0.25, hours)
            freshness = rng.lognormal(np.log(rng.uniform(30, 1800)), 0.4, hours)
            newest = np.array([t.timestamp() for t in times]) - freshness
            name = f"table_{i:03d}"
            frame = pl.concat(
                [
                    pl.DataFrame(
                        {
                            "measured_at": stamps,
                            "table_name": name,
                            "metric": metric,
                            "value": values.astype(np.float64),
                            "labels": "{}",
                        }
                    )
                    for metric, values in (
                        (VOLUME, rows),
                        ("latency_p95_seconds", latency),
                        ("freshness_seconds", freshness),
                        ("newest_cursor_epoch", newest),
                    )
                ]
            )
            buffer = io.BytesIO()
            frame.write_csv(buffer, include_header=False)
            columns = "measured_at, table_name, metric, value, labels"
            with conn.cursor().copy(f"COPY pipewarden_metrics ({columns}) FROM STDIN CSV") as cp:
                cp.write(buffer.getvalue())
            total += frame.height
        conn.execute("ANALYZE pipewarden_metrics")
    engine = cached_engine(url)
    for i in range(tables):
        run = SyncRun(f"bench-{i}", f"table_{i:03d}", NOW - timedelta(minutes=5))
        start_run(engine, run)
        finish_run(engine, run, "success")
    total += tables + seed_samples(engine, tables, rng)
    return total


def seed_samples(engine: Any, tables: int, rng: np.random.Generator) -> int:
    """25 hourly delta runs per table: two numeric columns sampled, two category columns."""
    written = 0
    for i in range(tables):
        name = f"table_{i:03d}"
        samples = []
        for run in range(25):
            at = NOW - timedelta(hours=25 - run, minutes=-2)
            run_id = f"{name}-{run}"
            for column, loc in (("amount", 50.0), ("items", 3.0)):
                values = rng.gamma(2.0, loc / 2.0, 1000)
                samples.append(ColumnSample(at, name, run_id, column, 1000, 3, values=values))
            for column, kinds in (("currency", ["EUR", "USD", "GBP"]), ("status", ["paid", "new"])):
                picks = rng.choice(kinds, 1000)
                counts = {k: int((picks == k).sum()) for k in kinds}
                samples.append(ColumnSample(at, name, run_id, column, 1000, 0, counts=counts))
        with engine.begin() as conn:
            written += write_samples(conn, samples)
    return written


def read_store(config: PipewardenConfig) -> None:
    """The reads of a check run, without scoring or writing."""
    engine = cached_engine(config.warehouse.url)
    names = list(config.tables)
    table_states(engine, config, names, NOW)
    since = NOW - DetectorSettings().history_window - timedelta(hours=1)
    with engine.connect() as conn:
        wanted = [metric for metric, _ in ANOMALY_METRICS] + [VOLUME]
        metric_arrays(conn, names, wanted, since=since, until=NOW, labels={})


def null_scorer(
    micros: Any, values: Any, settings: Any = None, kind: str = "gauge", points: int = 1
) -> list[Verdict]:
    return [
        Verdict(
            timestamp=as_instant(micros[i]),
            observed=float(values[i]),
            expected=1.0,
            expected_low=0.0,
            expected_high=2.0,
            score=0.0,
            is_anomaly=False,
            method="null",
            reason="null",
            history_size=len(values),
        )
        for i in range(len(values) - points, len(values))
    ]


shared_from = processes.MIN_TABLES


def _alone(url: str) -> None:
    """Before a cold run scored in this process only (untimed)."""
    processes.MIN_TABLES = 10**9
    forget_checks(url)


def forget_checks(url: str) -> None:
    """Drop earlier verdicts so that every series is scored again (a cold check run)."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("DELETE FROM pipewarden_check_results")


def median_seconds(repeat: int, fn: Any, before: Any = None) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _r(times: list[float]) -> list[float]:
    return [round(t, 2) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with fresh_database(PG_ADMIN, "pwbench_checks") as url:
        config = bench_config(url, args.tables)
        ensure_tables(cached_engine(url))
        start = time.perf_counter()
        rows = seed(url, args.tables, args.days)
        print(f"seeded {rows:,} metric rows in {time.perf_counter() - start:.1f} s")
        store, store_runs = median_seconds(args.repeat, lambda: read_store(config))
        columns, columns_runs = median_seconds(
            args.repeat,
            lambda: column_results(cached_engine(url), config, list(config.tables), NOW, "bench"),
        )
        null, null_runs = median_seconds(
            args.repeat,
            lambda: run_checks(config, now=NOW, scorer=null_scorer),
            lambda: forget_checks(url),
        )
        full, full_runs = median_seconds(
            args.repeat, lambda: run_checks(config, now=NOW), lambda: forget_checks(url)
        )
        alone, alone_runs = median_seconds(
            args.repeat, lambda: run_checks(config, now=NOW), lambda: _alone(url)
        )
        processes.MIN_TABLES = shared_from
        warm, warm_runs = median_seconds(args.repeat, lambda: run_checks(config, now=NOW))
        results = run_checks(config, now=NOW)
        cached_engine(url).dispose()
    flagged = sum(r.status == "anomaly" for r in results)
    series = args.tables * (len(ANOMALY_METRICS) + 1)
    print(f"runs (s): store {_r(store_runs)}, null scorer {_r(null_runs)}")
    print(f"          column monitors {_r(columns_runs)}")
    print(f"          cold {_r(full_runs)}, one process {_r(alone_runs)}, warm {_r(warm_runs)}")
    print(f"{flagged} of {len(results)} checks flagged on the last run (random data, no incidents)")
    kinds = Counter((r.check.split(":")[0], r.status) for r in results)
    print(
        "verdicts by kind and status:",
        ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(kinds.items())),
    )
    report(
        f"checks over {args.tables} tables × {args.days} days hourly (PostgreSQL)",
        [
            ("store: freshness inputs + the metrics' histories", store, None, ""),
            ("column monitors: column_results alone", columns, columns / 0.5, "< 0.5 s"),
            ("run_checks, null scorer (reads, bookkeeping, writes)", null, null / 5.0, "< 5 s"),
            ("run_checks, cold: every series scored", full, full / 5.0, "< 5 s"),
            ("run_checks, cold, one process (a Prefect flow)", alone, alone / 5.0, "< 5 s"),
            (
                "  detector per metric series, one process (derived)",
                (alone - null) / series,
                None,
                "",
            ),
            ("run_checks, warm: no new points since last", warm, warm / 5.0, "< 5 s"),
        ],
    )


if __name__ == "__main__":
    main()
