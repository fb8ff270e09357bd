"""Streams watched like tables: freshness against their SLA, anomalies in their delivery
latency and their events per hour, recorded as check results that raise alerts.

Freshness is the age of the newest event's own time in the landing table, so a stream that
goes silent ages and alerts on its SLA whether or not a receiver runs. Events per hour are
counted from the landing table once an hour is over (and `SETTLE` more for late deliveries),
written as `events_per_hour` points (in total, and by type with the label `type`), and the
newest total is scored against the stream's own past, as tables' volumes are. The receiver
writes `delivery_latency_p95_seconds` as it commits; its newest point is scored too.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
import sqlalchemy as sa

from pipewarden.alerts.announce import Coverage, raise_alerts
from pipewarden.alerts.findings import from_check_results
from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, Kind, score_tail
from pipewarden.checks.monitoring.freshness import freshness_result, freshness_status
from pipewarden.checks.monitoring.owners import record_checked_owners
from pipewarden.checks.monitoring.scoring import anomaly_result
from pipewarden.config import PipewardenConfig, StreamConfig
from pipewarden.db.engines import cached_engine
from pipewarden.events.tables import ensure_stream_tables, landing_table
from pipewarden.records.metrics import (
    CheckResult,
    MetricPoint,
    latest_values,
    metric_arrays,
    write_check_results,
    write_metrics,
)
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.values import utc

EVENTS_PER_HOUR = "events_per_hour"
LATENCY_P95 = "delivery_latency_p95_seconds"
#: The metrics scored and how the detector reads them (for latency only a rise is bad:
#: `ONLY_HIGH_IS_BAD` of the tables' checks).
SCORED: tuple[tuple[str, Kind], ...] = ((LATENCY_P95, "gauge"), (EVENTS_PER_HOUR, "count"))
HOUR = timedelta(hours=1)
#: An hour is counted this long after it ends: deliveries in flight arrive meanwhile.
SETTLE = timedelta(minutes=5)
#: Hours counted back at most when a stream has no count yet (or was not checked for long).
MAX_HOURS_BACK = 48
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0))


def stream_names(config: PipewardenConfig, names: Sequence[str] | None) -> list[str]:
    """`names` (every stream when empty), unknown ones refused together."""
    if not names:
        return list(config.streams)
    unknown = [n for n in names if n not in config.streams]
    if unknown:
        known = ", ".join(sorted(config.streams)) or "none"
        raise ValueError(f"unknown streams {', '.join(unknown)} (configured: {known})")
    return list(names)


def check_streams(
    config: PipewardenConfig,
    names: Sequence[str] | None = None,
    now: datetime | None = None,
    settings: DetectorSettings | None = None,
) -> list[CheckResult]:
    """Count the finished hours, judge freshness and anomalies, record results and alerts."""
    wanted = stream_names(config, names)
    if not wanted:
        return []
    now = utc(now or datetime.now(UTC))
    settings = settings or DetectorSettings()
    engine = cached_engine(config.warehouse.url, config.timeouts.engine())
    ensure_tables(engine)
    streams = [config.streams[n] for n in wanted]
    schema = config.warehouse.schema_name
    ensure_stream_tables(engine, streams, schema)
    run_id = str(uuid4())
    with engine.begin() as conn:
        write_metrics(conn, [p for s in streams for p in hourly_counts(conn, s, schema, now)])
    with engine.connect() as conn:
        newest = {s.name: newest_event(conn, s, schema) for s in streams}
        since = now - settings.history_window - HOUR
        series = metric_arrays(conn, wanted, [m for m, _ in SCORED], since, now, labels={})
    results = [_freshness(s, newest[s.name], now, run_id) for s in streams]
    for metric, kind in SCORED:
        for name in wanted:
            micros, values = series.get(metric, {}).get(name, _EMPTY)
            results.append(
                anomaly_result(
                    name, metric, kind, micros, values, settings, score_tail, now, run_id
                )
            )
    points = [
        MetricPoint(
            now,
            r.table_name,
            "check_outcome",
            float(r.severity),
            {"check": r.check, "status": r.status},
        )
        for r in results
    ]
    points += [
        MetricPoint(now, r.table_name, "check_freshness_seconds", r.observed)
        for r in results
        if r.check == "freshness" and r.observed is not None
    ]
    coverage = Coverage(frozenset(wanted), ("freshness", "anomaly:"), run_id=run_id)
    with engine.begin() as conn:
        write_check_results(conn, results)
        write_metrics(conn, points)
        record_checked_owners(conn, config, wanted, now)
        raise_alerts(conn, config, from_check_results(results), now, coverage)
    return results


def newest_event(conn: sa.Connection, stream: StreamConfig, schema: str | None) -> datetime | None:
    """The newest event's own time in the landing table (an index lookup)."""
    table = landing_table(stream.landing_table, schema)
    found = conn.execute(sa.select(sa.func.max(table.c.event_time))).scalar()
    return None if found is None else utc(found)


def hourly_counts(
    conn: sa.Connection, stream: StreamConfig, schema: str | None, now: datetime
) -> list[MetricPoint]:
    """`events_per_hour` points of the hours finished since the last counted one."""
    last_done = (now - SETTLE).replace(minute=0, second=0, microsecond=0)  # exclusive
    counted = latest_values(conn, EVENTS_PER_HOUR, [stream.name]).get(stream.name)
    oldest = last_done - MAX_HOURS_BACK * HOUR
    start = max(counted[0] + HOUR, oldest) if counted else oldest
    table = landing_table(stream.landing_table, schema)
    points: list[MetricPoint] = []
    hour = start
    while hour < last_done:
        query = (
            sa.select(table.c.event_type, sa.func.count())
            .where(table.c.event_time >= hour, table.c.event_time < hour + HOUR)
            .group_by(table.c.event_type)
        )
        by_type: dict[str, int] = dict(conn.execute(query).tuples().all())
        points.append(MetricPoint(hour, stream.name, EVENTS_PER_HOUR, float(sum(by_type.values()))))
        points += [
            MetricPoint(hour, stream.name, EVENTS_PER_HOUR, float(n), {"type": t})
            for t, n in by_type.items()
        ]
        hour += HOUR
    return points


def _freshness(
    stream: StreamConfig, newest: datetime | None, now: datetime, run_id: str
) -> CheckResult:
    sla = stream.freshness
    verdict = freshness_status(newest, now, sla.warn_after, sla.error_after)
    method = "sla: age of the newest event > warn_after warns, > error_after errs"
    reason = verdict.reason.replace("newest row", "newest event", 1)
    return freshness_result(stream.name, verdict, now, run_id, method, reason)
