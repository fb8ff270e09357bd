"""Delivery under faults: a slow run cannot undo a faster one's outcome, a bad alert fails alone,
a failing metric cannot undo a send, and no Retry-After is slept through past the lease."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pipewarden.alerts.deliver import LEASE, deliver_pending
from pipewarden.config.load import ConfigError
from pipewarden.config.models import SLACK_MAX_WAIT_SECONDS, SLACK_POST_BUDGET_SECONDS
from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import (
    FAILED,
    PENDING,
    RECOVERED,
    SENT,
    Alert,
    add_alert,
    claim,
    mark_retry,
    mark_sent,
)
from pipewarden.records.evidence import Evidence
from pipewarden.records.metrics import metrics
from tests.alerts.support import NOW, alert_config, finding, outbox, raise_now
from tests.fixtures.slack import TOKEN, FakeSlack


def test_a_run_that_lost_its_claim_cannot_undo_the_outcome_of_the_next(
    warehouse_url: str,
) -> None:
    config = alert_config(warehouse_url)
    (alert,) = raise_now(config, finding()).alerts
    assert alert.id is not None
    engine = cached_engine(warehouse_url)
    with engine.begin() as conn:
        slow = claim(conn, alert.id, NOW, NOW + LEASE)
        assert slow is not None
    later = NOW + LEASE + timedelta(minutes=1)
    with engine.begin() as conn:  # the lease ended: another run takes it and sends it
        fast = claim(conn, alert.id, later, later + LEASE)
        assert fast is not None and fast.attempt == slow.attempt + 1
        assert mark_sent(conn, fast, later, "C0SHOP", "1.2")
    with engine.begin() as conn:  # the slow run comes back with a 503
        assert not mark_retry(conn, slow, "HTTP 503", later + timedelta(minutes=1))
        assert not mark_sent(conn, slow, later, "C0SHOP", "1.1")
    (kept,) = outbox(config)
    assert (kept.state, kept.slack_ts, kept.attempts) == (SENT, "1.2", 2)


def test_delivery_stops_when_its_claim_was_taken_over_while_posting(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    first, second = raise_now(config, finding(), finding("customers")).alerts
    assert first.id is not None
    engine = cached_engine(warehouse_url)
    later = NOW + LEASE + timedelta(minutes=1)

    def taken_over() -> None:  # as if this post outlived the lease and another run sent it
        fake_slack.on_request = None
        with engine.begin() as conn:
            other = claim(conn, first.id, later, later + LEASE)  # type: ignore[arg-type]
            assert other is not None and mark_sent(conn, other, later, "C0SHOP", "9.9")

    fake_slack.on_request = taken_over
    report = deliver_pending(config, now=NOW)
    assert report.sent == [] and report.stopped and "lost the claim" in report.stopped
    kept, waiting = outbox(config)
    assert (kept.state, kept.slack_ts) == (SENT, "9.9")
    assert (waiting.state, waiting.attempts) == (PENDING, 0)  # the slow run went no further
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(metrics)).scalar() == 0


def test_one_alert_that_cannot_be_rendered_fails_alone(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    engine = cached_engine(warehouse_url)
    broken = Alert(
        created_at=NOW,
        kind=RECOVERED,
        evidence=Evidence("orders", "freshness", "ok"),
        channel="#shop-data",
        details={"since": f"not a time {TOKEN}"},
    )
    raise_now(config)  # the tables
    with engine.begin() as conn:
        bad = add_alert(conn, broken)
    nan = finding(observed=float("nan"), expected_high=float("inf"))
    after = raise_now(config, nan, finding("customers")).alerts
    report = deliver_pending(config, now=NOW)
    assert report.failed == [bad.id] and report.stopped is None
    assert report.sent == [a.id for a in after]  # the same channel's next alert went out too
    failed, *sent = outbox(config)
    assert failed.state == FAILED and [a.state for a in sent] == [SENT, SENT]
    assert (failed.last_error or "").startswith("ValueError: Invalid isoformat string")
    assert TOKEN not in (failed.last_error or "") and "***" in (failed.last_error or "")
    assert deliver_pending(config, now=NOW + LEASE * 2).failed == []  # not taken again


def test_a_failing_metric_write_cannot_undo_a_send(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    raise_now(config, finding())
    engine = cached_engine(warehouse_url)
    with engine.begin() as conn:  # the metrics table refuses every row, as a full disk would
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'no space left'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON pipewarden_metrics "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON pipewarden_metrics "
                "BEGIN SELECT RAISE(ABORT, 'no space left'); END"
            )
    report = deliver_pending(config, now=NOW)
    assert len(report.sent) == 1 and len(fake_slack.posted) == 1
    (alert,) = outbox(config)
    assert alert.state == SENT
    assert deliver_pending(config, now=NOW + LEASE * 2).sent == []  # never posted twice
    assert len(fake_slack.posted) == 1


def test_a_retry_after_beyond_the_cap_is_not_slept_through(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, retries=2)
    raise_now(config, finding())
    wait = SLACK_MAX_WAIT_SECONDS + 1
    fake_slack.fail(429, Retry_After=str(wait))
    report = deliver_pending(config, now=NOW)
    assert report.sent == [] and len(report.retrying) == 1
    assert [s.status for s in fake_slack.seen] == [429]  # given back, not waited for
    (alert,) = outbox(config)
    assert alert.state == PENDING and alert.next_attempt_at is not None
    assert alert.next_attempt_at >= NOW + timedelta(seconds=wait)


def test_one_post_fits_well_inside_the_lease() -> None:
    assert timedelta(seconds=SLACK_POST_BUDGET_SECONDS) * 2 <= LEASE
    assert alert_config("sqlite://", "http://s/").slack is not None  # the defaults fit
    with pytest.raises(ConfigError, match="lower one of them"):
        alert_config("sqlite://", "http://s/", retries=3, timeout_seconds=120)
