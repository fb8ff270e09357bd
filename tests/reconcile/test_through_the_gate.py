"""Reconciliation of a table with checks: it compares what the sync would load, not raw rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.db.engines import cached_engine
from pipewarden.reconcile.run import ReconcileOptions, reconcile_table
from pipewarden.sync.run import SyncOptions, sync_table
from tests.checks.validation.support import ORDERS

T0 = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)


def orders(engine: sa.Engine) -> sa.Table:
    ORDERS.create(engine)
    return ORDERS


def row(i: int, currency: str = "EUR", amount: str = "10.00") -> dict[str, object]:
    return {
        "order_id": i,
        "customer_id": 7,
        "status": "paid",
        "currency": currency,
        "amount": Decimal(amount),
        "created_at": T0,
        "updated_at": T0 + timedelta(seconds=i),
    }


@pytest.mark.parametrize("warehouse_kind", ["sqlite", "postgresql"])
def test_normalized_rows_are_equal_and_rejected_rows_are_held_not_repaired(
    sqlite_url, postgres, warehouse_kind
):
    source_url = sqlite_url("shop")
    warehouse_url = sqlite_url("wh") if warehouse_kind == "sqlite" else postgres.new("wh")
    source = cached_engine(source_url)
    table = orders(source)
    with source.begin() as conn:
        conn.execute(
            table.insert(), [row(1, currency="eur"), row(2), row(3, amount="-5.00"), row(4), row(5)]
        )
    config = parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"shop": {"url": source_url}},
            "tables": {
                "orders": {
                    "source": "shop",
                    "primary_key": ["order_id"],
                    "cursor": "updated_at",
                    "schema": "pipewarden.checks.schemas.shop:Orders",
                    "normalize": {"currency": ["currency_code"]},
                }
            },
        },
        Path("test.yaml"),
    )
    run = sync_table(config, "orders", SyncOptions())
    assert (run.rows_loaded, run.rows_quarantined) == (4, 1)
    with source.begin() as conn:  # a hard delete the cursor cannot see
        conn.execute(table.delete().where(table.c.order_id == 5))
    found = reconcile_table(config, "orders")
    assert [d.key[0] for d in found.diff.extra] == [5]
    assert found.diff.missing == [] and found.diff.changed == []  # 'eur' loaded as 'EUR'
    assert [k[0] for k in found.held] == [3]  # the negative amount stays in quarantine
    assert found.normalized == 1
    repaired = reconcile_table(config, "orders", ReconcileOptions(repair=True))
    assert (repaired.repair.upserted, repaired.repair.deleted, repaired.remaining) == (0, 1, 0)
    with cached_engine(warehouse_url).connect() as conn:
        ids = conn.execute(sa.text("SELECT order_id FROM orders ORDER BY 1")).scalars().all()
        currency = conn.execute(sa.text("SELECT currency FROM orders WHERE order_id = 1")).scalar()
    assert ids == [1, 2, 4] and currency == "EUR"
