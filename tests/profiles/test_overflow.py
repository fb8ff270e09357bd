"""A customer's monetary value too large for the profile table fails the build naming the
column and its limit, not with the database's bare "numeric field overflow" (PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import build_profiles
from tests.profiles.support import profiles_config, profiles_data, shop_tables


def _huge_order(engine: sa.Engine, customer: int) -> None:
    customers, orders = shop_tables(amount=sa.Numeric(30, 2))
    customers.metadata.create_all(engine)
    then = datetime.now(UTC) - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(customers),
            [{"customer_id": customer, "email_consent": True, "updated_at": then}],
        )
        conn.execute(
            sa.insert(orders),
            [
                {
                    "order_id": 1,
                    "customer_id": customer,
                    "amount": 10**20,
                    "ordered_at": then,
                    "updated_at": then,
                }
            ],
        )


def test_an_amount_too_large_for_monetary_names_the_column(postgres, tmp_path: Path) -> None:
    url = postgres.new("pwoverflow")
    engine = make_engine(url)
    _huge_order(engine, 5)
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(profiles_data(url)))

    with pytest.raises(ValueError, match=r"customer_profiles\.monetary") as raised:
        build_profiles(engine, profiles_config(url))
    cli = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert "numeric(18,2)" in str(raised.value)
    assert "orders.amount" in str(raised.value)
    assert cli.exit_code == 2
    assert "customer_profiles.monetary" in cli.output
