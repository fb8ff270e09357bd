"""Profile build benchmark on PostgreSQL: full and incremental builds beside the floor.

Fills a fresh PostgreSQL database with `--customers` customers and `--orders` orders spread
over 400 days (SQL `generate_series`, indexed, vacuumed and analysed), then measures, with the load
average beside each figure:

1. the floor: a plain `INSERT … SELECT` of the same aggregates (frequency and monetary over
   the window, last purchase) per customer into an empty table;
2. a full build (`build_profiles(full=True)`: aggregates, scores, segments, checks, record);
   goal ≤ 1.3× the floor;
3. an incremental build after new orders for 1% of the customers; goal ≤ 0.05× the full build.

Run: `.venv/bin/python bench/profiles.py [--customers 1000000] [--orders 10000000]`.
Not measured here: the API's latency from the cache and on the fallback path.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import build_profiles

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
    args = parser.parse_args()
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = f"pwbench_profiles_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        fill(engine, args.customers, args.orders)
        print(
            f"filled {args.customers:,} customers, {args.orders:,} orders in "
            f"{time.perf_counter() - started:.1f} s ({load()})"
        )
        config = parse_config(
            {
                "warehouse": {"url": url},
                "sources": {},
                "tables": {},
                "profiles": {
                    "customers": {"table": "customers", "consent": "email_consent"},
                    "orders": {"table": "orders", "updated_at": "updated_at"},
                    "segments": {"champions": "r >= 4 and f >= 4", "at_risk": "r <= 2"},
                },
            },
            Path("bench.yaml"),
        )
        as_of = datetime.now(UTC)
        floor = floor_seconds(engine, as_of)
        print(f"floor INSERT … SELECT of the aggregates: {floor:.2f} s ({load()})")
        started = time.perf_counter()
        full = build_profiles(engine, config, full=True, as_of=as_of)
        full_s = time.perf_counter() - started
        print(
            f"full build: {full_s:.2f} s = {full_s / floor:.2f}× the floor (goal ≤ 1.3×), "
            f"{full.rows:,} profiles, checks {full.status} ({load()})"
        )
        changed = max(1, args.customers // 100)
        later = as_of + timedelta(minutes=30)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO orders SELECT :base + g, g * 100 - 99, 25, :t, :t"
                    " FROM generate_series(1, :n) g"
                ),
                {"base": args.orders, "t": later, "n": changed},
            )
        started = time.perf_counter()
        incremental = build_profiles(engine, config, as_of=later + timedelta(minutes=1))
        inc_s = time.perf_counter() - started
        print(
            f"incremental build, new orders for {changed:,} customers (1%): {inc_s:.2f} s = "
            f"{inc_s / full_s:.3f}× the full build (goal ≤ 0.05×), "
            f"{len(incremental.changed):,} profiles written ({load()})"
        )
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
