"""Raising alerts: findings against the open incidents, into the outbox, in one transaction.

Per (table, check) there is at most one open incident. A failing finding opens one and is
announced; a repeat is counted and stays quiet, unless it is worse than anything announced for
that incident (a stale table going from warn to error) or `slack.remind_every` has passed since
the incident was last told (a reminder); a passing finding closes the incident
and announces the recovery once. Unknown findings change nothing. An incident whose check no
longer gives any finding (a dropped column) is closed with a notice when the caller says its
run covered that check (`Coverage`). The caller passes its own transaction, so the alerts
commit with the record that caused them, or not at all; a race with another run's transaction
on the same incident ends in a repeat or a new incident, never in an error.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import sqlalchemy as sa

from pipewarden.alerts.findings import FAILING, PASSING, Finding
from pipewarden.config import PipewardenConfig
from pipewarden.config.owners import owner_channel
from pipewarden.records.alerts import (
    NOTICE,
    OPENED,
    RECOVERED,
    REMINDER,
    WORSE,
    Alert,
    add_alert,
)
from pipewarden.records.evidence import UNCHECKED, Evidence
from pipewarden.records.flow_runs import current_flow_run_id, current_flow_run_url
from pipewarden.records.incidents import (
    Incident,
    close_incident,
    mark_announced,
    open_incident,
    open_incident_of,
    open_incidents,
    repeat_incident,
)


@dataclass
class Raised:
    """What one call raised: the alerts written to the outbox and the repeats kept quiet."""

    alerts: list[Alert] = field(default_factory=list)
    repeats: int = 0


@dataclass(frozen=True)
class Coverage:
    """What a run checked in full: every check of `kinds` on `tables` gave a finding.

    An open incident there without a finding is no longer checked (its column was dropped, its
    samples changed kind, the table left the configuration) and would otherwise stay open for
    ever; it is closed with a notice saying so. `kinds` are check names, or prefixes ending in
    `:` (`drift:` covers `drift:amount`). With `unconfigured`, tables no longer in the
    configuration are covered too (a run over every configured table).
    """

    tables: frozenset[str]
    kinds: tuple[str, ...]
    unconfigured: bool = False
    run_id: str | None = None

    def covers(self, config: PipewardenConfig, table_name: str, check: str) -> bool:
        configured = config.watched(table_name) is not None
        mine = table_name in self.tables or (self.unconfigured and not configured)
        return mine and any(
            check == kind or (kind.endswith(":") and check.startswith(kind)) for kind in self.kinds
        )


def raise_alerts(
    conn: sa.Connection,
    config: PipewardenConfig,
    findings: Iterable[Finding],
    now: datetime | None = None,
    coverage: Coverage | None = None,
) -> Raised:
    """Apply findings to the incidents and write what is worth telling to the outbox; close
    the incidents `coverage` says were not checked."""
    findings = list(findings)
    now = now or datetime.now(UTC)
    raised = Raised()
    if not findings and coverage is None:
        return raised
    keys = [(f.evidence.table_name, f.evidence.check) for f in findings]
    if coverage is None:
        incidents = open_incidents(conn, keys)
    elif coverage.unconfigured:
        incidents = open_incidents(conn)
    else:
        incidents = open_incidents(conn, [*keys, *((t, "") for t in coverage.tables)])
    flow_run = current_flow_run_id()
    run_url = {"flow_run_url": url} if (url := current_flow_run_url()) else {}
    batch = str(uuid4())
    notes: list[tuple[Finding, Incident | None, str, dict[str, Any]]] = []
    for finding in findings:
        key = (finding.evidence.table_name, finding.evidence.check)
        incident = incidents.get(key)
        kind: str | None = None
        if finding.verdict == FAILING:
            kind, incidents[key] = _failing(conn, finding, incident, now)
            incident = incidents[key]
            if kind is None and _reminder_due(config, incident, now):
                kind = REMINDER
            if kind in (WORSE, REMINDER):
                mark_announced(conn, incident.id, now)
            raised.repeats += kind is None
        elif finding.verdict == PASSING and incident is not None:
            incident = close_incident(conn, incident, now)  # None: closed by another run
            kind = RECOVERED if incident is not None else None
            del incidents[key]
        else:
            incident = None
        if kind is None and finding.verdict == PASSING and finding.notice:
            kind = NOTICE
        if kind is not None:
            notes.append((finding, incident, kind, _since(incident)))
    if coverage is not None:
        found = set(keys)
        left = [i for key, i in incidents.items() if key not in found]
        notes += _unchecked(conn, config, coverage, left, now)
    for finding, incident, kind, details in notes:
        alert = Alert(
            created_at=now,
            kind=kind,
            evidence=finding.evidence,
            incident_id=incident.id if incident is not None else None,
            channel=owner_channel(config.owner_of(finding.evidence.table_name)),
            details={**finding.details, **details, **run_url},
            flow_run_id=flow_run,
            batch=batch,
        )
        raised.alerts.append(add_alert(conn, alert))
    return raised


def _failing(
    conn: sa.Connection, finding: Finding, incident: Incident | None, now: datetime
) -> tuple[str | None, Incident]:
    """Count a failing finding against the open incident, or open one; what to announce.

    Another run's transaction may open or close the same incident between our read and our
    write. An insert that meets an incident it opened waits for it and is left out, and the
    finding counts as a repeat of that incident; a repeat of an incident it closed opens a new
    one. Neither fails the caller's transaction.
    """
    evidence = finding.evidence
    table_name, check, status, severity = (
        evidence.table_name,
        evidence.check,
        evidence.status,
        evidence.severity,
    )
    for _ in range(3):
        if incident is not None:
            repeated = repeat_incident(conn, incident, status, severity, now)
            if repeated is not None:
                return (WORSE if severity > incident.severity else None), repeated
        opened = open_incident(conn, table_name, check, status, severity, now)
        if opened is not None:
            return OPENED, opened
        incident = open_incident_of(conn, table_name, check)
    raise RuntimeError(f"the incident of {table_name} · {check} kept opening and closing")


def _unchecked(
    conn: sa.Connection,
    config: PipewardenConfig,
    coverage: Coverage,
    left: Iterable[Incident],
    now: datetime,
) -> list[tuple[Finding, Incident | None, str, dict[str, Any]]]:
    """Close the open incidents the run covered but gave no finding for, each with a notice."""
    notes: list[tuple[Finding, Incident | None, str, dict[str, Any]]] = []
    for incident in left:
        if not coverage.covers(config, incident.table_name, incident.check):
            continue
        closed = close_incident(conn, incident, now)
        if closed is None:  # closed by another run meanwhile
            continue
        if config.watched(incident.table_name) is not None:
            why = (
                f"no longer checked: this check run gave no {incident.check} result (a dropped "
                "column, or values of another kind), so the incident is closed"
            )
        else:
            why = (
                f"no longer checked: {incident.table_name} is no longer in the configuration, "
                "so the incident is closed"
            )
        gone = Evidence(
            incident.table_name, incident.check, UNCHECKED, reason=why, run_id=coverage.run_id
        )
        finding = Finding(gone, PASSING)
        notes.append((finding, closed, NOTICE, _since(closed)))
    return notes


def _reminder_due(config: PipewardenConfig, incident: Incident, now: datetime) -> bool:
    """A repeat is told again once `slack.remind_every` has passed since the incident last
    was (opened, worse, reminded)."""
    every = config.slack.remind_every if config.slack is not None else None
    if every is None:
        return False
    return now - (incident.announced_at or incident.opened_at) >= every


def _since(incident: Incident | None) -> dict[str, Any]:
    if incident is None:
        return {}
    return {"since": incident.opened_at.isoformat(), "seen": incident.occurrences}
