"""Alerts never block data in the flows: without a usable Slack token the sync runs, its alerts
wait in the outbox, and the flow run says once, as a warning in its log, why."""

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from pipewarden.flows.sync import sync_flow
from pipewarden.records.alerts import PENDING, alerts
from tests.fixtures.shop import ORDERS, Shop
from tests.fixtures.slack import TOKEN, FakeSlack

TOKEN_VARIABLE = "PIPEWARDEN_TEST_FLOW_SLACK_TOKEN"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.prefect
@pytest.mark.parametrize(
    ("token", "why"),
    [
        (None, f"environment variable {TOKEN_VARIABLE} is not set"),
        ("xoxb-revoked-0000", "Slack refused the token: invalid_auth"),
    ],
    ids=["unset", "revoked"],
)
def test_the_sync_flow_runs_and_its_alerts_wait_without_a_usable_token(
    prefect_harness: None,
    sqlite_url: Callable[[str], str],
    tmp_path: Path,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token: str | None,
    why: str,
) -> None:
    if token is None:
        monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(TOKEN_VARIABLE, token)
    shop = Shop(sqlite_url("shop"), sqlite_url("wh"))
    source = sa.create_engine(shop.source_url)
    ORDERS.metadata.create_all(source)
    table = {"source": "shop", "primary_key": ["order_id"], "cursor": "updated_at"}
    path = tmp_path / "pipewarden.yaml"
    slack = {
        "token": "${" + TOKEN_VARIABLE + "}",
        "default_channel": "#a",
        "base_url": fake_slack.url,
    }
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": shop.warehouse_url},
                "sources": {"shop": {"url": shop.source_url}},
                "tables": {"orders": table},
                "slack": {**slack, "retries": 0},
            }
        )
    )
    shop.add(4, minutes_ago=10)
    assert sync_flow(config_path=str(path))[0]["rows_loaded"] == 4
    with source.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN channel TEXT"))
    source.dispose()
    caplog.clear()

    (summary,) = sync_flow(config_path=str(path))  # a new column: a notice is raised

    assert summary["status"] == "success" and summary["schema_changes"]
    said = [w for w in _warnings(caplog) if "alerts not delivered" in w]
    assert len(said) == 1 and why in said[0] and "1 wait in the outbox" in said[0]
    assert TOKEN not in caplog.text
    assert fake_slack.posted == []
    warehouse = sa.create_engine(shop.warehouse_url)
    with warehouse.connect() as conn:
        waiting = conn.execute(sa.select(alerts.c.check, alerts.c.state)).all()
    warehouse.dispose()
    assert [tuple(w) for w in waiting] == [("schema", PENDING)]
