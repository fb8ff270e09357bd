"""`pipewarden sync` as a user runs it: exit codes, the summary, secrets kept out of output."""

from datetime import timedelta
from decimal import Decimal

import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.db.engines import cached_engine
from tests.sync.support import naive_if_needed, orders_table, utc

runner = CliRunner()


def write_config(tmp_path, source_url, warehouse_url):
    path = tmp_path / "pipewarden.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse_url},
                "sources": {"shop": {"url": source_url}},
                "tables": {
                    "orders": {
                        "source": "shop",
                        "primary_key": ["order_id"],
                        "cursor": "updated_at",
                    }
                },
            }
        )
    )
    return path


def test_sync_prints_a_summary_and_exits_zero(tmp_path, make_url):
    source_url = make_url("mariadb", "src")
    source = cached_engine(source_url)
    orders = orders_table()
    orders.create(source)
    with source.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "order_id": i,
                    "status": "paid",
                    "amount": Decimal("2.50"),
                    "updated_at": naive_if_needed(source, utc(2026, 3, 1) + timedelta(seconds=i)),
                }
                for i in range(1, 21)
            ],
        )
    config = write_config(tmp_path, source_url, make_url("sqlite", "wh"))
    result = runner.invoke(app, ["sync", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "orders" in result.output and "20" in result.output


def test_wrong_password_is_a_clear_error_without_the_password(tmp_path, make_url):
    good = make_url("mariadb", "src")
    bad = good.replace("root@", "root:Hunter2Secret@")
    config = write_config(tmp_path, bad, make_url("sqlite", "wh"))
    result = runner.invoke(app, ["sync", "--config", str(config)])
    assert result.exit_code == 2
    assert "Access denied" in result.output
    assert "cannot connect to mysql+pymysql://root:***@127.0.0.1" in result.output
    assert "Hunter2Secret" not in result.output


def test_malformed_config_is_a_clear_error(tmp_path):
    path = tmp_path / "pipewarden.yaml"
    path.write_text(
        "warehouse: {url: 'sqlite:///x'}\nsources: {}\ntables:\n  orders: {source: "
        "shop, cursor: updated_at}\n"
    )
    result = runner.invoke(app, ["sync", "--config", str(path)])
    assert result.exit_code == 2
    assert "tables.orders.primary_key: Field required" in result.output


def test_unknown_table_is_named(tmp_path, make_url):
    config = write_config(tmp_path, make_url("sqlite", "src"), make_url("sqlite", "wh"))
    result = runner.invoke(app, ["sync", "customers", "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown table(s): customers" in result.output
