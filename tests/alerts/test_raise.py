"""Incidents and the outbox: one open incident per (table, check), repeats quiet, recovery once."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pipewarden.alerts.findings import PASSING, UNKNOWN
from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import NOTICE, OPENED, PENDING, RECOVERED, WORSE, alerts
from pipewarden.records.evidence import Severity
from pipewarden.records.incidents import incidents, open_incident
from pipewarden.records.migrate import ensure_tables
from tests.alerts.support import (
    NOW,
    alert_config,
    all_incidents,
    finding,
    outbox,
    raise_now,
)


def test_a_failure_opens_an_incident_and_waits_in_the_outbox(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    stale = finding(observed=14_400.0, expected_low=0.0, expected_high=3600.0, reason="4h old")
    raised = raise_now(config, stale)
    (alert,) = outbox(config)
    assert raised.alerts == [alert]
    assert (alert.kind, alert.state, alert.channel, alert.evidence.status) == (
        OPENED,
        PENDING,
        "#shop-data",
        "error",
    )
    seen = alert.evidence
    assert (seen.observed, seen.expected_high, seen.reason) == (14_400.0, 3600.0, "4h old")
    (incident,) = all_incidents(config)
    assert incident.closed_at is None and alert.incident_id == incident.id


def test_repeats_are_quiet_and_recovery_is_announced_once(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding(), now=NOW)
    for minutes in (15, 30):
        repeat = raise_now(config, finding(), now=NOW + timedelta(minutes=minutes))
        assert repeat.alerts == [] and repeat.repeats == 1
    assert [a.kind for a in outbox(config)] == [OPENED]
    (incident,) = all_incidents(config)
    assert incident.occurrences == 3

    back = raise_now(config, finding(status="ok", verdict=PASSING), now=NOW + timedelta(hours=1))
    assert [a.kind for a in back.alerts] == [RECOVERED]
    recovered = back.alerts[0]
    assert recovered.incident_id == incident.id
    assert recovered.details["seen"] == 3
    assert recovered.details["since"].startswith(NOW.isoformat()[:19])

    quiet = raise_now(config, finding(status="ok", verdict=PASSING))
    assert quiet.alerts == [] and quiet.repeats == 0
    again = raise_now(config, finding(), now=NOW + timedelta(hours=2))
    assert [a.kind for a in again.alerts] == [OPENED]
    first, second = all_incidents(config)
    assert first.closed_at is not None and second.closed_at is None and second.id != first.id


def test_worse_is_told_once_and_flapping_stays_quiet(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    kinds = []
    for status in ("warn", "error", "warn", "error"):
        kinds.append([a.kind for a in raise_now(config, finding(status=status)).alerts])
    assert kinds == [[OPENED], [WORSE], [], []]
    (incident,) = all_incidents(config)
    assert (incident.status, incident.severity, incident.occurrences) == (
        "error",
        Severity.ERROR,
        4,
    )


def test_an_unknown_verdict_neither_repeats_nor_recovers(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding(check="anomaly:latency_p95_seconds", status="anomaly"))
    learning = finding(
        check="anomaly:latency_p95_seconds", status="insufficient_history", verdict=UNKNOWN
    )
    assert raise_now(config, learning).alerts == []
    (incident,) = all_incidents(config)
    assert incident.closed_at is None and incident.occurrences == 1


def test_notices_go_out_once_without_an_incident(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    fixed = finding(
        check="reconcile", status="ok", verdict=PASSING, notice=True, reason="repaired 3"
    )
    assert [a.kind for a in raise_now(config, fixed).alerts] == [NOTICE]
    plain = finding(check="reconcile", status="ok", verdict=PASSING)
    assert raise_now(config, plain).alerts == []
    assert all_incidents(config) == []
    (alert,) = outbox(config)
    assert alert.incident_id is None and alert.evidence.reason == "repaired 3"


def test_channels_follow_the_table_owner(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding("orders"), finding("customers"), finding("events"))
    assert [(a.evidence.table_name, a.channel) for a in outbox(config)] == [
        ("orders", "#shop-data"),
        ("customers", "#crm-data"),
        ("events", None),  # the configured default channel, chosen at delivery
    ]


def test_the_database_allows_one_open_incident_per_table_and_check(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    with engine.begin() as conn:
        assert open_incident(conn, "orders", "freshness", "warn", Severity.WARN, NOW) is not None
    with engine.begin() as conn:  # left out, not an error that would roll back the caller
        assert open_incident(conn, "orders", "freshness", "error", Severity.ERROR, NOW) is None
    row = {"table_name": "orders", "check": "freshness", "status": "error", "severity": 3}
    times = {"opened_at": NOW, "last_seen_at": NOW}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # the index itself
        conn.execute(incidents.insert().values(**row, **times))
    with engine.begin() as conn:  # a closed one does not count
        conn.execute(incidents.update().values(closed_at=NOW))
        assert open_incident(conn, "orders", "freshness", "error", Severity.ERROR, NOW) is not None
    assert len(all_incidents(config)) == 2


def test_alerts_roll_back_with_the_transaction_of_their_cause(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    from pipewarden.alerts.announce import raise_alerts

    with pytest.raises(RuntimeError), engine.begin() as conn:
        assert len(raise_alerts(conn, config, [finding()], NOW).alerts) == 1
        raise RuntimeError("the cause's own write failed after the alert was written")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(incidents)).scalar() == 0
