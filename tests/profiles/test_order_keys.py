"""Orders are credited to the customer whose key, written as text, their customer id equals
exactly; the others are counted, never credited elsewhere (PostgreSQL and SQLite)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.db.engines import make_engine
from pipewarden.dialects import dialect_for
from pipewarden.profiles.build import build_profiles
from pipewarden.profiles.monitor import watch_build
from tests.profiles.support import profile_rows, profiles_config, profiles_data, shop_tables

NOW = datetime.now(UTC)
#: Integer keys in customers; the orders' ids are text, some of them no key as written.
ORDERS = [("42", 10), ("042", 20), (" 42", 30), ("abc", 40), ("7", 5), ("42 ", 60)]


def _text_orders(engine: sa.Engine) -> sa.Table:
    customers, orders = shop_tables(order_key=sa.Text)
    customers.metadata.create_all(engine)
    then = NOW - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(customers),
            [{"customer_id": k, "email_consent": True, "updated_at": then} for k in (7, 42)],
        )
        conn.execute(
            sa.insert(orders),
            [
                {
                    "order_id": n,
                    "customer_id": c,
                    "amount": a,
                    "ordered_at": then,
                    "updated_at": then,
                }
                for n, (c, a) in enumerate(ORDERS)
            ],
        )
    return orders


@pytest.mark.parametrize("full_join", [True, False], ids=["full-join", "no-full-join"])
def test_an_order_naming_no_key_as_written_is_counted_not_credited(
    warehouse_url: str, full_join: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also where the database has no FULL JOIN (SQLite before 3.39): the same profiles and
    count, the orders naming no customer counted apart."""
    engine = make_engine(warehouse_url)
    monkeypatch.setattr(type(dialect_for(engine.dialect.name)), "full_join", full_join)
    orders = _text_orders(engine)
    config = profiles_config(warehouse_url)

    full = build_profiles(engine, config, as_of=NOW)

    rows = {
        r["customer_id"]: (r["frequency"], r["monetary"])
        for r in profile_rows(engine, config.profiles.table)
    }  # type: ignore[union-attr]
    assert rows == {"42": (1, 10.0), "7": (1, 5.0)}
    assert full.status == "ok"
    assert full.unknown_customer_orders == 4
    checks = {c.check: c for c in watch_build(engine, config, full)}
    assert checks["customer_keys"].status == "warn"
    assert "4 orders name no known customer" in (checks["customer_keys"].reason or "")

    with engine.begin() as conn:
        conn.execute(
            sa.insert(orders),
            [
                {
                    "order_id": 100,
                    "customer_id": "x9",
                    "amount": 1,
                    "ordered_at": NOW,
                    "updated_at": NOW,
                },
                {
                    "order_id": 101,
                    "customer_id": "7",
                    "amount": 2,
                    "ordered_at": NOW,
                    "updated_at": NOW,
                },
            ],
        )

    later = build_profiles(engine, config, as_of=NOW + timedelta(seconds=1))

    assert later.mode == "incremental" and later.status == "ok"
    assert later.unknown_customer_orders == 1  # among the orders changed since the last build
    rows = {
        r["customer_id"]: (r["frequency"], r["monetary"])
        for r in profile_rows(engine, config.profiles.table)
    }  # type: ignore[union-attr]
    assert rows == {"42": (1, 10.0), "7": (2, 7.0)}


def test_the_command_says_how_many_orders_name_no_customer(
    warehouse_url: str, tmp_path: Path, redis_prefix: str
) -> None:
    engine = make_engine(warehouse_url)
    _text_orders(engine)
    data = profiles_data(warehouse_url, api={"key_prefix": redis_prefix})
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(data))

    result = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert "4 orders name no known customer" in result.output, result.output
    assert result.exit_code == 1, result.output  # the data needs attention
