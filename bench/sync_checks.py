"""What schema checks cost a full load: PostgreSQL → PostgreSQL, 1,000,000 orders.

The orders table is the demo's (pipewarden.checks.schemas.shop:Orders), with 3% lower-case
currencies that
the normalization fixes. Runs are interleaved — checks off, checks on, on a clean table and on one
with 1% bad rows — so that the machine's drift hits every method alike; medians are compared
within the same run. Goals: checks on ≤ 1.15x checks off (clean), ≤ 1.25x with 1% bad rows.

The gate's own cost is also measured without any database: `SchemaGate.check` over the same
rows in the sync's batch size, and, with 1% bad, writing the held rows to the quarantine.

Run: `.venv/bin/python bench/sync_checks.py [--rows N] [--repeat N] [--batch-size N]`.
`checks_bench(rows, repeat)` returns the rows for `bench.common.report`, for bench/sync.py.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PG_ADMIN, fresh_database, report  # noqa: E402

DDL = """
CREATE TABLE {name} (
    order_id bigint PRIMARY KEY,
    customer_id bigint,
    status text,
    currency char(3),
    amount numeric(12,2),
    created_at timestamptz,
    updated_at timestamptz
)
"""
# Every 100th row of the bad table fails one check, in turn: unknown status, unknown currency,
# negative amount, created after updated, missing customer.
FILL = """
INSERT INTO {name}
SELECT g, CASE WHEN {bad} AND g %% 500 = 400 THEN NULL ELSE 1 + g %% 50000 END,
       CASE WHEN {bad} AND g %% 500 = 0 THEN 'lost'
            ELSE (ARRAY['pending','paid','shipped','delivered','cancelled','refunded'])[1 + g %% 6]
       END,
       CASE WHEN {bad} AND g %% 500 = 100 THEN 'XYZ'
            WHEN g %% 33 = 0 THEN 'eur'
            ELSE (ARRAY['EUR','USD','GBP','SEK'])[1 + g %% 4] END,
       CASE WHEN {bad} AND g %% 500 = 200 THEN -1.50 ELSE round((g %% 100000) / 100.0, 2) END,
       timestamptz '2026-01-01' + g * interval '1 second'
         + CASE WHEN {bad} AND g %% 500 = 300 THEN interval '2 hours' ELSE interval '0' END,
       timestamptz '2026-01-01' + g * interval '1 second' + interval '1 hour'
FROM generate_series(1, %(rows)s) g
"""
NORMALIZE = {"currency": ["currency_code"], "status": ["trim", "lower"]}


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def make_sources(url: str, rows: int) -> None:
    """`orders` (clean) and `orders_bad` (1% failing), both with the cursor index."""
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        for name, bad in (("orders", "false"), ("orders_bad", "true")):
            conn.execute(DDL.format(name=name))  # type: ignore[arg-type]
            conn.execute(FILL.format(name=name, bad=bad), {"rows": rows})  # type: ignore[arg-type]
            conn.execute(f"CREATE INDEX {name}_cursor ON {name} (updated_at, order_id)")  # type: ignore[arg-type]
            conn.execute(f"VACUUM ANALYZE {name}")  # type: ignore[arg-type]


def reset_target(url: str) -> None:
    """An empty warehouse, so that every run is a full first load."""
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        names = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')  # type: ignore[arg-type]
    from pipewarden.records import migrate

    migrate._current.clear()


def _config(source: str, target: str, table: str, checks: bool, batch_size: int) -> Any:
    from pipewarden.config.load import parse_config

    settings: dict[str, Any] = {
        "source": "shop",
        "source_table": table,
        "target_table": "orders",
        "primary_key": ["order_id"],
        "cursor": "updated_at",
        "batch_size": batch_size,
    }
    if checks:
        settings |= {"schema": "pipewarden.checks.schemas.shop:Orders", "normalize": NORMALIZE}
    return parse_config(
        {
            "warehouse": {"url": target},
            "sources": {"shop": {"url": source}},
            "tables": {"orders": settings},
        },
        Path("bench.yaml"),
    )


def _load(source: str, target: str, table: str, checks: bool, batch_size: int) -> tuple[float, Any]:
    from pipewarden.sync.run import SyncOptions, sync_table

    config = _config(source, target, table, checks, batch_size)
    start = time.perf_counter()
    run = sync_table(config, "orders", SyncOptions())
    took = time.perf_counter() - start
    if run.rows_read != run.rows_loaded + run.rows_unchanged + run.rows_quarantined:
        raise AssertionError(f"counts do not balance: {run}")
    return took, run


def gate_cost(source: str, table: str, batch_size: int, warehouse: str | None) -> dict[str, float]:
    """Seconds the gate alone spends on the table: check, and holding rows when some fail."""
    import polars as pl

    from pipewarden.checks.validation.schema_gate import SchemaGate, load_schema
    from pipewarden.records.migrate import ensure_tables

    with psycopg.connect(_dsn(source)) as conn:
        cur = conn.execute(f"SELECT * FROM {table} ORDER BY updated_at, order_id")  # type: ignore[arg-type]
        names = [d.name for d in cur.description or []]
        frame = pl.DataFrame(cur.fetchall(), schema=names, orient="row")
    frame = frame.with_columns(
        pl.col("amount").cast(pl.Decimal(12, 2)),
        pl.col("created_at", "updated_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
    )
    gate = SchemaGate(load_schema("pipewarden.checks.schemas.shop:Orders"), NORMALIZE, ["order_id"])
    batches = list(frame.iter_slices(batch_size))
    start = time.perf_counter()
    gated = [gate.check(b) for b in batches]
    checked = time.perf_counter() - start
    held = sum(g.rejected_count for g in gated)
    keep = 0.0
    if warehouse and held:
        engine = sa.create_engine(warehouse)
        ensure_tables(engine)
        with engine.connect() as conn:
            start = time.perf_counter()
            for g in gated:
                with conn.begin():
                    gate.keep_rejected(conn, "orders", "bench-run", g)
            keep = time.perf_counter() - start
        engine.dispose()
    return {"check": checked, "keep_rejected": keep, "held": float(held), "rows": frame.height}


def checks_bench(rows: int = 1_000_000, repeat: int = 3, batch_size: int = 100_000) -> list[Any]:
    """Interleaved full loads with checks off and on; rows for `bench.common.report`."""
    times: dict[str, list[float]] = {k: [] for k in ("off", "on", "off_bad", "on_bad")}
    held = 0
    with (
        fresh_database(PG_ADMIN, "bench_chk_src") as source,
        fresh_database(PG_ADMIN, "bench_chk_wh") as target,
    ):
        make_sources(source, rows)
        for _ in range(repeat):
            for label, table, checks in (
                ("off", "orders", False),
                ("on", "orders", True),
                ("off_bad", "orders_bad", False),
                ("on_bad", "orders_bad", True),
            ):
                reset_target(target)
                took, run = _load(source, target, table, checks, batch_size)
                times[label].append(took)
                if label == "on_bad":
                    held = run.rows_quarantined
        reset_target(target)
        clean = gate_cost(source, "orders", batch_size, None)
        bad = gate_cost(source, "orders_bad", batch_size, target)
        from pipewarden.db.engines import cached_engine

        cached_engine.cache_clear()  # close pooled connections before the databases are dropped
    m = {k: statistics.median(v) for k, v in times.items()}
    per_million = 1_000_000 / rows
    return [
        ("full load, checks off", m["off"], 1.0, ""),
        ("full load, checks on", m["on"], m["on"] / m["off"], "≤ 1.15x checks off"),
        ("full load, 1% bad, checks off", m["off_bad"], 1.0, ""),
        (
            f"full load, 1% bad, checks on ({held:,} held)",
            m["on_bad"],
            m["on_bad"] / m["off_bad"],
            "≤ 1.25x checks off",
        ),
        ("gate.check alone, per 1M rows, clean", clean["check"] * per_million, None, ""),
        ("gate.check alone, per 1M rows, 1% bad", bad["check"] * per_million, None, ""),
        ("keep_rejected alone, per 1M rows, 1% bad", bad["keep_rejected"] * per_million, None, ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    rows = checks_bench(args.rows, args.repeat, args.batch_size)
    report(
        f"Schema checks on a full load: PostgreSQL → PostgreSQL, {args.rows:,} orders, "
        f"batches of {args.batch_size:,}, median of {args.repeat}",
        rows,
    )


if __name__ == "__main__":
    main()
