"""What the Prometheus exporter tells about each table, read from pipewarden's own tables.

One query per 400 tables (`name_chunks`): a row per table name with correlated subqueries that
an index answers each (the newest cursor point, the latest sync and the last successful one,
held rows, open incidents, the latest reconciliation, the waiting alerts), so a scrape reads
no history however long it grows.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.measurements.cursor import NEWEST_CURSOR
from pipewarden.records.alerts import PENDING, SENDING, alerts
from pipewarden.records.evidence import Severity
from pipewarden.records.incidents import incidents
from pipewarden.records.metrics import metrics, name_chunks
from pipewarden.records.quarantine import HELD, quarantine
from pipewarden.records.reconcile_runs import reconcile_runs
from pipewarden.records.tables import sync_runs
from pipewarden.records.values import utc

#: The severities an open incident is counted by (`severity` label).
INCIDENT_SEVERITIES = (Severity.WARN, Severity.ERROR)


@dataclass(frozen=True)
class TableFigures:
    """One table's figures as read; None where nothing is recorded yet."""

    name: str
    newest_cursor: datetime | None
    last_sync_status: str | None
    last_sync_latency_p95: float | None
    last_success: datetime | None
    rows_quarantined: int
    open_incidents: dict[Severity, int]
    reconcile_remaining: int | None
    outbox_backlog: int
    oldest_waiting_alert: datetime | None


def read_figures(conn: sa.Connection, names: Sequence[str]) -> list[TableFigures]:
    """The figures of the named tables, in one query per chunk of names."""
    found: list[TableFigures] = []
    for wanted in name_chunks(names):
        query = sa.select(wanted.c.name, *_subqueries(wanted.c.name))
        found.extend(_figures(row) for row in conn.execute(query).tuples())
    return found


def _subqueries(name: sa.ColumnElement[str]) -> list[sa.ScalarSelect[Any]]:
    m, s, q, i, r, a = (
        t.c for t in (metrics, sync_runs, quarantine, incidents, reconcile_runs, alerts)
    )
    newest_point = (
        sa.select(m.value)
        .where(m.table_name == name, m.metric == NEWEST_CURSOR)
        .order_by(m.measured_at.desc())
        .limit(1)
    )
    latest_sync = sa.select(s.status).where(s.table_name == name).order_by(s.started_at.desc())
    success = sa.select(s.finished_at).where(s.table_name == name, s.status == "success")
    latest_reconcile = (
        sa.select(sa.func.coalesce(r.remaining, r.missing + r.extra + r.changed))
        .where(r.table_name == name, r.status != "running")
        .order_by(r.started_at.desc())
        .limit(1)
    )
    waiting = sa.and_(a.table_name == name, a.state.in_([PENDING, SENDING]))
    open_by_severity = [
        sa.select(sa.func.count())
        .where(i.table_name == name, i.closed_at.is_(None), i.severity == severity.column)
        .scalar_subquery()
        for severity in INCIDENT_SEVERITIES
    ]
    return [
        newest_point.scalar_subquery(),
        latest_sync.limit(1).scalar_subquery(),
        latest_sync.with_only_columns(s.latency_p95_seconds).limit(1).scalar_subquery(),
        success.order_by(s.started_at.desc()).limit(1).scalar_subquery(),
        sa.select(sa.func.count()).where(q.table_name == name, q.status == HELD).scalar_subquery(),
        *open_by_severity,
        latest_reconcile.scalar_subquery(),
        sa.select(sa.func.count()).where(waiting).scalar_subquery(),
        sa.select(sa.func.min(a.created_at)).where(waiting).scalar_subquery(),
    ]


def _figures(row: tuple[Any, ...]) -> TableFigures:
    name, epoch, status, p95, success, held, *rest = row
    counts, (remaining, backlog, oldest) = rest[: len(INCIDENT_SEVERITIES)], rest[-3:]
    return TableFigures(
        name=name,
        newest_cursor=None if epoch is None else datetime.fromtimestamp(epoch, UTC),
        last_sync_status=status,
        last_sync_latency_p95=p95,
        last_success=None if success is None else _instant(success),
        rows_quarantined=int(held),
        open_incidents={s: int(n) for s, n in zip(INCIDENT_SEVERITIES, counts, strict=True)},
        reconcile_remaining=None if remaining is None else int(remaining),
        outbox_backlog=int(backlog),
        oldest_waiting_alert=None if oldest is None else _instant(oldest),
    )


def _instant(value: Any) -> datetime:
    # SQLite hands an aggregate over a DateTime column back as text.
    return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
