"""Incidents of checks that no longer give a result are closed by the check run that shows it."""

from datetime import UTC, datetime

from pipewarden.alerts.announce import UNCHECKED, Coverage
from pipewarden.alerts.slack_message import render
from pipewarden.checks.monitoring.run import run_checks
from pipewarden.records.alerts import NOTICE
from tests.alerts.support import alert_config, all_incidents, finding, outbox, raise_now
from tests.fixtures.shop import Shop


def test_a_check_run_closes_what_it_no_longer_checks_and_nothing_else(shop: Shop) -> None:
    config = shop.config(owner="#shop-data")
    shop.add(20, minutes_ago=5)
    shop.sync(config)
    now = datetime.now(UTC)
    drift = finding(check="drift:discount", status="warn", reason="D 0.4")
    nulls = finding(check="null_rate:discount", status="warn")
    kept = [finding(check="sync", status="failed"), finding(check="reconcile:keys")]
    gone = finding("ghost", "anomaly:latency_p95_seconds", status="anomaly")
    raise_now(config, drift, nulls, *kept, gone, now=now)

    run_checks(config, ["orders"], now=now)  # the orders table has no column `discount`
    open_now = {(i.table_name, i.check) for i in all_incidents(config) if i.closed_at is None}
    assert open_now == {
        ("orders", "sync"),  # not a check run's: only a sync passing closes it
        ("orders", "reconcile:keys"),
        ("ghost", "anomaly:latency_p95_seconds"),  # not in this run
    }
    closing = [a for a in outbox(config) if a.evidence.status == UNCHECKED]
    assert [(a.evidence.check, a.kind, a.channel) for a in closing] == [
        ("drift:discount", NOTICE, "#shop-data"),
        ("null_rate:discount", NOTICE, "#shop-data"),
    ]
    assert "no longer checked" in (closing[0].evidence.reason or "") and closing[0].evidence.run_id
    assert "Open for" in render(closing[0]).text

    run_checks(config, now=now)  # every configured table: ghost left the configuration
    open_now = {(i.table_name, i.check) for i in all_incidents(config) if i.closed_at is None}
    assert open_now == {("orders", "sync"), ("orders", "reconcile:keys")}
    (ghost,) = [a for a in outbox(config) if a.evidence.table_name == "ghost" and a.kind == NOTICE]
    assert "no longer in the configuration" in (ghost.evidence.reason or "")


def test_coverage_names_tables_and_check_kinds(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    coverage = Coverage(frozenset({"orders"}), ("freshness", "drift:"))
    assert coverage.covers(config, "orders", "freshness")
    assert coverage.covers(config, "orders", "drift:amount")
    assert not coverage.covers(config, "orders", "drift")  # a prefix covers only what follows
    assert not coverage.covers(config, "orders", "freshness:x")
    assert not coverage.covers(config, "customers", "freshness")
    assert not coverage.covers(config, "ghost", "freshness")
    everything = Coverage(frozenset({"orders"}), ("freshness",), unconfigured=True)
    assert everything.covers(config, "ghost", "freshness")
    assert not everything.covers(config, "customers", "freshness")  # configured, not checked
