"""What the Prometheus exporter tells about each table, read from pipewarden's own tables.

A read costs four queries whatever the number of tables, none of which reads a history:

* the newest cursor point of each synced table (one index lookup a table, driven by the
  watermarks, one row a table);
* the counts: held quarantine rows, open incidents by severity, the latest reconciliation's
  remaining differences (small tables or index ranges, grouped by table);
* the waiting alerts: how many and since when (the outbox's state index);
* the sync runs that started since the previous read (the `started_at` index): the reader keeps
  each table's latest run and last success, so the run history is read once, at the first read.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipewarden.measurements.cursor import NEWEST_CURSOR
from pipewarden.records.alerts import PENDING, SENDING, alerts
from pipewarden.records.evidence import Severity
from pipewarden.records.incidents import incidents
from pipewarden.records.metrics import metrics
from pipewarden.records.quarantine import HELD, quarantine
from pipewarden.records.reconcile_runs import reconcile_runs
from pipewarden.records.tables import sync_runs, watermarks
from pipewarden.records.values import utc

#: The severities an open incident is counted by (`severity` label).
INCIDENT_SEVERITIES = (Severity.WARN, Severity.ERROR)
#: Runs are read again from this long before the newest start seen: a run whose first commit
#: came later than a newer run's (another host's clock, a slow insert) is still found.
START_MARGIN = timedelta(minutes=10)
_HELD, _REMAINING = "held", "remaining"


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


@dataclass(frozen=True)
class _Run:
    started_at: datetime
    status: str
    finished_at: datetime | None
    latency_p95: float | None


@dataclass
class FigureReader:
    """Reads the figures; keeps each table's latest sync run and last success between reads."""

    latest: dict[str, _Run] = field(default_factory=dict)
    success: dict[str, _Run] = field(default_factory=dict)
    since: datetime | None = None

    def read(self, conn: sa.Connection, names: Sequence[str]) -> list[TableFigures]:
        """The figures of the named tables (four queries)."""
        newest = _newest_cursors(conn, names)
        counts = _counts(conn)
        waiting = _waiting(conn)
        self._read_runs(conn)
        return [self._figures(name, newest, counts, waiting) for name in names]

    def _read_runs(self, conn: sa.Connection) -> None:
        rows: Any = conn.execute(_runs_query(self.since))
        for name, started, status, finished, p95 in rows:
            run = _Run(utc(started), status, None if finished is None else utc(finished), p95)
            if name not in self.latest or run.started_at >= self.latest[name].started_at:
                self.latest[name] = run
            if status == "success" and (
                name not in self.success or run.started_at >= self.success[name].started_at
            ):
                self.success[name] = run
        # A run still going is read again until it has its outcome.
        starts = [r.started_at for r in self.latest.values() if r.status == "running"]
        if self.latest:
            starts.append(max(r.started_at for r in self.latest.values()) - START_MARGIN)
            self.since = min(starts)

    def _figures(
        self,
        name: str,
        newest: dict[str, float],
        counts: dict[tuple[str, str, int], float],
        waiting: dict[str, tuple[int, datetime]],
    ) -> TableFigures:
        latest, success = self.latest.get(name), self.success.get(name)
        epoch = newest.get(name)
        remaining = counts.get((_REMAINING, name, 0))
        backlog, oldest = waiting.get(name, (0, None))
        return TableFigures(
            name=name,
            newest_cursor=None if epoch is None else datetime.fromtimestamp(epoch, UTC),
            last_sync_status=None if latest is None else latest.status,
            last_sync_latency_p95=None if latest is None else latest.latency_p95,
            last_success=None if success is None else success.finished_at,
            rows_quarantined=int(counts.get((_HELD, name, 0), 0)),
            open_incidents={
                s: int(counts.get(("incidents", name, s.column), 0)) for s in INCIDENT_SEVERITIES
            },
            reconcile_remaining=None if remaining is None else int(remaining),
            outbox_backlog=backlog,
            oldest_waiting_alert=oldest,
        )


def _runs_query(since: datetime | None) -> sa.Select[Any] | sa.CompoundSelect:
    """The runs started since `since`; with none, each table's latest run and last success."""
    c = sync_runs.c
    runs = sa.select(c.table_name, c.started_at, c.status, c.finished_at, c.latency_p95_seconds)
    if since is not None:
        return runs.where(c.started_at >= since)
    newest = sa.select(c.table_name, sa.func.max(c.started_at).label("started_at"))
    newest = newest.group_by(c.table_name)
    picked = []
    for which in (newest, newest.where(c.status == "success")):
        found = which.subquery()
        match = sa.and_(found.c.table_name == c.table_name, found.c.started_at == c.started_at)
        picked.append(runs.join(found, match))
    return sa.union_all(*picked)


def _newest_cursors(conn: sa.Connection, names: Sequence[str]) -> dict[str, float]:
    m, w = metrics.c, watermarks.c
    point = (
        sa.select(m.value)
        .where(m.table_name == w.table_name, m.metric == NEWEST_CURSOR)
        .order_by(m.measured_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    wanted: Any = sa.bindparam("names", list(names), expanding=True)
    query = sa.select(w.table_name, point).where(w.table_name.in_(wanted))
    return {name: value for name, value in conn.execute(query).tuples() if value is not None}


def _counts(conn: sa.Connection) -> dict[tuple[str, str, int], float]:
    """(what, table, severity or 0) -> count: held rows, open incidents, remaining differences."""
    q, i, r = quarantine.c, incidents.c, reconcile_runs.c
    held = (
        sa.select(sa.literal(_HELD), q.table_name, sa.literal(0), sa.func.count())
        .where(q.status == HELD)
        .group_by(q.table_name)
    )
    open_incidents = (
        sa.select(sa.literal("incidents"), i.table_name, i.severity, sa.func.count())
        .where(i.closed_at.is_(None))
        .group_by(i.table_name, i.severity)
    )
    finished = r.status != "running"
    last = (
        sa.select(r.table_name, sa.func.max(r.started_at).label("started_at"))
        .where(finished)
        .group_by(r.table_name)
        .subquery("last")
    )
    remaining = (
        sa.select(
            sa.literal(_REMAINING),
            r.table_name,
            sa.literal(0),
            sa.func.coalesce(r.remaining, r.missing + r.extra + r.changed),
        )
        .join(last, sa.and_(last.c.table_name == r.table_name, last.c.started_at == r.started_at))
        .where(finished)
    )
    rows = conn.execute(sa.union_all(held, open_incidents, remaining)).tuples()
    return {(what, name, int(key)): value for what, name, key, value in rows}


def _waiting(conn: sa.Connection) -> dict[str, tuple[int, datetime]]:
    a = alerts.c
    query = (
        sa.select(a.table_name, sa.func.count(), sa.func.min(a.created_at))
        .where(a.state.in_([PENDING, SENDING]))
        .group_by(a.table_name)
    )
    return {name: (int(n), _instant(oldest)) for name, n, oldest in conn.execute(query).tuples()}


def _instant(value: Any) -> datetime:
    # SQLite hands an aggregate over a DateTime column back as text.
    return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
