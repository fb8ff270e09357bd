"""Emails and phone numbers quoted in an alert (a driver's error naming a key, a reason) are
kept in the outbox and posted to Slack as their hash prefixes, on SQLite and PostgreSQL."""

import json

import pytest
import sqlalchemy as sa

from pipewarden.alerts.deliver import deliver_pending
from pipewarden.config.pii import SALT_ENV, Redactor
from pipewarden.db.engines import cached_engine
from pipewarden.records.pii_salt import forget_salts
from tests.alerts.support import NOW, alert_config, finding, outbox, raise_now
from tests.fixtures.slack import FakeSlack

EMAIL, PHONE = "grace.hopper@example.com", "+1 (202) 555-0143"


@pytest.fixture(autouse=True)
def _no_salt_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SALT_ENV, raising=False)
    forget_salts()


def test_quoted_customer_values_reach_slack_as_prefixes(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    error = f"duplicate key value violates unique constraint: (email)=({EMAIL}), phone {PHONE}"
    raise_now(
        config,
        finding(check="sync", status="failed", reason=error, details={"error": error}),
        finding("customers", reason="newest row 4h 00m old", observed=14_400.0),
    )

    deliver_pending(config, now=NOW)

    with cached_engine(warehouse_url).connect() as conn:
        salt = conn.execute(sa.text("SELECT value FROM pipewarden_secrets")).scalar_one()
    hide = Redactor(salt.encode())
    bodies = {p["channel"]: json.dumps(p) for p in fake_slack.posted}
    sync = bodies["#shop-data"]
    assert hide.prefix(EMAIL) in sync and hide.prefix(PHONE) in sync
    assert EMAIL not in sync and "555-0143" not in sync and salt not in sync
    assert "newest row 4h 00m old" in bodies["#crm-data"]  # nothing to hide: as written
    [stored] = [a for a in outbox(config) if a.evidence.check == "sync"]
    assert EMAIL not in (stored.evidence.reason or "") + json.dumps(stored.details)
