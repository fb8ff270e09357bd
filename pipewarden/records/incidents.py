"""Incidents: one open incident per (table, check) while it keeps failing.

An incident opens with the first failing verdict, counts the repeats that follow (which are
not announced again) and closes when the check passes. A partial unique index on
(table, check) among open incidents keeps a second one from opening beside it, even when two
check runs race; both PostgreSQL and SQLite enforce it.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.records.tables import metadata
from pipewarden.records.values import utc

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

incidents = sa.Table(
    "pipewarden_incidents",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
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
    severity: int
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    closed_at: datetime | None = None


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
    conn: sa.Connection, table_name: str, check: str, status: str, severity: int, at: datetime
) -> Incident:
    """Open an incident (in the caller's transaction)."""
    row = {
        "table_name": table_name,
        "check": check,
        "status": status,
        "severity": severity,
        "opened_at": at,
        "last_seen_at": at,
        "occurrences": 1,
    }
    key = conn.execute(incidents.insert().values(**row)).inserted_primary_key
    assert key is not None
    return Incident(
        id=int(key[0]),
        table_name=table_name,
        check=check,
        status=status,
        severity=severity,
        opened_at=at,
        last_seen_at=at,
        occurrences=1,
    )


def repeat_incident(
    conn: sa.Connection, incident: Incident, status: str, severity: int, at: datetime
) -> Incident:
    """Count one more failing verdict; `severity` is the highest announced so far."""
    conn.execute(
        incidents.update()
        .where(incidents.c.id == incident.id)
        .values(
            status=status,
            severity=severity,
            last_seen_at=at,
            occurrences=incidents.c.occurrences + 1,
        )
    )
    return replace(
        incident,
        status=status,
        severity=severity,
        last_seen_at=at,
        occurrences=incident.occurrences + 1,
    )


def close_incident(conn: sa.Connection, incident: Incident, at: datetime) -> Incident:
    """The check passes again: the incident is over."""
    conn.execute(incidents.update().where(incidents.c.id == incident.id).values(closed_at=at))
    return replace(incident, closed_at=at)


def _incident(row: Any) -> Incident:
    fields = dict(row)
    for name in ("opened_at", "last_seen_at", "closed_at"):
        if fields[name] is not None:
            fields[name] = utc(fields[name])
    return Incident(**fields)
