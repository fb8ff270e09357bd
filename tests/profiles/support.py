"""What the profiles tests share: a shop's customers and orders in a warehouse, a config."""

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.config.load import parse_config
from tests.fixtures.slack import TOKEN

REDIS_URL = "redis://127.0.0.1:6379/0"


def shop_tables(
    suffix: str = "",
    key: type[sa.types.TypeEngine[Any]] = sa.Integer,
    order_key: type[sa.types.TypeEngine[Any]] | None = None,
    amount: sa.types.TypeEngine[Any] | None = None,
) -> tuple[sa.Table, sa.Table]:
    """The customers and orders, keyed by `key` (a shop's ids may be text); the orders' customer
    column of `order_key` when it differs, their amount of `amount`."""
    metadata = sa.MetaData()
    customers = sa.Table(
        f"customers{suffix}",
        metadata,
        sa.Column("customer_id", key, primary_key=True),
        sa.Column("email_consent", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    orders = sa.Table(
        f"orders{suffix}",
        metadata,
        sa.Column("order_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", order_key or key, nullable=False),
        sa.Column("amount", amount if amount is not None else sa.Numeric(12, 2), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    return customers, orders


def unique_suffix() -> str:
    return "_" + uuid.uuid4().hex[:8]


def profiles_config(
    warehouse_url: str,
    suffix: str = "",
    cart: bool = False,
    synced: bool = False,
    slack_url: str | None = None,
    **extra: Any,
) -> PipewardenConfig:
    """The shop's profiles (see `profiles_data`), parsed."""
    data = profiles_data(warehouse_url, suffix, cart, synced, slack_url, **extra)
    return parse_config(data, Path("pipewarden.yaml"))


def profiles_data(
    warehouse_url: str,
    suffix: str = "",
    cart: bool = False,
    synced: bool = False,
    slack_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The shop's profiles; with `synced`, the customers and orders are configured tables
    (from a source named `shop`), as a reconciliation's repairs and the checks name them."""
    profiles: dict[str, Any] = {
        "table": f"customer_profiles{suffix}",
        "customers": {
            "table": f"customers{suffix}",
            "key": "customer_id",
            "consent": "email_consent",
        },
        "orders": {"table": f"orders{suffix}", "amount": "amount", "updated_at": "updated_at"},
        "window": "30d",
        "segments": {
            "champions": "r >= 4 and f >= 4",
            "big_spenders": "m >= 5",
            "at_risk": "r <= 2",
        },
        "default_segment": "other",
        **extra,
    }
    data: dict[str, Any] = {
        "warehouse": {"url": warehouse_url},
        "sources": {},
        "tables": {},
        "profiles": profiles,
    }
    if slack_url is not None:
        data["slack"] = {"token": TOKEN, "default_channel": "#alerts", "base_url": slack_url}
    if synced:
        data["sources"] = {"shop": {"url": warehouse_url}}
        data["tables"] = {
            f"{name}{suffix}": {"source": "shop", "primary_key": [key], "cursor": "updated_at"}
            for name, key in (("customers", "customer_id"), ("orders", "order_id"))
        }
    if cart:
        data["streams"] = {
            "shop": {
                "signing": {"scheme": "shopify", "secrets": "test-secret"},
                "event_types": ["cart.updated", "order.paid"],
                "subject": "json:customer_id",
                "latest_table": f"shop_latest{suffix}",
            }
        }
        profiles["cart"] = {"stream": "shop", "event_types": ["cart.updated"]}
    return data


def profile_rows(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.customer_id)).mappings().all()
    return [_plain(dict(row)) for row in rows]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if isinstance(value, float) or type(value).__name__ == "Decimal":
            value = round(float(value), 2)
        out[key] = value
    return out
