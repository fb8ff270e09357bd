"""The flows deliver what their stage raised; the delivery task returns plain counts."""

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from pipewarden.flows.alerts import deliver_alerts_task
from pipewarden.flows.checks import checks_flow
from pipewarden.verdict import NeedsAttention
from tests.fixtures.shop import ORDERS, Shop
from tests.fixtures.slack import TOKEN, FakeSlack


def _shop_with_slack(
    sqlite_url: Callable[[str], str], tmp_path: Path, slack_url: str
) -> tuple[Shop, str]:
    shop = Shop(sqlite_url("shop"), sqlite_url("wh"))
    engine = sa.create_engine(shop.source_url)
    ORDERS.metadata.create_all(engine)
    engine.dispose()
    table = {"source": "shop", "primary_key": ["order_id"], "cursor": "updated_at"}
    config = {
        "warehouse": {"url": shop.warehouse_url},
        "sources": {"shop": {"url": shop.source_url}},
        "tables": {"orders": {**table, "owner": "#shop-data", "freshness": {"error_after": "2h"}}},
        "slack": {"token": TOKEN, "default_channel": "#alerts", "base_url": slack_url},
    }
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return shop, str(path)


def test_the_delivery_task_returns_counts(
    sqlite_url: Callable[[str], str], tmp_path: Path, fake_slack: FakeSlack
) -> None:
    from pipewarden.checks.monitoring.run import run_checks
    from pipewarden.config import load_config

    shop, path = _shop_with_slack(sqlite_url, tmp_path, fake_slack.url)
    shop.add(10, minutes_ago=180)
    shop.sync(load_config(path))
    run_checks(load_config(path))
    counts = deliver_alerts_task.fn(path)
    assert counts == {
        "configured": True,
        "sent": 1,
        "retrying": 0,
        "failed": 0,
        "waiting": 0,
        "stopped": None,
    }


@pytest.mark.prefect
def test_the_checks_flow_delivers_what_it_raised(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path, fake_slack: FakeSlack
) -> None:
    from pipewarden.config import load_config

    shop, path = _shop_with_slack(sqlite_url, tmp_path, fake_slack.url)
    shop.add(10, minutes_ago=180)
    shop.sync(load_config(path))
    with pytest.raises(NeedsAttention) as failed:  # a freshness error fails the run
        checks_flow(config_path=path)
    rows = failed.value.result
    assert any(r["check"] == "freshness" and r["status"] == "error" for r in rows)
    (message,) = fake_slack.posted
    assert message["channel"] == "#shop-data" and "orders · freshness: error" in message["text"]
    context = message["blocks"][-1]["elements"][0]["text"]
    assert "pipewarden alert 1" in context


@pytest.mark.prefect
def test_a_configuration_error_in_delivery_leaves_the_flow_its_own_error(
    prefect_harness: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect import flow

    from pipewarden.flows.alerts import deliver_after

    broken = tmp_path / "pipewarden.yaml"
    broken.write_text("warehouse: {url: 'postgresql://pw:hunter2@h/db'}\nsources: [\n")

    @flow
    def failing_stage() -> None:
        try:
            raise RuntimeError("the stage's own failure")
        finally:
            deliver_after(str(broken))

    with pytest.raises(RuntimeError, match="the stage's own failure"):
        failing_stage()
    skipped = [r.getMessage() for r in caplog.records if "delivery skipped" in r.getMessage()]
    assert len(skipped) == 1 and "ConfigError" in skipped[0] and str(broken) in skipped[0]
    assert "hunter2" not in caplog.text
