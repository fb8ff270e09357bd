"""Sources, configs and warehouses for the row validation and quarantine tests."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.records.sync_runs import SyncRun
from pipewarden.sync.run import SyncOptions, sync_table

BASE = datetime(2025, 3, 1, 12, 0)
NOW = datetime.now(UTC).replace(microsecond=0)
#: An orders batch as the sync reads it, for tests that call the gate directly.
BATCH_SCHEMA = {
    "order_id": pl.Int64,
    "customer_id": pl.Int64,
    "status": pl.String,
    "currency": pl.String,
    "amount": pl.Decimal(12, 2),
    "created_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
}

ORDERS = sa.Table(
    "orders",
    sa.MetaData(),
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.Integer),
    sa.Column("status", sa.Text),
    sa.Column("currency", sa.String(3)),
    sa.Column("amount", sa.Numeric(12, 2)),
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, index=True),
)


def order(order_id: int, **changes: Any) -> dict[str, Any]:
    """A valid order, `order_id` minutes after BASE; `changes` make it bad."""
    row: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": 100 + order_id,
        "status": "paid",
        "currency": "EUR",
        "amount": Decimal("19.99"),
        "created_at": BASE,
        "updated_at": BASE + timedelta(minutes=order_id),
    }
    row.update(changes)
    return row


def order_batch(*changes: dict[str, Any]) -> pl.DataFrame:
    """Valid orders 1, 2, … as a polars batch, each changed by its dict."""
    base = {
        "customer_id": 7,
        "status": "paid",
        "currency": "EUR",
        "amount": Decimal("10.00"),
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(hours=1),
    }
    rows = [{"order_id": i + 1, **base, **c} for i, c in enumerate(changes)]
    return pl.DataFrame(rows, schema=BATCH_SCHEMA)


def future() -> datetime:
    """A source timestamp a day ahead of now (naive UTC, as the source stores it)."""
    return (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None)


def make_source(url: str, table: sa.Table, rows: list[dict[str, Any]]) -> sa.Engine:
    engine = sa.create_engine(url)
    table.create(engine, checkfirst=True)
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    return engine


def make_config(
    source_url: str, warehouse_url: str, table: str = "orders", **options: Any
) -> PipewardenConfig:
    keys = {"orders": "order_id", "customers": "customer_id", "events": "event_id"}
    cursor = "occurred_at" if table == "events" else "updated_at"
    settings = {
        "source": "src",
        "primary_key": keys[table],
        "cursor": cursor,
        "batch_size": 4,
        **options,
    }
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {table: settings},
        },
        Path("test.yaml"),
    )


def sync(config: PipewardenConfig, table: str = "orders") -> SyncRun:
    return sync_table(config, table, SyncOptions())


def balanced(run: SyncRun) -> bool:
    return run.rows_read == run.rows_loaded + run.rows_unchanged + run.rows_quarantined


def held(warehouse: str, table: str = "orders", status: str | None = "held") -> list[Any]:
    from pipewarden.records.quarantine import entries

    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as conn:
            return entries(conn, table, status=status)
    finally:
        engine.dispose()


def warehouse_keys(warehouse: str, table: str = "orders", key: str = "order_id") -> list[int]:
    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn)
            return [r[0] for r in conn.execute(sa.select(t.c[key]).order_by(t.c[key]))]
    finally:
        engine.dispose()


def query(warehouse: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def with_engine(warehouse: str, use: Callable[[sa.Engine], Any]) -> Any:
    """Call `use` with an engine that is disposed afterwards (no pooled connection lingers)."""
    engine = sa.create_engine(warehouse)
    try:
        return use(engine)
    finally:
        engine.dispose()


def scalar(warehouse: str, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()
