"""Delivering the outbox to a local Slack: outages lose nothing, 429s wait, refusals end."""

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pipewarden.alerts.deliver import deliver_pending, undelivered_warning
from pipewarden.alerts.findings import PASSING
from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import FAILED, PENDING, SENT, claim
from pipewarden.records.metrics import metrics
from tests.alerts.support import NOW, alert_config, finding, outbox, raise_now
from tests.fixtures.slack import FakeSlack


def test_an_alert_is_posted_with_blocks_and_text_and_marked_sent(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    raise_now(config, finding(reason="newest row 4h 00m old", observed=14_400.0))
    report = deliver_pending(config, now=NOW)
    assert (len(report.sent), report.failed, report.retrying) == (1, [], [])
    (message,) = fake_slack.posted
    assert message["channel"] == "#shop-data"
    assert "orders · freshness" in message["text"] and "4h 00m old" in message["text"]
    assert message["blocks"][0]["type"] == "header"
    (alert,) = outbox(config)
    assert (alert.state, alert.attempts, alert.slack_channel) == (SENT, 1, "C0SHOP")
    assert alert.slack_ts and alert.sent_at == NOW
    assert deliver_pending(config, now=NOW).sent == []  # sent once, never again
    assert len(fake_slack.seen) == 1


def test_an_outage_keeps_alerts_and_the_next_run_sends_each_exactly_once(
    warehouse_url: str, fake_slack: FakeSlack, closed_port_url: str
) -> None:
    down = alert_config(warehouse_url, closed_port_url)
    raise_now(down, finding("orders"), finding("customers"), finding("events"))
    report = deliver_pending(down, now=NOW)
    assert report.sent == [] and len(report.retrying) == 1 and report.stopped
    first = outbox(down)
    assert [a.state for a in first] == [PENDING] * 3
    assert "cannot reach Slack" in (first[0].last_error or "")
    assert first[0].next_attempt_at == NOW + timedelta(minutes=1)
    assert [a.attempts for a in first] == [1, 0, 0]

    up = alert_config(warehouse_url, fake_slack.url)
    assert deliver_pending(up, now=NOW).sent == [a.id for a in first[1:]]  # #shop-data waits
    later = deliver_pending(up, now=NOW + timedelta(minutes=2))
    assert later.sent == [first[0].id]
    assert deliver_pending(up, now=NOW + timedelta(hours=1)).sent == []
    assert sorted(p["channel"] for p in fake_slack.posted) == ["#alerts", "#crm-data", "#shop-data"]
    assert [a.state for a in outbox(up)] == [SENT] * 3


def test_a_rate_limit_is_retried_after_retry_after(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    raise_now(config, finding())
    fake_slack.fail(429, Retry_After="1")
    report = deliver_pending(config, now=NOW)
    assert len(report.sent) == 1
    assert [s.status for s in fake_slack.seen] == [429, 200]  # the client came back by itself
    assert fake_slack.seen[0].payload == fake_slack.seen[1].payload


def test_rate_limited_beyond_the_retries_the_alert_waits_at_least_retry_after(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, retries=0)
    raise_now(config, finding(), finding("customers"))
    fake_slack.fail(429, Retry_After="120")
    report = deliver_pending(config, now=NOW)
    assert report.sent == [] and len(report.retrying) == 1
    assert len(fake_slack.seen) == 1  # the run stopped: the second alert was not tried
    first, second = outbox(config)
    assert first.state == PENDING and "429" in (first.last_error or "")
    assert first.next_attempt_at == NOW + timedelta(seconds=120)
    assert (second.state, second.attempts) == (PENDING, 0)


def test_server_errors_are_retried_by_the_client_then_left_in_the_outbox(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, retries=1)
    raise_now(config, finding())
    fake_slack.fail(503)
    assert len(deliver_pending(config, now=NOW).sent) == 1
    assert [s.status for s in fake_slack.seen] == [503, 200]

    raise_now(config, finding("customers"))
    fake_slack.fail(500)
    fake_slack.fail(500)
    report = deliver_pending(config, now=NOW)
    assert report.sent == [] and len(report.retrying) == 1
    assert (outbox(config)[-1].last_error or "").startswith("HTTP 500 from Slack: ")


def test_a_permanent_refusal_is_marked_and_not_tried_again(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, default_channel="#gone")
    raise_now(config, finding("events"), finding("orders"))  # events go to the default channel
    report = deliver_pending(config, now=NOW)
    assert len(report.failed) == 1 and len(report.sent) == 1 and report.stopped is None
    gone, shop = outbox(config)
    assert (gone.state, gone.last_error, gone.attempts) == (FAILED, "channel_not_found", 1)
    assert shop.state == SENT
    tried = len(fake_slack.seen)
    deliver_pending(config, now=NOW + timedelta(days=1))
    assert len(fake_slack.seen) == tried


def test_a_bad_token_leaves_the_alerts_waiting_and_stops_the_run(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, token="xoxb-revoked")
    raise_now(config, finding("orders"), finding("customers"))
    report = deliver_pending(config, now=NOW)
    assert report.failed == [] and report.stopped and "invalid_auth" in report.stopped
    first, second = outbox(config)
    # The token is at fault, not the alert: it waits, due at once, for a token that works.
    assert (first.state, first.last_error, first.next_attempt_at) == (PENDING, "invalid_auth", NOW)
    assert (second.state, second.attempts) == (PENDING, 0)
    assert len(fake_slack.seen) == 1
    fixed = alert_config(warehouse_url, fake_slack.url)
    assert len(deliver_pending(fixed, now=NOW).sent) == 2


def test_a_token_not_set_tries_nothing_and_says_why(
    warehouse_url: str, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPEWARDEN_NO_SUCH_TOKEN", raising=False)
    config = alert_config(warehouse_url, fake_slack.url, token="${PIPEWARDEN_NO_SUCH_TOKEN}")
    assert config.slack is not None
    assert "PIPEWARDEN_NO_SUCH_TOKEN is not set" in (config.slack.token_problem or "")
    raise_now(config, finding("orders"))
    counts = deliver_pending(config, now=NOW).as_dict()
    assert (counts["waiting"], fake_slack.seen) == (1, [])
    warning = undelivered_warning(counts) or ""
    assert "alerts not delivered, 1 wait in the outbox: no usable Slack token" in warning
    assert "PIPEWARDEN_NO_SUCH_TOKEN is not set" in warning
    assert [a.state for a in outbox(config)] == [PENDING]


def test_order_is_kept_per_channel(warehouse_url: str, fake_slack: FakeSlack) -> None:
    config = alert_config(warehouse_url, fake_slack.url, retries=0)
    raise_now(config, finding("orders", "freshness"))
    raise_now(config, finding("customers", "freshness"))
    raise_now(config, finding("orders", "sync", status="failed"))
    fake_slack.fail(503)
    deliver_pending(config, now=NOW)  # the first orders alert fails; the run stops
    deliver_pending(config, now=NOW + timedelta(seconds=10))  # not due: orders waits, crm goes
    assert _posted(fake_slack) == [("#crm-data", "customers · freshness")]
    deliver_pending(config, now=NOW + timedelta(minutes=5))
    assert _posted(fake_slack) == [
        ("#crm-data", "customers · freshness"),
        ("#shop-data", "orders · freshness"),
        ("#shop-data", "orders · sync"),
    ]


def _posted(slack: FakeSlack) -> list[tuple[str, str]]:
    """(channel, "table · check") of every message Slack accepted, in order."""
    return [(p["channel"], re.findall(r"\w+ · \w+", p["text"])[0]) for p in slack.posted]


def test_a_claimed_alert_is_not_taken_twice_until_its_lease_ends(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    (alert,) = raise_now(config, finding()).alerts
    assert alert.id is not None
    engine = cached_engine(warehouse_url)
    with engine.begin() as conn:
        assert claim(conn, alert.id, NOW, NOW + timedelta(minutes=10))
        assert not claim(conn, alert.id, NOW, NOW + timedelta(minutes=10))
        assert claim(conn, alert.id, NOW + timedelta(minutes=11), NOW + timedelta(minutes=21))
    assert outbox(config)[0].attempts == 2


def test_a_claim_of_a_dead_run_blocks_its_channel_until_the_lease_ends(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    first, second = raise_now(config, finding(), finding(check="sync", status="failed")).alerts
    assert first.id is not None
    with cached_engine(warehouse_url).begin() as conn:  # a run that died after claiming
        claim(conn, first.id, NOW, NOW + timedelta(minutes=10))
    assert deliver_pending(config, now=NOW).sent == []  # the second must not overtake it
    assert deliver_pending(config, now=NOW + timedelta(minutes=11)).sent == [first.id, second.id]


def test_delivery_outcomes_are_metrics(warehouse_url: str, fake_slack: FakeSlack) -> None:
    config = alert_config(warehouse_url, fake_slack.url, default_channel="#gone")
    raise_now(config, finding("orders"), finding("events", "sync", status="failed"))
    deliver_pending(config, now=NOW)
    with cached_engine(warehouse_url).connect() as conn:
        rows = conn.execute(
            sa.select(metrics.c.table_name, metrics.c.metric, metrics.c.value, metrics.c.labels)
            .where(metrics.c.metric.like("alert_%"))
            .order_by(metrics.c.id)
        ).all()
    shop = {"channel": "#shop-data", "check": "freshness", "event": "opened", "status": "delivered"}
    gone = {"channel": "#gone", "check": "sync", "event": "opened", "status": "failed"}
    assert rows == [
        ("orders", "alert_outcome", 0.0, json.dumps(shop, sort_keys=True)),
        ("orders", "alert_attempts", 1.0, "{}"),
        ("events", "alert_outcome", 2.0, json.dumps(gone, sort_keys=True)),
        ("events", "alert_attempts", 1.0, "{}"),
    ]


def test_a_recovery_is_delivered_after_its_opening(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    raise_now(config, finding(), now=NOW)
    raise_now(config, finding(), now=NOW + timedelta(minutes=15))
    raise_now(config, finding(status="ok", verdict=PASSING), now=NOW + timedelta(hours=2))
    deliver_pending(config, now=NOW + timedelta(hours=2))
    opened, recovered = fake_slack.posted
    # Delivered late, the parent already shows the incident as it is now: resolved.
    assert "orders · freshness: resolved" in opened["text"] and "fired 2 times" in opened["text"]
    assert (
        "recovered" in recovered["text"]
        and "after 2h 00m (2 failing verdicts)" in recovered["text"]
    )
    assert recovered["thread_ts"] == outbox(config)[0].slack_ts  # a reply in its thread


def test_without_slack_alerts_only_wait(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding())
    report = deliver_pending(config, now=NOW)
    assert not report.configured and len(report.waiting) == 1
    assert outbox(config)[0].state == PENDING
