"""What the Prometheus exporter tells about each table, read from pipewarden's own tables.

A read costs four queries whatever the number of tables, none of which reads a history:

* the newest cursor point of each synced table (one index lookup a table, driven by the
  watermarks, one row a table; the configured ones kept by the reader);
* the counts: held quarantine rows and open incidents by severity (grouped by table);
* the waiting alerts: how many and since when (the outbox's state index);
* the sync runs and reconciliations that started since the previous read (their `started_at`
  indexes): the reader keeps each table's latest run, last success and latest finished
  reconciliation, so their histories are read once, at the first read.
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
_HELD = "held"
_SYNC, _RECONCILE = "sync", "reconcile"


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
    """Reads the figures; keeps each table's latest sync run, last success and latest finished
    reconciliation between reads."""

    latest: dict[str, _Run] = field(default_factory=dict)
    success: dict[str, _Run] = field(default_factory=dict)
    since: datetime | None = None
    #: table -> (started_at, differences remaining) of its latest finished reconciliation
    reconciled: dict[str, tuple[datetime, float]] = field(default_factory=dict)
    reconciled_since: datetime | None = None

    def read(self, conn: sa.Connection, names: Sequence[str]) -> list[TableFigures]:
        """The figures of the named tables (four queries)."""
        newest = _newest_cursors(conn, names)
        counts = _counts(conn)
        waiting = _waiting(conn)
        self._read_runs(conn)
        return [self._figures(name, newest, counts, waiting) for name in names]

    def _read_runs(self, conn: sa.Connection) -> None:
        query = sa.union_all(*_runs_query(self.since), _reconciled_query(self.reconciled_since))
        reconciling: list[datetime] = []
        for kind, name, started, status, finished, value in conn.execute(query).tuples():
            at = utc(started)
            if kind == _RECONCILE:
                if status == "running":
                    reconciling.append(at)
                elif name not in self.reconciled or at >= self.reconciled[name][0]:
                    self.reconciled[name] = (at, value)
                continue
            run = _Run(at, status, None if finished is None else utc(finished), value)
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
        if self.reconciled or reconciling:
            seen = [at for at, _ in self.reconciled.values()] + reconciling
            self.reconciled_since = min([max(seen) - START_MARGIN, *reconciling])

    def _figures(
        self,
        name: str,
        newest: dict[str, float],
        counts: dict[tuple[str, str, int], float],
        waiting: dict[str, tuple[int, datetime]],
    ) -> TableFigures:
        latest, success = self.latest.get(name), self.success.get(name)
        epoch = newest.get(name)
        remaining = self.reconciled.get(name, (None, None))[1]
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


def _run_rows(kind: str, table: sa.Table, value: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """kind, table, start, status, end, value: the columns the runs query unites."""
    c = table.c
    columns = (c.table_name, c.started_at, c.status, c.finished_at)
    return sa.select(sa.literal(kind), *columns, sa.cast(value, sa.Float))


def _runs_query(since: datetime | None) -> list[sa.Select[Any]]:
    """The sync runs started since `since`; with none, each table's latest run and last
    success. Columns as `_reconciled_query`'s: kind, table, start, status, end, p95."""
    c = sync_runs.c
    runs = _run_rows(_SYNC, sync_runs, c.latency_p95_seconds)
    if since is not None:
        return [runs.where(c.started_at >= since)]
    newest = sa.select(c.table_name, sa.func.max(c.started_at).label("started_at"))
    newest = newest.group_by(c.table_name)
    picked = []
    for which in (newest, newest.where(c.status == "success")):
        found = which.subquery()
        match = sa.and_(found.c.table_name == c.table_name, found.c.started_at == c.started_at)
        picked.append(runs.join(found, match))
    return picked


def _reconciled_query(since: datetime | None) -> sa.Select[Any]:
    """The reconciliations started since `since` (running ones too: they are read again until
    they finish); with none, each table's latest finished one. Their value: the differences
    remaining."""
    r = reconcile_runs.c
    remaining = sa.func.coalesce(r.remaining, r.missing + r.extra + r.changed)
    runs = _run_rows(_RECONCILE, reconcile_runs, remaining)
    if since is not None:
        return runs.where(r.started_at >= since)
    finished = r.status != "running"
    last = (
        sa.select(r.table_name, sa.func.max(r.started_at).label("started_at"))
        .where(finished)
        .group_by(r.table_name)
        .subquery("last")
    )
    match = sa.and_(last.c.table_name == r.table_name, last.c.started_at == r.started_at)
    return runs.join(last, match).where(finished)


def _newest_cursors(conn: sa.Connection, names: Sequence[str]) -> dict[str, float]:
    m, w = metrics.c, watermarks.c
    point = (
        sa.select(m.value)
        .where(m.table_name == w.table_name, m.metric == NEWEST_CURSOR)
        .order_by(m.measured_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    # Every watermark, the wanted kept here: a list of 500 names bound in the query cost more
    # (its parameters, a comparison with each) than the rare unconfigured table's one lookup.
    wanted = set(names)
    rows = conn.execute(sa.select(w.table_name, point)).tuples()
    return {name: value for name, value in rows if value is not None and name in wanted}


def _counts(conn: sa.Connection) -> dict[tuple[str, str, int], float]:
    """(what, table, severity or 0) -> count: held rows, open incidents."""
    q, i = quarantine.c, incidents.c
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
    rows = conn.execute(sa.union_all(held, open_incidents)).tuples()
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
