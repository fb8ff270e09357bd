"""What a Prometheus scrape of `pipewarden exporter` costs with 500 tables in a PostgreSQL
warehouse that has a history: the latency of a scrape over HTTP that reads the warehouse (the
cache off, so every scrape reads), its p50 and p99 (goal: p99 under 100 ms), and the warehouse
queries per scrape, counted by a SQLAlchemy `before_cursor_execute` listener.

Seeds, per table: a watermark, an hourly sync for `--days` days (a failed one every 50th) with
its newest cursor point in `pipewarden_metrics`, 20 held and 20 released quarantined rows, a
daily reconciliation, 40 delivered alerts and, for every tenth table, an open incident and two
waiting alerts.

The p50 and p99 printed are the medians of `--rounds` rounds of `--scrapes` scrapes (each
round's figure beside), so one hiccup of a shared machine does not decide.

Run: `.venv/bin/python bench/exporter.py [--tables N] [--days N] [--scrapes N] [--rounds N]`.
"""

import argparse
import os
import statistics
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PG_ADMIN, fresh_database  # noqa: E402
from pipewarden.config.load import parse_config  # noqa: E402
from pipewarden.config.models import PipewardenConfig  # noqa: E402
from pipewarden.db.engines import cached_engine  # noqa: E402
from pipewarden.measurements.cursor import NEWEST_CURSOR  # noqa: E402
from pipewarden.records.alerts import alerts  # noqa: E402
from pipewarden.records.incidents import incidents  # noqa: E402
from pipewarden.records.metrics import metrics  # noqa: E402
from pipewarden.records.migrate import ensure_tables  # noqa: E402
from pipewarden.records.quarantine import quarantine  # noqa: E402
from pipewarden.records.reconcile_runs import reconcile_runs  # noqa: E402
from pipewarden.records.tables import sync_runs, watermarks  # noqa: E402
from pipewarden.serve.exporter import SCRAPE_TIMEOUTS, serve  # noqa: E402
from pipewarden.serve.heap import settle_heap  # noqa: E402

NOW = datetime.now(UTC)


def bench_config(url: str, tables: int) -> PipewardenConfig:
    table = {"source": "src", "primary_key": "id", "cursor": "updated_at", "owner": "crm"}
    table["freshness"] = {"warn_after": "2h"}
    return parse_config(
        {
            "warehouse": {"url": url},
            "sources": {"src": {"url": "sqlite://"}},
            "tables": {
                f"t{i:04d}": {**table, "freshness": {"warn_after": "2h"}} for i in range(tables)
            },
        },
        Path("bench.yaml"),
    )


def seed(engine: sa.Engine, names: list[str], days: int) -> None:
    hours = days * 24
    for k, name in enumerate(names):
        runs, points = [], []
        for h in range(hours, 0, -1):
            started = NOW - timedelta(hours=h)
            runs.append(
                {
                    "run_id": str(uuid.uuid4()),
                    "table_name": name,
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=3),
                    "status": "failed" if h % 50 == 0 else "success",
                    "full_refresh": False,
                    "rows_read": 100,
                    "rows_loaded": 100,
                    "rows_unchanged": 0,
                    "rows_quarantined": 0,
                    "batches": 1,
                    "latency_p95_seconds": 30.0 + h % 7,
                }
            )
            points.append(
                {
                    "measured_at": started,
                    "table_name": name,
                    "metric": NEWEST_CURSOR,
                    "value": (started - timedelta(minutes=5)).timestamp(),
                    "labels": "{}",
                }
            )
        held = [
            {
                "table_name": name,
                "run_id": runs[-1]["run_id"],
                "primary_key": f'{{"id": {i}}}',
                "row_json": "{}",
                "reasons": "[]",
                "checks": "[]",
                "status": "held" if i % 2 else "released",
                "quarantined_at": NOW - timedelta(hours=i),
            }
            for i in range(40)
        ]
        reconciled = [
            {
                "run_id": str(uuid.uuid4()),
                "table_name": name,
                "started_at": NOW - timedelta(days=d),
                "status": "success",
                "action": "repair",
                "missing": 3,
                "extra": 1,
                "changed": 2,
                "repaired": 6,
                "remaining": d % 3,
            }
            for d in range(days, 0, -1)
        ]
        alert_rows = [
            {
                "created_at": NOW - timedelta(hours=i),
                "table_name": name,
                "check": "freshness",
                "kind": "opened",
                "status": "warn",
                "severity": 2,
                "details": "{}",
                "state": "pending" if k % 10 == 0 and i < 2 else "sent",
            }
            for i in range(42)
        ]
        mark = {"table_name": name, "cursor_value": "{}", "run_id": runs[-1]["run_id"]}
        with engine.begin() as conn:
            conn.execute(watermarks.insert().values(**mark, updated_at=NOW))
            conn.execute(sync_runs.insert(), runs)
            conn.execute(metrics.insert(), points)
            conn.execute(quarantine.insert(), held)
            conn.execute(reconcile_runs.insert(), reconciled)
            conn.execute(alerts.insert(), alert_rows)
            if k % 10 == 0:
                opened = NOW - timedelta(hours=3)
                conn.execute(
                    incidents.insert().values(
                        table_name=name,
                        check="freshness",
                        status="warn",
                        severity=2,
                        opened_at=opened,
                        last_seen_at=NOW,
                        occurrences=3,
                    )
                )
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))


def scrape(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return bytes(answer.read())


def timed_scrapes(url: str, scrapes: int) -> list[float]:
    """Each scrape's wall time, seconds."""
    times = []
    for _ in range(scrapes):
        start = time.perf_counter()
        scrape(url)
        times.append(time.perf_counter() - start)
    return times


def _ms(values: list[float]) -> str:
    return "  [" + ", ".join(f"{v * 1000:.1f}" for v in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scrapes", type=int, default=200, help="scrapes a round")
    parser.add_argument("--rounds", type=int, default=3, help="the figures are their median")
    args = parser.parse_args()
    with fresh_database(PG_ADMIN, "pw_bench_exporter") as url:
        config = bench_config(url, args.tables)
        engine = cached_engine(url, SCRAPE_TIMEOUTS)
        ensure_tables(engine)
        started = time.perf_counter()
        seed(engine, list(config.tables), args.days)
        seeded = time.perf_counter() - started
        print(f"seeded {args.tables} tables x {args.days} days of hourly syncs in {seeded:.1f} s")
        queries: list[str] = []

        def count(*event: Any) -> None:
            queries.append(event[2])

        server, thread = serve(config, "127.0.0.1", 0, cache_seconds=0)
        settle_heap()  # as `pipewarden exporter` does once it serves
        target = f"http://127.0.0.1:{server.server_port}/metrics"
        try:
            body = scrape(target)  # connects: the pool's first connection is not a scrape
            assert b"pipewarden_up 1.0" in body, body[:500]
            sa.event.listen(engine, "before_cursor_execute", count)
            rounds = [timed_scrapes(target, args.scrapes) for _ in range(args.rounds)]
            sa.event.remove(engine, "before_cursor_execute", count)
        finally:
            server.shutdown()
            server.server_close()
            engine.dispose()
        samples = body.count(b"\npipewarden_table_")
        p50s = [statistics.median(times) for times in rounds]
        p99s = [statistics.quantiles(times, n=100)[98] for times in rounds]
        p99 = statistics.median(p99s)
        print(
            f"\nexporter scrape, {args.tables} tables, cache off, {args.rounds} rounds of"
            f" {args.scrapes} scrapes over HTTP (median of the rounds; each round's in brackets)"
        )
        print(f"  samples per scrape:          {samples}")
        scrapes = args.rounds * args.scrapes
        print(f"  warehouse queries per scrape: {len(queries) / scrapes:g}")
        print(f"  latency p50:                 {statistics.median(p50s) * 1000:.1f} ms{_ms(p50s)}")
        verdict = "met" if p99 < 0.1 else "MISSED"
        print(f"  latency p99:                 {p99 * 1000:.1f} ms{_ms(p99s)}")
        print(f"  goal: p99 under 100 ms:      {verdict}")
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
        print(f"  load average {one} {five} {fifteen} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
