"""A stream reconciled against the source table it mirrors: missed and unexpected deliveries.

Over a time window on the source's `time_column` (ending `settle` ago, so deliveries in flight
are not called lost), every source key that matches `where` should have arrived as an event of
`event_type` carrying it (`event_key`, kept in the landing table as `source_key`):

- missed: a source key in the window with no such event in the landing table at all;
- unexpected: an event in the window whose key the source does not have as an event row
  (looked up by key, whatever its time, so a row just across the window's edge is no finding).

With `repair`, each missed key is backfilled from the source row into the landing table (the
row as the payload, its `time_column` as the event time, `delivery = 'backfill'`, event id
`backfill:<key>` so a second repair adds nothing) and the latest state moves forward with it,
in one transaction. A backfilled event is the source row as stored and is not run through the
stream's payload checks (departure from the shared design's "same checks as a table": the
source table's own checks are its sync's). Unexpected events are reported, never removed: the
landing table is append-only. The run is recorded like a table's reconciliation
(`pipewarden_reconcile_runs`, its diffs and backfills), with metrics and alerts.
"""

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.alerts.announce import raise_alerts
from pipewarden.alerts.findings import from_reconcile_run
from pipewarden.config import PipewardenConfig, StreamConfig
from pipewarden.config.streams import StreamReconcileConfig
from pipewarden.db.engines import cached_engine, connect
from pipewarden.dialects import dialect_for
from pipewarden.events.delivery import Event, locate
from pipewarden.events.landing import advance_latest, land, landing_row
from pipewarden.events.tables import BACKFILL, ensure_stream_tables, landing_table
from pipewarden.records.evidence import Severity
from pipewarden.records.metrics import MetricPoint, write_metrics
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.reconcile_runs import (
    DiffRecord,
    ReconcileRun,
    RepairRecord,
    finish_run,
    record_diffs,
    record_repairs,
    start_run,
)
from pipewarden.records.values import utc
from pipewarden.sync.schema import TableShape, reflect
from pipewarden.verdict import Problem

CHUNK = 500


@dataclass
class StreamAudit:
    """What one reconciliation of a stream found and did."""

    stream: str
    since: datetime
    until: datetime
    run_id: str
    source_keys: int = 0
    missed: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    backfilled: list[str] = field(default_factory=list)
    repair: bool = False

    @property
    def remaining(self) -> int:
        return len(self.missed) - len(self.backfilled) + len(self.unexpected)

    def problems(self) -> list[Problem]:
        """What needs a person: missed deliveries left (error), events the source does not
        have (warn: they stay, the landing table is append-only), backfills done (warn)."""
        out: list[Problem] = []
        left = sorted(set(self.missed) - set(self.backfilled))
        if left:
            detail = f"{len(left)} deliveries missed ({', '.join(left[:5])})"
            action = f"run pipewarden reconcile {self.stream} --repair to backfill them"
            out.append(Problem(self.stream, "reconcile", Severity.ERROR, detail, action))
        if self.unexpected:
            detail = f"{len(self.unexpected)} events the source does not have "
            detail += f"({', '.join(self.unexpected[:5])})"
            action = "look them up in the landing table: a test shop, or a source row deleted"
            out.append(Problem(self.stream, "reconcile", Severity.WARN, detail, action))
        if self.backfilled:
            detail = f"{len(self.backfilled)} missed deliveries backfilled from the source"
            action = "nothing to do; frequent misses mean the sender drops webhooks"
            out.append(Problem(self.stream, "reconcile", Severity.WARN, detail, action))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "run_id": self.run_id,
            "since": self.since,
            "until": self.until,
            "source_keys": self.source_keys,
            "missed": self.missed,
            "unexpected": self.unexpected,
            "backfilled": self.backfilled,
            "remaining": self.remaining,
        }


def reconcile_stream(
    config: PipewardenConfig,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    repair: bool = False,
    now: datetime | None = None,
) -> StreamAudit:
    """Compare the stream's events with its source over the window; backfill with `repair`."""
    stream = config.streams[name]
    spec = stream.reconcile
    if spec is None:
        raise ValueError(f"streams.{name}: no reconcile section: the stream names no source table")
    now = utc(now or datetime.now(UTC))
    until = utc(until) if until else now - spec.settle
    since = utc(since) if since else until - spec.window
    if since >= until:
        raise ValueError(
            f"the window is empty: {since:%Y-%m-%d %H:%M:%S} is not before "
            f"{until:%Y-%m-%d %H:%M:%S}"
        )
    audit = StreamAudit(name, since, until, str(uuid.uuid4()), repair=repair)
    warehouse = cached_engine(config.warehouse.url, config.timeouts.engine())
    ensure_tables(warehouse)
    schema = config.warehouse.schema_name
    ensure_stream_tables(warehouse, [stream], schema)
    run = ReconcileRun(
        audit.run_id, name, now, action="repair" if repair else "dry-run", mode="stream"
    )
    run.key_range = f"{since.isoformat()}..{until.isoformat()}"
    start_run(warehouse, run)
    source = cached_engine(config.sources[spec.source].url, config.timeouts.engine())
    try:
        with connect(source) as conn:
            shape = _source_shape(conn, spec)
            in_window = _source_keys(conn, shape, spec, since, until)
        audit.source_keys = len(in_window)
        landing = landing_table(stream.landing_table, schema)
        with warehouse.connect() as conn:
            received = _received(conn, landing, spec.event_type, list(in_window))
            arrived = _arrived_in_window(conn, landing, spec.event_type, since, until)
        audit.missed = sorted(set(in_window) - received)
        candidates = sorted(arrived - set(in_window))
        with connect(source) as conn:
            known = _source_has(conn, shape, spec, candidates)
        audit.unexpected = [k for k in candidates if k not in known]
        if repair and audit.missed:
            audit.backfilled = _backfill(warehouse, schema, source, stream, shape, audit)
    except Exception as error:
        finish_run(warehouse, run, "failed", f"{type(error).__name__}: {error}")
        raise
    _record(warehouse, config, run, audit, now)
    return audit


def _source_shape(conn: sa.Connection, spec: StreamReconcileConfig) -> TableShape:
    shape = reflect(conn, spec.table, spec.source_schema)
    if shape is None:
        raise ValueError(f"source table {spec.table!r} not found")
    columns = [spec.key, spec.time_column, *spec.where]
    missing = [c for c in columns if c not in shape.table.c]
    if missing:
        raise ValueError(f"source table {spec.table!r} has no column {', '.join(missing)}")
    return shape


def _in_window(
    conn: sa.Connection,
    shape: TableShape,
    spec: StreamReconcileConfig,
    since: datetime,
    until: datetime,
) -> sa.ColumnElement[bool]:
    dialect = dialect_for(conn.dialect.name)
    column = shape.table.c[spec.time_column]
    kind = shape.kinds[spec.time_column]
    return sa.and_(
        dialect.at_or_after(column, _bound(column, since), kind),
        sa.not_(dialect.at_or_after(column, _bound(column, until), kind)),
    )


def _bound(column: sa.Column[Any], moment: datetime) -> datetime:
    """A column without a zone holds UTC wall-clock time (as the sync reads it)."""
    if isinstance(column.type, sa.DateTime) and not column.type.timezone:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _matching(shape: TableShape, spec: StreamReconcileConfig) -> list[sa.ColumnElement[bool]]:
    return [shape.table.c[column] == value for column, value in spec.where.items()]


def _source_keys(
    conn: sa.Connection,
    shape: TableShape,
    spec: StreamReconcileConfig,
    since: datetime,
    until: datetime,
) -> dict[str, None]:
    key: sa.Column[Any] = shape.table.c[spec.key]
    query = sa.select(key).where(
        _in_window(conn, shape, spec, since, until), *_matching(shape, spec)
    )
    found: list[Any] = list(conn.execute(query).scalars())
    return {str(k): None for k in found if k is not None}


def _source_has(
    conn: sa.Connection, shape: TableShape, spec: StreamReconcileConfig, keys: Sequence[str]
) -> set[str]:
    """Which of `keys` the source has as event rows, whatever their time."""
    key: sa.Column[Any] = shape.table.c[spec.key]
    found: set[str] = set()
    for chunk in _chunks(keys):
        values = [_as_key_type(key, k) for k in chunk]
        query = sa.select(key).where(
            key.in_([v for v in values if v is not None]), *_matching(shape, spec)
        )
        keys_found: list[Any] = list(conn.execute(query).scalars())
        found |= {str(k) for k in keys_found}
    return found


def _as_key_type(column: sa.Column[Any], text: str) -> Any:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return text
    try:
        return python_type(text) if python_type in (int, str) else text
    except ValueError:
        return None


def _received(conn: sa.Connection, landing: sa.Table, event_type: str, keys: list[str]) -> set[str]:
    """Which of `keys` arrived as an event of `event_type` (any time, any delivery)."""
    found: set[str] = set()
    for chunk in _chunks(keys):
        query = sa.select(landing.c.source_key).where(
            landing.c.event_type == event_type, landing.c.source_key.in_(chunk)
        )
        found |= set(conn.execute(query).scalars())
    return found


def _arrived_in_window(
    conn: sa.Connection, landing: sa.Table, event_type: str, since: datetime, until: datetime
) -> set[str]:
    query = sa.select(landing.c.source_key).where(
        landing.c.event_type == event_type,
        landing.c.event_time >= since,
        landing.c.event_time < until,
        landing.c.source_key.is_not(None),
    )
    return set(conn.execute(query).scalars())


def _backfill(
    warehouse: sa.Engine,
    schema: str | None,
    source: sa.Engine,
    stream: StreamConfig,
    shape: TableShape,
    audit: StreamAudit,
) -> list[str]:
    """Land the missed keys' source rows as backfilled events; returns the keys landed."""
    spec = stream.reconcile
    assert spec is not None
    key = shape.table.c[spec.key]
    rows: list[dict[str, Any]] = []
    with connect(source) as conn:
        for chunk in _chunks(audit.missed):
            values = [v for v in (_as_key_type(key, k) for k in chunk) if v is not None]
            query = sa.select(shape.table).where(key.in_(values), *_matching(shape, spec))
            rows += [dict(r._mapping) for r in conn.execute(query)]
    now = datetime.now(UTC)
    events = [_as_event(stream, spec, row, now) for row in rows]
    with warehouse.begin() as conn:
        inserted = land(conn, stream, schema, [landing_row(e, now, BACKFILL) for e in events])
        advance_latest(conn, stream, schema, [e for e in events if e.event_id in inserted])
        landed = [e for e in events if e.event_id in inserted]
        repairs = [RepairRecord([e.source_key], BACKFILL, None, None) for e in landed]
        record_repairs(conn, audit.run_id, stream.name, repairs)
    return sorted(e.source_key for e in events if e.source_key is not None)


def _as_event(
    stream: StreamConfig, spec: StreamReconcileConfig, row: dict[str, Any], now: datetime
) -> Event:
    payload = json.loads(json.dumps(row, default=_json_value))
    moment = row[spec.time_column]
    event_time = utc(moment) if isinstance(moment, datetime) else now
    subject = None
    if stream.subject is not None:
        found = locate(stream.subject, {}, payload)
        subject = None if found is None else str(found)
    key = str(row[spec.key])
    return Event(
        stream=stream.name,
        event_id=f"backfill:{key}",
        event_type=spec.event_type,
        event_time=event_time,
        received_at=now,
        subject=subject,
        source_key=key,
        payload=payload,
        body=json.dumps(payload),
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    return str(value)


def _record(
    engine: sa.Engine,
    config: PipewardenConfig,
    run: ReconcileRun,
    audit: StreamAudit,
    now: datetime,
) -> None:
    """The run, its diffs, metrics and alerts: what `pipewarden reconcile` records for a table."""
    diffs = [DiffRecord("missing", [k], [], None, None) for k in audit.missed]
    diffs += [DiffRecord("extra", [k], [], None, None) for k in audit.unexpected]
    record_diffs(engine, audit.run_id, audit.stream, diffs)
    run.rows_compared = audit.source_keys
    run.coverage = 1.0
    run.complete = True
    run.missing = len(audit.missed)
    run.extra = len(audit.unexpected)
    run.repaired = len(audit.backfilled)
    run.remaining = audit.remaining

    def also(conn: sa.Connection) -> None:
        points = {
            "events_missed": len(audit.missed),
            "events_unexpected": len(audit.unexpected),
            "events_backfilled": len(audit.backfilled),
        }
        write_metrics(
            conn, [MetricPoint(now, audit.stream, m, float(v)) for m, v in points.items()]
        )
        finding = from_reconcile_run(run, partial=False)
        method = "source keys over a time window against events received"
        finding = replace(finding, evidence=replace(finding.evidence, method=method))
        raise_alerts(conn, config, [finding], now)

    finish_run(engine, run, "success", also=also)


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])
