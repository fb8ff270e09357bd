"""A tiny SQLite shop source and a config over it (the sync writes its metrics itself)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.records.sync_runs import SyncRun
from pipewarden.sync.run import sync_table

ORDERS = sa.Table(
    "orders",
    sa.MetaData(),
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.Text),
    sa.Column("amount", sa.Numeric(12, 2)),
    sa.Column("updated_at", sa.DateTime, index=True),
)


@dataclass
class Shop:
    """A SQLite orders source; `add` inserts orders stamped `minutes_ago` before now."""

    source_url: str
    warehouse_url: str
    next_id: int = 1

    def add(self, count: int, minutes_ago: float, **values: Any) -> datetime:
        stamp = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        rows = [
            {
                "order_id": self.next_id + i,
                "status": "paid" if i % 4 else None,
                "amount": Decimal(10 + i % 7),
                "updated_at": stamp.replace(tzinfo=None),
                **values,
            }
            for i in range(count)
        ]
        engine = sa.create_engine(self.source_url)
        with engine.begin() as conn:
            conn.execute(ORDERS.insert(), rows)
        engine.dispose()
        self.next_id += count
        return stamp

    def config(self, **table: Any) -> PipewardenConfig:
        options = {
            "source": "shop",
            "primary_key": ["order_id"],
            "cursor": "updated_at",
            "batch_size": 7,
            "freshness": {"warn_after": "30m", "error_after": "2h"},
            **table,
        }
        return parse_config(
            {
                "warehouse": {"url": self.warehouse_url},
                "sources": {"shop": {"url": self.source_url}},
                "tables": {"orders": options},
            },
            Path("t.yaml"),
        )

    def sync(self, config: PipewardenConfig) -> SyncRun:
        return sync_table(config, "orders")


@pytest.fixture
def shop(warehouse_url: str, sqlite_url: Callable[[str], str]) -> Shop:
    source = sqlite_url("shop")
    engine = sa.create_engine(source)
    ORDERS.metadata.create_all(engine)
    engine.dispose()
    return Shop(source, warehouse_url)
