"""A reconciliation's keys reach Slack as salted hash prefixes when the key column is customer
data: the notice of a repair that went back, and the failing alert of a row it could not fix,
read back from the local Slack."""

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipewarden.alerts.deliver import deliver_pending
from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.config.pii import SALT_ENV, Redactor
from pipewarden.flows.reconcile import artifact_rows, summary
from pipewarden.reconcile.run import ReconcileOptions, reconcile_table, shown_result
from pipewarden.records.pii_salt import forget_salts
from pipewarden.sync.run import SyncOptions, sync_table
from tests.fixtures.slack import TOKEN, FakeSlack
from tests.reconcile.support import copy_to_warehouse, create_source, execute

BACK_3_DAYS = (
    "UPDATE items SET amount = 7, updated_at = updated_at - interval '3 days' WHERE id = 3"
)


@pytest.fixture(autouse=True)
def _no_salt_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SALT_ENV, raising=False)
    forget_salts()


def _synced(make_url: Any, slack_url: str) -> tuple[PipewardenConfig, str, str]:
    source_url, warehouse_url = make_url("postgresql", "src"), make_url("postgresql", "wh")
    create_source(source_url, "postgresql").dispose()
    items = {
        "source": "src",
        "primary_key": ["id"],
        "cursor": "updated_at",
        "lookback": "0s",
        "columns": {"id": {"pii": True}},  # a customer number
    }
    config = parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {"items": items},
            "slack": {"token": TOKEN, "default_channel": "#alerts", "base_url": slack_url},
        },
        Path("test.yaml"),
    )
    copy_to_warehouse(config)
    return config, source_url, warehouse_url


def _hide(warehouse_url: str) -> tuple[Redactor, str]:
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        salt = conn.execute(sa.text("SELECT value FROM pipewarden_secrets")).scalar_one()
    engine.dispose()
    return Redactor(salt.encode()), salt


def _bodies(config: PipewardenConfig, fake_slack: FakeSlack) -> list[str]:
    report = deliver_pending(config)
    assert report.sent, report
    return [json.dumps(p) for p in fake_slack.posted]


def test_a_repair_gone_back_names_its_customer_keys_by_prefix_in_slack(make_url, fake_slack):
    config, source_url, warehouse_url = _synced(make_url, fake_slack.url)
    execute(source_url, BACK_3_DAYS)

    report = reconcile_table(config, "items", ReconcileOptions(repair=True))

    assert report.clean
    hide, salt = _hide(warehouse_url)
    [notice] = [b for b in _bodies(config, fake_slack) if "went backwards" in b]
    assert f"keys {hide.prefix(3)}" in notice and "keys 3" not in notice
    assert salt not in notice


def test_a_row_the_repair_could_not_fix_is_named_by_prefix_in_the_failing_alert(
    make_url, fake_slack
):
    """A trigger keeps row 3 as it is: the alert names the remaining key, hidden."""
    config, source_url, warehouse_url = _synced(make_url, fake_slack.url)
    execute(source_url, "UPDATE items SET qty = 11, updated_at = now() WHERE id = 3")
    execute(
        warehouse_url,
        "CREATE FUNCTION keep_three() RETURNS trigger AS $$ BEGIN "
        "IF NEW.id = 3 THEN RETURN OLD; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER keep BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION keep_three()",
    )

    report = reconcile_table(config, "items", ReconcileOptions(repair=True))

    assert report.remaining == 1
    hide, salt = _hide(warehouse_url)
    [alert] = [b for b in _bodies(config, fake_slack) if "remain" in b]
    assert f"(keys {hide.prefix(3)})" in alert and "keys 3" not in alert
    assert salt not in alert
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        details = conn.execute(sa.text("SELECT details FROM pipewarden_alerts")).scalars().all()
    engine.dispose()
    stored = [json.loads(d) for d in details if d and "remaining_keys" in d]
    assert stored and stored[0]["remaining_keys"] == [[hide.prefix(3)]]


def test_the_flows_artifact_and_log_name_customer_keys_by_prefix(make_url, fake_slack):
    """What `reconcile_task` returns, logs and publishes: the differing keys hidden, the
    report's own `as_dict` (the CLI's `--json`) as it was."""
    config, source_url, warehouse_url = _synced(make_url, fake_slack.url)
    execute(source_url, "UPDATE items SET qty = 11, updated_at = now() WHERE id = 3")
    execute(source_url, "DELETE FROM items WHERE id = 5")

    result = reconcile_table(config, "items", ReconcileOptions()).as_dict()
    shown = shown_result(config, "items", result)

    hide, salt = _hide(warehouse_url)
    assert (result["changed"][0]["key"], result["extra"]) == ([3], [[5]])
    assert shown["changed"][0]["key"] == [hide.prefix(3)] and shown["extra"] == [[hide.prefix(5)]]
    rows = json.dumps(artifact_rows(shown)) + summary(shown)
    assert hide.prefix(3) in rows and hide.prefix(5) in rows
    assert "[3]" not in rows and "[5]" not in rows and salt not in rows


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_key_problems_name_customer_keys_by_prefix_in_the_run_and_its_alert(make_url, kind):
    """A source without a key constraint holds customer C-1001 twice: the run's error (which
    the dashboards show) and the alert name it hidden."""
    source_url, warehouse_url = make_url(kind, "src"), make_url(kind, "wh")
    execute(
        source_url,
        "CREATE TABLE people (id VARCHAR(20), name TEXT, updated_at TIMESTAMP)",
        "INSERT INTO people VALUES ('C-1001', 'Ada', '2025-03-01 12:00:00'), "
        "('C-1001', 'Ada L.', '2025-03-01 12:00:00'), ('C-1002', 'Bo', '2025-03-01 12:01:00')",
    )
    people = {
        "source": "src",
        "primary_key": ["id"],
        "cursor": "updated_at",
        "columns": {"id": {"pii": True}},
    }
    config = parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {"people": people},
        },
        Path("test.yaml"),
    )
    sync_table(config, "people", SyncOptions(full_refresh=True))

    reconcile_table(config, "people", ReconcileOptions())

    hide, salt = _hide(warehouse_url)
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        [error] = conn.execute(sa.text("SELECT error FROM pipewarden_reconcile_runs")).scalars()
        reasons = conn.execute(sa.text("SELECT reason FROM pipewarden_alerts")).scalars().all()
    engine.dispose()
    [alert] = [r for r in reasons if "more than one source row" in (r or "")]
    for text in (error, alert):
        assert json.dumps([hide.prefix("C-1001")]) in text
        assert "C-1001" not in text and salt not in text
