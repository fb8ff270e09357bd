"""One evidence from check to alert: unchanged through the outbox, ranked on one scale."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import alerts
from pipewarden.records.evidence import Evidence, Severity, worst_status
from tests.alerts.support import NOW, alert_config, finding, outbox, raise_now


def test_an_anomaly_reaches_the_outbox_as_the_check_stated_it(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    seen = finding(
        check="anomaly:rows_by_cursor_hour",
        status="anomaly",
        observed=1200.0,
        observed_at=NOW - timedelta(hours=1),
        expected_low=80.0,
        expected_high=310.5,
        score=7.25,
        method="seasonal median, hour of day",
        reason="rows in cursor hour 14:00: far above the band",
        history_size=672,
        run_id="r-1",
    )
    (raised,) = raise_now(config, seen).alerts
    (stored,) = outbox(config)
    assert stored.evidence == raised.evidence == seen.evidence
    with cached_engine(warehouse_url).connect() as conn:
        row = conn.execute(sa.select(alerts.c.severity, alerts.c.observed)).one()
    assert tuple(row) == (2, 1200.0)  # the numbers the column has always held


def test_statuses_rank_on_one_scale() -> None:
    assert Severity.OK < Severity.WARN < Severity.ERROR
    assert [Severity.of(s) for s in ("insufficient_history", "anomaly", "failed")] == [
        Severity.OK,
        Severity.WARN,
        Severity.ERROR,
    ]
    assert worst_status(["ok", "anomaly", "warn", "error", "ok"]) == "error"
    assert worst_status(["ok", "warn", "anomaly"]) == "warn"  # the first of equals
    assert worst_status([]) == "ok"
    assert [Severity.from_column(s.column) for s in Severity] == list(Severity)
    assert not Evidence("t", "freshness", "insufficient_history").failing
    with pytest.raises(ValueError, match="no severity for the status 'lost'"):
        Severity.of("lost")


def test_a_quarantine_alert_quotes_control_characters_escaped() -> None:
    """A row held for `refused.nul_character` is quoted in the alert: its NUL written `\\x00`,
    so PostgreSQL can store the alert (a raw NUL failed the whole sync) and Slack shows it."""
    from pipewarden.alerts.findings import from_quarantine

    group = {"column": "status", "check": "refused.nul_character", "failures": 1}
    found = from_quarantine("orders", 1, [{**group, "examples": ["nul\x00in\x1b"]}], "r1")
    assert "\x00" not in (found.evidence.reason or "")
    assert "nul\\x00in\\x1b" in (found.evidence.reason or "")
