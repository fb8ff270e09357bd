"""Incidents: one open incident per (table, check) while it keeps failing.

An incident opens with the first failing verdict, counts the repeats that follow (which are
not announced again) and closes when the check passes. A partial unique index on
(table, check) among open incidents keeps a second one from opening beside it, even when two
runs race; both PostgreSQL and SQLite enforce it. The writes here never break it and never fail
on it: an insert that meets an open incident is left out (`INSERT … ON CONFLICT DO NOTHING`,
waiting for the transaction that opened it), and updates touch only an incident still open, so
the caller learns it lost a race (None) and counts a repeat or opens anew.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.dialects import dialect_for
from pipewarden.records.evidence import Severity
from pipewarden.records.tables import RowId, metadata
from pipewarden.records.values import utc

incidents = sa.Table(
    "pipewarden_incidents",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("check", sa.String(300), nullable=False),
    #: The latest failing status (warn, error, anomaly, failed, differences).
    sa.Column("status", sa.String(30), nullable=False),
    #: The highest severity announced: a repeat above it is announced as worse.
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False, default=1),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    #: The parent message of the incident's Slack thread (channel ID, ts); NULL until posted.
    #: Incidents opened for one table in one run share their parent (one message lists them).
    sa.Column("slack_channel", sa.String(200)),
    sa.Column("slack_ts", sa.String(40)),
    #: When it was last told in Slack (opened, worse, a reminder); NULL: at `opened_at`.
    sa.Column("announced_at", sa.DateTime(timezone=True)),
    sa.Index(
        "ux_pipewarden_incidents_open",
        "table_name",
        "check",
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
        sqlite_where=sa.text("closed_at IS NULL"),
    ),
)


@dataclass(frozen=True)
class Incident:
    """An incident as read from the warehouse."""

    id: int
    table_name: str
    check: str
    status: str
    #: The highest severity announced.
    severity: Severity
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    closed_at: datetime | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    announced_at: datetime | None = None

    @property
    def thread(self) -> tuple[str, str] | None:
        """The Slack thread's parent message (channel ID, ts), or None before one is posted."""
        if self.slack_channel is None or self.slack_ts is None:
            return None
        return self.slack_channel, self.slack_ts


def open_incidents(
    conn: sa.Connection, keys: Iterable[tuple[str, str]] | None = None
) -> dict[tuple[str, str], Incident]:
    """Open incidents by (table, check); only the tables of `keys` when given."""
    q = sa.select(incidents).where(incidents.c.closed_at.is_(None))
    if keys is not None:
        tables = sorted({table for table, _ in keys})
        if not tables:
            return {}
        q = q.where(incidents.c.table_name.in_(tables))
    found = (_incident(row) for row in conn.execute(q.order_by(incidents.c.id)).mappings())
    return {(i.table_name, i.check): i for i in found}


def open_incident(
    conn: sa.Connection,
    table_name: str,
    check: str,
    status: str,
    severity: Severity,
    at: datetime,
) -> Incident | None:
    """Open an incident (in the caller's transaction); None when one is open already, opened
    by a transaction that committed first (the insert waits for it and is left out)."""
    row = {
        "table_name": table_name,
        "check": check,
        "status": status,
        "severity": severity.column,
        "opened_at": at,
        "last_seen_at": at,
        "occurrences": 1,
    }
    c = incidents.c
    insert = dialect_for(conn.dialect.name).insert_or_skip(
        incidents, [c.table_name, c.check], c.closed_at.is_(None)
    )
    new_id = conn.execute(insert.values(**row).returning(c.id)).scalar_one_or_none()
    if new_id is None:
        return None
    return Incident(
        id=int(new_id),
        table_name=table_name,
        check=check,
        status=status,
        severity=severity,
        opened_at=at,
        last_seen_at=at,
        occurrences=1,
    )


def open_incident_of(conn: sa.Connection, table_name: str, check: str) -> Incident | None:
    """The open incident of (table, check), read now, or None."""
    c = incidents.c
    q = sa.select(incidents).where(
        c.table_name == table_name, c.check == check, c.closed_at.is_(None)
    )
    row = conn.execute(q).mappings().one_or_none()
    return _incident(row) if row is not None else None


def repeat_incident(
    conn: sa.Connection, incident: Incident, status: str, severity: Severity, at: datetime
) -> Incident | None:
    """Count one more failing verdict, raising the severity to `severity` if it is higher;
    None when the incident was closed meanwhile (by a run that committed first)."""
    c = incidents.c
    row = conn.execute(
        incidents.update()
        .where(c.id == incident.id, c.closed_at.is_(None))
        .values(
            status=status,
            severity=sa.case((c.severity < severity.column, severity.column), else_=c.severity),
            last_seen_at=at,
            occurrences=c.occurrences + 1,
        )
        .returning(*incidents.c)
    )
    found = row.mappings().one_or_none()
    return _incident(found) if found is not None else None


def close_incident(conn: sa.Connection, incident: Incident, at: datetime) -> Incident | None:
    """The check passes again: the incident is over. None when it was closed already."""
    c = incidents.c
    row = conn.execute(
        incidents.update()
        .where(c.id == incident.id, c.closed_at.is_(None))
        .values(closed_at=at)
        .returning(*incidents.c)
    )
    found = row.mappings().one_or_none()
    return _incident(found) if found is not None else None


def mark_announced(conn: sa.Connection, incident_id: int, at: datetime) -> None:
    """The incident was told in Slack again (a reminder): the next one is due from `at`."""
    conn.execute(incidents.update().where(incidents.c.id == incident_id).values(announced_at=at))


def incidents_by_id(conn: sa.Connection, ids: Iterable[int]) -> list[Incident]:
    """The incidents of `ids` as they are now (open or closed), by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    q = sa.select(incidents).where(incidents.c.id.in_(wanted)).order_by(incidents.c.id)
    return [_incident(row) for row in conn.execute(q).mappings()]


def incidents_of_thread(conn: sa.Connection, channel: str, ts: str) -> list[Incident]:
    """Every incident whose Slack thread has this parent message, by id."""
    c = incidents.c
    q = sa.select(incidents).where(c.slack_channel == channel, c.slack_ts == ts).order_by(c.id)
    return [_incident(row) for row in conn.execute(q).mappings()]


def set_thread(conn: sa.Connection, ids: Iterable[int], channel: str, ts: str) -> None:
    """Record the parent message of these incidents' thread (a first post, or a new parent
    posted because the old one could no longer be updated)."""
    wanted = sorted(set(ids))
    if wanted:
        conn.execute(
            incidents.update()
            .where(incidents.c.id.in_(wanted))
            .values(slack_channel=channel, slack_ts=ts)
        )


def _incident(row: Any) -> Incident:
    fields = dict(row)
    for name in ("opened_at", "last_seen_at", "closed_at", "announced_at"):
        if fields[name] is not None:
            fields[name] = utc(fields[name])
    fields["severity"] = Severity.from_column(fields["severity"])
    return Incident(**fields)
