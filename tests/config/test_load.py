"""Loading pipewarden.yaml: expansion from the environment, and errors that name file and key."""

from datetime import timedelta
from pathlib import Path

import pytest

from pipewarden.config import ConfigError, load_config

GOOD = """
warehouse:
  url: ${WH_URL:-sqlite:///wh.sqlite}
sources:
  shop:
    url: postgresql+psycopg://app:${SHOP_PASSWORD}@127.0.0.1/shop
tables:
  orders:
    source: shop
    primary_key: order_id
    cursor: updated_at
    lookback: 5m
    schedule: realtime
    freshness: {warn_after: 30m, error_after: 2h}
    owner: "#shop-data"
  order_lines:
    source: shop
    source_table: lines
    primary_key: [order_id, line_no]
    cursor: version
    lookback: 100
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipewarden.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_loads_with_defaults_and_expanded_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_PASSWORD", "s3cret")
    config = load_config(write(tmp_path, GOOD))
    orders = config.tables["orders"]
    assert orders.primary_key == ["order_id"]
    assert orders.source_table == orders.target_table == "orders"
    assert orders.lookback == timedelta(minutes=5)
    assert orders.freshness.error_after == timedelta(hours=2)
    lines = config.tables["order_lines"]
    assert (lines.source_table, lines.target_table, lines.lookback) == ("lines", "order_lines", 100)
    assert config.warehouse.url == "sqlite:///wh.sqlite"
    assert "s3cret" in config.sources["shop"].url
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.sources["shop"])


def test_config_path_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_PASSWORD", "x")
    monkeypatch.setenv("PIPEWARDEN_CONFIG", str(write(tmp_path, GOOD)))
    assert "orders" in load_config().tables


@pytest.mark.parametrize(
    "text,expected",
    [
        (GOOD.replace("lookback: 5m", "lookback: soon"), "tables.orders.lookback: not a duration"),
        (
            GOOD.replace("lookback: 5m", "lookback: 99999999999999999999d"),
            "tables.orders.lookback: too long a duration",
        ),
        (GOOD.replace("lookback: 5m", "lookback: 1.0e+300"), "tables.orders.lookback: too long"),
        (
            GOOD.replace(
                "source: shop\n    primary_key: order_id", "source: crm\n    primary_key: order_id"
            ),
            "unknown source 'crm'",
        ),
        (GOOD.replace("schedule: realtime", "schedule: weekly"), "tables.orders.schedule"),
        (GOOD.replace("    cursor: updated_at\n", "", 1), "tables.orders.cursor: Field required"),
        (
            GOOD.replace("warn_after: 30m, error_after: 2h", "warn_after: 3h, error_after: 2h"),
            "warn_after must not be longer than error_after",
        ),
        (GOOD + "  bad: [unclosed\n", "line"),
        (GOOD.replace("owner:", "ownr:"), "tables.orders.ownr: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_file_names_the_file_the_key_and_the_reason(
    tmp_path, monkeypatch, text, expected
):
    monkeypatch.setenv("SHOP_PASSWORD", "s3cret")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)
    assert "s3cret" not in str(error.value)


def test_an_owner_mapping_in_error_is_named_by_its_own_key_only(tmp_path, monkeypatch):
    """A mapping owner with a mention not in Slack's form: one line naming
    `tables.orders.owner.mention`, not also "owner.str: Input should be a valid string" (the
    other spelling of `owner`) nor the class name of the model."""
    monkeypatch.setenv("SHOP_PASSWORD", "x")
    text = GOOD.replace('owner: "#shop-data"', 'owner: {channel: "#shop-data", mention: [U024]}')
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("  tables.orders.owner.mention: 'U024' is not a Slack mention")


def test_a_missing_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="sources.shop.url: environment variable SHOP_PASSWORD"):
        load_config(write(tmp_path, GOOD))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: configuration file not found"):
        load_config(tmp_path / "nope.yaml")
