"""The alert outbox: every alert is a row here before anything tries to deliver it.

An alert is written in the transaction of the record that caused it (a check run, a sync run's
outcome, a reconciliation's outcome), so it exists exactly when its cause does. Delivery then
moves it through `pending → sending → sent`, or back to `pending` with a later
`next_attempt_at` when Slack could not be reached, or to `failed` when Slack refused it for good.

`sending` is a claim with a lease (`claimed_until`): a delivery run takes one alert at a time
with a conditional UPDATE, so two runs never post the same alert, and an alert whose runner died
mid-way is taken again once the lease has passed (at least once, never silently lost). Each
claim counts an attempt, and the outcome is written only where that attempt still holds the
claim, so a run that outlived its lease cannot overwrite the outcome of the run after it.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.config.pii import quotes_pii
from pipewarden.records.evidence import Evidence
from pipewarden.records.pii_salt import redactor
from pipewarden.records.tables import RowId, metadata
from pipewarden.records.values import utc

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
#: What an alert tells: a new incident, one that got worse, its end, or a one-off event.
OPENED, WORSE, RECOVERED, NOTICE = "opened", "worse", "recovered", "notice"
#: An incident still failing, told again once `slack.remind_every` has passed since it last was.
REMINDER = "reminder"

alerts = sa.Table(
    "pipewarden_alerts",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("incident_id", RowId),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("check", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("severity", sa.Integer, nullable=False, default=0),
    #: The table owner's channel; NULL means the configured default channel.
    sa.Column("channel", sa.String(200)),
    sa.Column("observed", sa.Float),
    sa.Column("expected_low", sa.Float),
    sa.Column("expected_high", sa.Float),
    sa.Column("method", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("details", sa.Text, nullable=False, default="{}"),
    #: The pipewarden run that found it (check run, sync run, reconciliation run).
    sa.Column("run_id", sa.String(36)),
    sa.Column("flow_run_id", sa.String(36)),
    #: The alerts one call raised share it: one table's new incidents go out as one message.
    sa.Column("batch", sa.String(36)),
    sa.Column("state", sa.String(10), nullable=False, default=PENDING),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("claimed_until", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("slack_channel", sa.String(200)),
    sa.Column("slack_ts", sa.String(40)),
    sa.Index("ix_pipewarden_alerts_state", "state", "id"),
    sa.Index("ix_pipewarden_alerts_created", "created_at"),
)


@dataclass(frozen=True)
class Alert:
    """One alert: what it tells about which evidence (written once), and how its delivery went
    (updated)."""

    created_at: datetime
    kind: str
    evidence: Evidence
    incident_id: int | None = None
    channel: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    flow_run_id: str | None = None
    batch: str | None = None
    id: int | None = None
    state: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    sent_at: datetime | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None


#: Evidence without a column of its own: kept in `details` under these names.
_IN_DETAILS = ("observed_at", "score", "history_size")
_NOT_COLUMNS = ("id", "evidence")
_EVIDENCE_COLUMNS = tuple(f.name for f in fields(Evidence) if f.name not in _IN_DETAILS)


def add_alert(conn: sa.Connection, alert: Alert) -> Alert:
    """Put an alert in the outbox (in the caller's transaction); returns it with its id."""
    evidence = alert.evidence
    row = {f.name: getattr(alert, f.name) for f in fields(Alert) if f.name not in _NOT_COLUMNS}
    row.update({name: getattr(evidence, name) for name in _EVIDENCE_COLUMNS})
    row["severity"] = evidence.severity.column
    kept = {name: getattr(evidence, name) for name in _IN_DETAILS}
    if kept["observed_at"] is not None:
        kept["observed_at"] = utc(kept["observed_at"]).isoformat()
    details = {**alert.details, **{k: v for k, v in kept.items() if v is not None}}
    row["details"] = json.dumps(details, sort_keys=True, default=str)
    _hide_quoted_pii(conn, row)
    key = conn.execute(alerts.insert().values(**row)).inserted_primary_key
    assert key is not None
    return replace(alert, id=int(key[0]))


def _hide_quoted_pii(conn: sa.Connection, row: dict[str, Any]) -> None:
    """Emails and phone numbers quoted in an alert's text (a driver's error naming a key, a
    reason) are kept and sent as their hash prefixes (`config.pii`)."""
    texts = ("reason", "method", "details")
    if not any(quotes_pii(row.get(name)) for name in texts):
        return
    hide = redactor(conn)
    for name in texts:
        if row.get(name) is not None:
            row[name] = hide.text(row[name])


def undelivered(conn: sa.Connection, limit: int = 500) -> list[Alert]:
    """Alerts still to deliver (pending, or claimed by a run that may have died), oldest first."""
    q = (
        sa.select(alerts)
        .where(alerts.c.state.in_([PENDING, SENDING]))
        .order_by(alerts.c.id)
        .limit(limit)
    )
    return [_alert(row) for row in conn.execute(q).mappings()]


def recent_alerts(
    conn: sa.Connection,
    since: datetime | None = None,
    states: Sequence[str] | None = None,
    limit: int = 200,
) -> list[Alert]:
    """Alerts created since `since` (or all), in the given states, oldest first."""
    q = sa.select(alerts)
    if since is not None:
        q = q.where(alerts.c.created_at >= since)
    if states is not None:
        q = q.where(alerts.c.state.in_(list(states)))
    newest = q.order_by(alerts.c.id.desc()).limit(limit).subquery()
    ordered = sa.select(newest).order_by(newest.c.id)
    return [_alert(row) for row in conn.execute(ordered).mappings()]


@dataclass(frozen=True)
class Claim:
    """A delivery run's hold on one alert: the attempt it counts is the claim's token."""

    alert_id: int
    attempt: int
    until: datetime


def claim(conn: sa.Connection, alert_id: int, now: datetime, until: datetime) -> Claim | None:
    """Take an alert for delivery; None when another run holds it or it is no longer due."""
    c = alerts.c
    free = sa.or_(c.state == PENDING, sa.and_(c.state == SENDING, c.claimed_until < now))
    taken = conn.execute(
        alerts.update()
        .where(c.id == alert_id, free)
        .values(state=SENDING, claimed_until=until, attempts=c.attempts + 1)
        .returning(c.attempts)
    ).scalar_one_or_none()
    return Claim(alert_id, int(taken), until) if taken is not None else None


def mark_sent(conn: sa.Connection, held: Claim, at: datetime, channel: str, ts: str | None) -> bool:
    """Slack took it. False when the claim was lost (its lease ended and another run took the
    alert): nothing is written."""
    return _settle(
        conn,
        held,
        state=SENT,
        sent_at=at,
        slack_channel=channel,
        slack_ts=ts,
        last_error=None,
        claimed_until=None,
    )


def mark_retry(conn: sa.Connection, held: Claim, error: str, next_attempt: datetime) -> bool:
    """Back to the outbox: Slack could not take it now; a later run tries again. False when
    the claim was lost."""
    return _settle(
        conn,
        held,
        state=PENDING,
        last_error=error,
        next_attempt_at=next_attempt,
        claimed_until=None,
    )


def mark_failed(conn: sa.Connection, held: Claim, error: str) -> bool:
    """Slack refused it for good (no such channel, bad token): kept, with the error. False
    when the claim was lost."""
    return _settle(conn, held, state=FAILED, last_error=error, claimed_until=None)


def _settle(conn: sa.Connection, held: Claim, **values: Any) -> bool:
    """Write a delivery's outcome only while its claim still holds: a run slower than its lease
    must not undo what the run that took the alert over has written (a `sent` back to
    `pending`). Every claim counts an attempt, so (state, attempts) names this one."""
    c = alerts.c
    done = conn.execute(
        alerts.update()
        .where(c.id == held.alert_id, c.state == SENDING, c.attempts == held.attempt)
        .values(**values)
    )
    return done.rowcount == 1


def requeue_failed(conn: sa.Connection) -> int:
    """Failed alerts back to pending (after the channel or token was fixed); returns how many."""
    done = conn.execute(
        alerts.update()
        .where(alerts.c.state == FAILED)
        .values(state=PENDING, next_attempt_at=None, claimed_until=None)
    )
    return int(done.rowcount)


def _alert(row: Any) -> Alert:
    values = dict(row)
    del values["severity"]  # the status's, as `Evidence.severity` says
    details = json.loads(values.pop("details") or "{}")
    kept = {name: details.pop(name, None) for name in _IN_DETAILS}
    if kept["observed_at"] is not None:
        kept["observed_at"] = datetime.fromisoformat(kept["observed_at"])
    evidence = Evidence(**{name: values.pop(name) for name in _EVIDENCE_COLUMNS}, **kept)
    for name in ("created_at", "next_attempt_at", "claimed_until", "sent_at"):
        if values[name] is not None:
            values[name] = utc(values[name])
    return Alert(evidence=evidence, details=details, **values)


def opening_alerts(conn: sa.Connection, incident_ids: Sequence[int]) -> dict[int, Alert]:
    """The alert that opened each incident (what failed first, and why), by incident id."""
    if not incident_ids:
        return {}
    c = alerts.c
    q = (
        sa.select(alerts)
        .where(c.incident_id.in_(sorted(set(incident_ids))), c.kind == OPENED)
        .order_by(c.id)
    )
    found = (_alert(row) for row in conn.execute(q).mappings())
    return {a.incident_id: a for a in found if a.incident_id is not None}
