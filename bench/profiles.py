"""Profile build benchmark on PostgreSQL: full and incremental builds beside the floor.

Fills a fresh PostgreSQL database with `--customers` customers and `--orders` orders spread
over 400 days (SQL `generate_series`, indexed, vacuumed and analysed), then measures, with the load
average beside each figure:

1. the floor: a plain `INSERT … SELECT` of the same aggregates (frequency and monetary over
   the window, last purchase) per customer into an empty table;
2. a full build (`build_profiles(full=True)`: aggregates, scores, segments, checks, record);
   goal ≤ 1.3× the floor;
3. an incremental build after new orders for 1% of the customers, in process; goal ≤ 0.05×
   the full build;
4. the same from the shell: `pipewarden profiles build` after new orders for another 1% (the
   interpreter's start, the build, and the refresh of the changed customers in Redis);
5. the send-time API on that table (`bench/profiles_api.py`): from the cache at 2,000
   requests/s, p99 goal under 5 ms; the fallback path, p99 goal under 10 ms.

Run: `.venv/bin/python bench/profiles.py [--customers 1000000] [--orders 10000000] [--no-api]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
import yaml

from pipewarden.config.load import parse_config
from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import build_profiles

REDIS = os.environ.get("PIPEWARDEN_BENCH_REDIS", "redis://127.0.0.1:6379/0")
ADMIN = os.environ.get(
    "PIPEWARDEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def load() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} {five} {fifteen} on {os.cpu_count()} cores"


def fill(engine: sa.Engine, customers: int, orders: int) -> None:
    statements = [
        "CREATE TABLE customers (customer_id bigint PRIMARY KEY, email_consent boolean NOT NULL,"
        " updated_at timestamptz NOT NULL)",
        "INSERT INTO customers SELECT g, random() < 0.7, now() - interval '2 days'"
        f" FROM generate_series(1, {customers}) g",
        "CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL,"
        " amount numeric(12,2) NOT NULL, ordered_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL)",
        "INSERT INTO orders SELECT g, 1 + floor(random() * :customers)::bigint,"
        " round((random() * 200)::numeric, 2), t, t FROM (SELECT g, now() - interval '1 day'"
        f" - random() * interval '400 days' AS t FROM generate_series(1, {orders}) g) s",
        # Not covering (INCLUDE (amount, ordered_at)): with it the floor reads the orders from
        # the index alone, a different floor from the one measured before.
        "CREATE INDEX ON orders (customer_id)",
        "CREATE INDEX ON orders (updated_at)",
        "CREATE INDEX ON orders (ordered_at)",
        "CREATE INDEX ON customers (updated_at)",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement), {"customers": customers})
    # Hint bits and the visibility map set now, so that the first measured scan is not charged.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE customers"))
        conn.execute(sa.text("VACUUM ANALYZE orders"))


class StatementTimes:
    """The slowest statements of a measured step (`--statements`): where the time goes."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.times = engine, []
        self.started: list[float] = []

    def __enter__(self) -> StatementTimes:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        sa.event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)
        for seconds, statement in sorted(self.times, reverse=True)[:6]:
            print(f"    {seconds:7.3f} s  {' '.join(statement.split())[:110]}")

    def _before(self, *event: Any) -> None:
        self.started.append(time.perf_counter())

    def _after(self, *event: Any) -> None:
        self.times.append((time.perf_counter() - self.started.pop(), event[2]))


def verdict(ratio: float, goal: float) -> str:
    return f"goal ≤ {goal}×: {'met' if ratio <= goal else 'MISSED'}"


def new_orders(
    engine: sa.Engine, first_order: int, first_customer: int, n: int, at: datetime
) -> None:
    """One new order for each of n customers, every 100th from `first_customer`."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO orders SELECT :base + g, :first + g * 100 - 100, 25, :t, :t"
                " FROM generate_series(1, :n) g"
            ),
            {"base": first_order, "first": first_customer, "t": at, "n": n},
        )


def floor_seconds(engine: sa.Engine, as_of: datetime) -> float:
    query = sa.text(
        "INSERT INTO floor_profiles SELECT customer_id,"
        " sum(CASE WHEN ordered_at > :cutoff AND ordered_at <= :as_of THEN 1 ELSE 0 END),"
        " sum(CASE WHEN ordered_at > :cutoff AND ordered_at <= :as_of THEN amount ELSE 0 END),"
        " max(ordered_at) FROM orders GROUP BY customer_id"
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE floor_profiles (customer_id bigint, frequency bigint,"
                " monetary numeric, last_order_at timestamptz)"
            )
        )
        started = time.perf_counter()
        conn.execute(query, {"cutoff": as_of - timedelta(days=365), "as_of": as_of})
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--no-api", action="store_true", help="measure the builds only")
    parser.add_argument(
        "--statements", action="store_true", help="print each build's slowest statements"
    )
    args = parser.parse_args()
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = f"pwbench_profiles_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    prefix = f"pwbench:{name}:"
    workdir = Path(f"/tmp/{name}")
    workdir.mkdir()
    try:
        started = time.perf_counter()
        fill(engine, args.customers, args.orders)
        print(
            f"filled {args.customers:,} customers, {args.orders:,} orders in "
            f"{time.perf_counter() - started:.1f} s ({load()})"
        )
        settings = {
            "warehouse": {"url": url},
            "sources": {},
            "tables": {},
            "profiles": {
                "customers": {"table": "customers", "consent": "email_consent"},
                "orders": {"table": "orders", "updated_at": "updated_at"},
                "segments": {"champions": "r >= 4 and f >= 4", "at_risk": "r <= 2"},
                "api": {"token": "bench-token", "redis_url": REDIS, "key_prefix": prefix},
            },
        }
        config_path = workdir / "pipewarden.yaml"
        config_path.write_text(yaml.safe_dump(settings))
        config = parse_config(settings, config_path)
        # Two hours ago, so that the build from the shell (as of now) comes after the others.
        as_of = datetime.now(UTC) - timedelta(hours=2)
        floor = floor_seconds(engine, as_of)
        print(f"floor INSERT … SELECT of the aggregates: {floor:.2f} s ({load()})")
        with StatementTimes(engine) if args.statements else nullcontext():
            started = time.perf_counter()
            full = build_profiles(engine, config, full=True, as_of=as_of)
            full_s = time.perf_counter() - started
        print(
            f"full build: {full_s:.2f} s = {full_s / floor:.2f}× the floor "
            f"({verdict(full_s / floor, 1.3)}), {full.rows:,} profiles, checks {full.status} "
            f"({load()})"
        )
        changed = max(1, args.customers // 100)
        later = as_of + timedelta(minutes=30)
        new_orders(engine, args.orders, 1, changed, later)
        with StatementTimes(engine) if args.statements else nullcontext():
            started = time.perf_counter()
            incremental = build_profiles(engine, config, as_of=later + timedelta(minutes=1))
            inc_s = time.perf_counter() - started
        print(
            f"incremental build in process, new orders for {changed:,} customers (1%): "
            f"{inc_s:.2f} s = {inc_s / full_s:.3f}× the full build "
            f"({verdict(inc_s / full_s, 0.05)}), {len(incremental.changed):,} profiles written, "
            f"checks {incremental.status} ({load()})"
        )
        new_orders(
            engine, args.orders + changed, 51, changed, datetime.now(UTC) - timedelta(minutes=1)
        )
        started = time.perf_counter()
        shell = subprocess.run(
            [
                str(Path(sys.executable).parent / "pipewarden"),
                "profiles",
                "build",
                "--config",
                str(config_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        shell_s = time.perf_counter() - started
        print(
            f"incremental build from the shell (`pipewarden profiles build`, Redis refreshed), "
            f"another 1%: {shell_s:.2f} s = {shell_s / full_s:.3f}× the full build "
            f"({verdict(shell_s / full_s, 0.05)}) ({load()})\n  its output: "
            f"{(shell.stdout + shell.stderr).strip()}"
        )
        if not args.no_api:
            from profiles_api import bench_api

            bench_api(config_path, args.customers)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        for keys in _batches(client.scan_iter(match=prefix + "*", count=10_000)):
            client.delete(*keys)
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


def _batches(keys: Iterator[Any], size: int = 10_000) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


if __name__ == "__main__":
    main()
