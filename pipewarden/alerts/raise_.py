"""Raising alerts: findings against the open incidents, into the outbox, in one transaction.

Per (table, check) there is at most one open incident. A failing finding opens one and is
announced; a repeat is counted and stays quiet, unless it is worse than anything announced for
that incident (a stale table going from warn to error); a passing finding closes the incident
and announces the recovery once. Unknown findings change nothing. The caller passes its own
transaction, so the alerts commit with the record that caused them, or not at all.
"""

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.alerts.findings import FAILING, PASSING, Finding
from pipewarden.config import PipewardenConfig
from pipewarden.records.alerts import NOTICE, OPENED, RECOVERED, WORSE, Alert, add_alert
from pipewarden.records.incidents import (
    Incident,
    close_incident,
    open_incident,
    open_incidents,
    repeat_incident,
)


@dataclass
class Raised:
    """What one call raised: the alerts written to the outbox and the repeats kept quiet."""

    alerts: list[Alert] = field(default_factory=list)
    repeats: int = 0


def raise_alerts(
    conn: sa.Connection,
    config: PipewardenConfig,
    findings: Iterable[Finding],
    now: datetime | None = None,
) -> Raised:
    """Apply findings to the incidents and write what is worth telling to the outbox."""
    findings = list(findings)
    now = now or datetime.now(UTC)
    raised = Raised()
    if not findings:
        return raised
    incidents = open_incidents(conn, [(f.table_name, f.check) for f in findings])
    flow_run = current_flow_run_id()
    for finding in findings:
        key = (finding.table_name, finding.check)
        incident = incidents.get(key)
        kind, details = _kind(finding, incident), {}
        if finding.verdict == FAILING:
            if incident is None:
                incident = open_incident(conn, *key, finding.status, finding.severity, now)
            else:
                worst = max(incident.severity, finding.severity)
                incident = repeat_incident(conn, incident, finding.status, worst, now)
            incidents[key] = incident
            details = {"since": incident.opened_at.isoformat(), "seen": incident.occurrences}
        elif finding.verdict == PASSING and incident is not None:
            close_incident(conn, incident, now)
            del incidents[key]
            details = {"since": incident.opened_at.isoformat(), "seen": incident.occurrences}
        if kind is None:
            raised.repeats += finding.verdict == FAILING
            continue
        alert = Alert(
            created_at=now,
            table_name=finding.table_name,
            check=finding.check,
            kind=kind,
            status=finding.status,
            severity=finding.severity,
            incident_id=incident.id if incident is not None else None,
            channel=_owner(config, finding.table_name),
            observed=finding.observed,
            expected_low=finding.expected_low,
            expected_high=finding.expected_high,
            method=finding.method,
            reason=finding.reason,
            details={**finding.details, **details},
            run_id=finding.run_id,
            flow_run_id=flow_run,
        )
        raised.alerts.append(add_alert(conn, alert))
    return raised


def _kind(finding: Finding, incident: Incident | None) -> str | None:
    """What the finding tells against the incident open before it, or None for nothing."""
    if finding.verdict == FAILING:
        if incident is None:
            return OPENED
        return WORSE if finding.severity > incident.severity else None
    if finding.verdict == PASSING:
        if incident is not None:
            return RECOVERED
        return NOTICE if finding.notice else None
    return None


def _owner(config: PipewardenConfig, table_name: str) -> str | None:
    table = config.tables.get(table_name)
    return table.owner if table is not None else None


def current_flow_run_id() -> str | None:
    """The Prefect flow run this code runs in, for the alert's link; None outside one.

    Prefect is only asked when something already imported it: the command line runs checks
    without Prefect and must not pay for importing it.
    """
    if "prefect.context" not in sys.modules:
        return None
    from prefect.runtime import flow_run

    return flow_run.get_id()
