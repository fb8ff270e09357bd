"""Metrics and check results in long format: what Grafana plots and what the detectors learn from.

`pipewarden_metrics` holds one row per (time, table, metric) with a float value and JSON labels
(written with sorted keys, so equal labels are equal text). The index (table, metric, time) serves
the two reads that matter: one metric's history for one or many tables over a time range.
`pipewarden_check_results` holds one row per check of a table (freshness, anomaly:<metric>,
drift:<column>), with the observed value, the expected range and why.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pipewarden.records.evidence import Evidence
from pipewarden.records.flow_runs import current_flow_run_id
from pipewarden.records.tables import RowId, metadata
from pipewarden.records.values import utc as _utc

if TYPE_CHECKING:  # polars, numpy and the dialects load where a function needs them, not for
    import numpy as np  # `pipewarden status`, which reads this module
    import polars as pl


metrics = sa.Table(
    "pipewarden_metrics",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("labels", sa.Text, nullable=False, default="{}"),
    sa.Index("ix_pipewarden_metrics_series", "table_name", "metric", "measured_at"),
)

check_results = sa.Table(
    "pipewarden_check_results",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("check", sa.String(300), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("observed", sa.Float),
    # When the observed value was measured (an anomaly check scores the newest point).
    sa.Column("observed_at", sa.DateTime(timezone=True)),
    sa.Column("expected_low", sa.Float),
    sa.Column("expected_high", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("method", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("history_size", sa.Integer),
    sa.Column("run_id", sa.String(36), nullable=False),
    # The Prefect flow run the check ran in (NULL outside Prefect).
    sa.Column("flow_run_id", sa.String(36)),
    sa.Index("ix_pipewarden_check_results_table", "table_name", "checked_at"),
)


@dataclass(frozen=True)
class MetricPoint:
    """One measurement: a value of a metric of a table at a time, with labels."""

    measured_at: datetime
    table_name: str
    metric: str
    value: float
    labels: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class CheckResult(Evidence):
    """The evidence one check gave about one table, as the check run at `checked_at` recorded
    it (and `pipewarden check` shows it)."""

    checked_at: datetime


def labels_text(labels: dict[str, Any] | None) -> str:
    """Labels as canonical JSON text (sorted keys), so equal labels compare equal in SQL."""
    return json.dumps(labels or {}, sort_keys=True, default=str)


def write_metrics(conn: sa.Connection, points: Iterable[MetricPoint]) -> int:
    """Insert points (in the caller's transaction); skips NaN values. Returns rows written."""
    rows = [
        (_utc(p.measured_at), p.table_name, p.metric, float(p.value), labels_text(p.labels))
        for p in points
        if p.value is not None and p.value == p.value
    ]
    if rows:
        import polars as pl

        from pipewarden.dialects import dialect_for

        frame = pl.DataFrame(rows, schema=_metric_schema(), orient="row")
        dialect_for(conn.dialect.name).append(conn, metrics, frame)
    return len(rows)


@cache
def _metric_schema() -> dict[str, pl.DataType | type[pl.DataType]]:
    import polars as pl

    return {
        "measured_at": pl.Datetime("us", "UTC"),
        "table_name": pl.String,
        "metric": pl.String,
        "value": pl.Float64,
        "labels": pl.String,
    }


def history(
    conn: sa.Connection,
    table_name: str,
    metric: str,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: dict[str, Any] | None = None,
) -> tuple[list[datetime], list[float]]:
    """One metric's series for one table, oldest first, within `[since, until]`."""
    series = histories(conn, [table_name], metric, since, until, labels)
    return series.get(table_name, ([], []))


Series = tuple[list[datetime], list[float]]
#: A series as arrays: instants in microseconds since the epoch (UTC, int64), values (float64).
EpochSeries = tuple["np.ndarray", "np.ndarray"]


def histories(
    conn: sa.Connection,
    table_names: Sequence[str] | None,
    metric: str,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: dict[str, Any] | None = None,
) -> dict[str, Series]:
    """One metric's series for many tables in one query: `{table: (times, values)}`."""
    arrays = metric_arrays(conn, table_names, [metric], since, until, labels).get(metric, {})
    return {name: as_datetimes(series) for name, series in arrays.items()}


def metric_arrays(
    conn: sa.Connection,
    table_names: Sequence[str] | None,
    metric_names: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    labels: dict[str, Any] | None = None,
) -> dict[str, dict[str, EpochSeries]]:
    """Several metrics' series for many tables in one scan: `{metric: {table: arrays}}`.

    Arrays, not datetimes: a 200-table check run reads 400,000 points, and a Python datetime per
    point cost more than the detector's arithmetic on them. Each series is in time order
    (`Dialect.fetch_series`).
    """
    c = metrics.c
    q = sa.select(c.metric, c.table_name, c.measured_at, c.value).where(
        c.metric.in_(list(metric_names))
    )
    if table_names is not None:
        q = q.where(c.table_name.in_(list(table_names)))
    if since is not None:
        q = q.where(c.measured_at >= _utc(since))
    if until is not None:
        q = q.where(c.measured_at <= _utc(until))
    if labels is not None:
        q = q.where(c.labels == labels_text(labels))
    from pipewarden.dialects import dialect_for

    out: dict[str, dict[str, EpochSeries]] = defaultdict(dict)
    for (metric, table_name), series in (
        dialect_for(conn.dialect.name).fetch_series(conn, q).items()
    ):
        out[metric][table_name] = series
    return dict(out)


def as_datetimes(series: EpochSeries) -> Series:
    """An array series as aware UTC datetimes and floats."""
    micros, values = series
    return [_EPOCH + timedelta(microseconds=m) for m in micros.tolist()], values.tolist()


def as_instant(micros: int | np.integer) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=int(micros))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def name_chunks(names: Sequence[str], size: int = 400) -> Iterator[sa.Subquery]:
    """The names as derived tables `wanted(name)` of at most `size` rows (SQLite's compound limit
    is 500), to correlate per-name `ORDER BY … LIMIT 1` subqueries with. Per name, an index
    answers those without reading the history, which a GROUP BY over the table would scan."""
    unique = list(dict.fromkeys(names))
    for i in range(0, len(unique), size):
        chunk = unique[i : i + size]
        # Textual SQL of bound parameters only: SQLAlchemy's union of 400 selects spent more on
        # column bookkeeping than the query took.
        union = " UNION ALL ".join(f"SELECT :name_{k} AS name" for k in range(len(chunk)))
        rows = sa.text(union).bindparams(
            *(sa.bindparam(f"name_{k}", n, type_=sa.String) for k, n in enumerate(chunk))
        )
        yield rows.columns(sa.column("name", sa.String)).subquery("wanted")


def latest_values(
    conn: sa.Connection, metric: str, table_names: Sequence[str]
) -> dict[str, tuple[datetime, float]]:
    """The newest `(measured_at, value)` of a metric per table (index lookups, no scan)."""
    c = metrics.c
    out: dict[str, tuple[datetime, float]] = {}
    for wanted in name_chunks(table_names):
        newest = (
            sa.select(c.measured_at, c.value)
            .where(c.table_name == wanted.c.name, c.metric == metric)
            .order_by(c.measured_at.desc())
            .limit(1)
        )
        q = sa.select(
            wanted.c.name,
            newest.with_only_columns(c.measured_at).scalar_subquery(),
            newest.with_only_columns(c.value).scalar_subquery(),
        )
        for name, at, value in conn.execute(q).tuples():
            if at is not None:
                out[name] = (_utc(at), value)
    return out


def write_check_results(conn: sa.Connection, results: Iterable[CheckResult]) -> int:
    """Insert check results (in the caller's transaction), in bulk where the database can."""
    rows = []
    flow_run_id = current_flow_run_id()
    for r in results:
        row = [getattr(r, name) for name in _RESULT_FIELDS]  # asdict deep-copies every field
        row[_CHECKED] = _utc(r.checked_at)
        row[_OBSERVED] = None if r.observed_at is None else _utc(r.observed_at)
        row.append(flow_run_id)
        rows.append(row)
    if rows:
        import polars as pl

        from pipewarden.dialects import dialect_for

        frame = pl.DataFrame(rows, schema=_check_result_schema(), orient="row")
        dialect_for(conn.dialect.name).append(conn, check_results, frame)
    return len(rows)


@cache
def _check_result_schema() -> dict[str, pl.DataType | type[pl.DataType]]:
    import polars as pl

    instant = pl.Datetime("us", "UTC")
    return {  # in the order of `_RESULT_FIELDS`, then the flow run
        "table_name": pl.String,
        "check": pl.String,
        "status": pl.String,
        "observed": pl.Float64,
        "observed_at": instant,
        "expected_low": pl.Float64,
        "expected_high": pl.Float64,
        "score": pl.Float64,
        "method": pl.String,
        "reason": pl.String,
        "history_size": pl.Int64,
        "run_id": pl.String,
        "checked_at": instant,
        "flow_run_id": pl.String,
    }


def latest_check_results(
    conn: sa.Connection, table_names: Sequence[str]
) -> dict[str, list[CheckResult]]:
    """Per table, the results of its most recent check run (index lookups, no scan)."""
    c = check_results.c
    out: dict[str, list[CheckResult]] = defaultdict(list)
    for wanted in name_chunks(table_names):
        newest = (
            sa.select(c.checked_at)
            .where(c.table_name == wanted.c.name)
            .order_by(c.checked_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        latest = sa.select(wanted.c.name, newest.label("at")).subquery("latest")
        q = (
            sa.select(*(c[name] for name in _RESULT_FIELDS))
            .join(latest, sa.and_(c.table_name == latest.c.name, c.checked_at == latest.c.at))
            .order_by(c.table_name, c.id)
        )
        # Plain tuples: a 200-table check run reads back 2,400 results, and row mappings cost
        # more than the query.
        for row in conn.execute(q).tuples().all():
            values = list(row)
            values[_CHECKED] = _utc(values[_CHECKED])
            if values[_OBSERVED] is not None:
                values[_OBSERVED] = _utc(values[_OBSERVED])
            result = CheckResult(**dict(zip(_RESULT_FIELDS, values, strict=True)))
            out[result.table_name].append(result)
    return dict(out)


_RESULT_FIELDS = tuple(f.name for f in fields(CheckResult))
_CHECKED, _OBSERVED = _RESULT_FIELDS.index("checked_at"), _RESULT_FIELDS.index("observed_at")
