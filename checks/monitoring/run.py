"""`run_checks`: freshness, anomaly, volume and column checks of every table, with their reasons.

Reads are per family, never per table or point: one statement for the newest loaded cursor of
all tables, one for their latest runs, one for their last checks, and one scan for the histories
of every anomaly metric of all tables over the detector's window. Each table's newest point is
then scored against its own past by `checks.monitoring.anomaly.detector.score_latest`, which keeps
earlier anomalies out of the baseline by itself, so no excluded windows are passed. Full loads
carry the label `{"load": "full"}` and are left out of the histories: a first load is not a
delta and says nothing about the next one. A point already scored by the previous check keeps
its verdict (scoring uses the past only), so checks that run more often than syncs are cheap.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import sqlalchemy as sa

from pipewarden.alerts.announce import Coverage, raise_alerts
from pipewarden.alerts.findings import from_check_results
from pipewarden.checks.monitoring.anomaly.detector import (
    DetectorSettings,
    score_tail,
    table_settings,
)
from pipewarden.checks.monitoring.column_monitor import column_results
from pipewarden.checks.monitoring.freshness import describe, freshness_result
from pipewarden.checks.monitoring.histories import ScoringRead
from pipewarden.checks.monitoring.owners import record_checked_owners
from pipewarden.checks.monitoring.processes import table_helpers
from pipewarden.checks.monitoring.scoring import Scorer
from pipewarden.checks.monitoring.state import TableState, table_states
from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.records.metrics import (
    CheckResult,
    MetricPoint,
    write_check_results,
    write_metrics,
)
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.values import utc

#: The checks a check run gives a result for on every table it checks (the column monitors:
#: on every column of the latest samples); an open incident of these without a result this
#: run is no longer checked and is closed. Sync, reconcile and schema incidents are not ours.
CHECK_KINDS = ("freshness", "anomaly:", "drift:", "null_rate:")


def run_checks(
    config: PipewardenConfig,
    tables: Sequence[str] | None = None,
    now: datetime | None = None,
    settings: DetectorSettings | None = None,
    scorer: Scorer = score_tail,
) -> list[CheckResult]:
    """Check freshness and the newest point of each anomaly metric; record and return results."""
    names = list(tables) if tables else list(config.tables)
    for name in names:
        config.table(name)  # unknown names fail before anything is recorded
    now = utc(now or datetime.now(UTC))
    # Each check reports its point's own verdict: the alerts open an incident from it and close
    # it with a recovery, so an anomaly is not held here (keep_firing_for is the backtest's
    # picture of an alert rule that holds one).
    settings = settings or DetectorSettings(keep_firing_for=timedelta(0))
    engine = cached_engine(config.warehouse.url, config.timeouts.engine())
    ensure_tables(engine)
    run_id = str(uuid4())
    # Spawned helpers (a flow's) start their interpreters now, while this process reads.
    with table_helpers(len(names), shared=scorer is score_tail) as helpers:
        states = table_states(engine, config, names, now)
        own = {n: _own_settings(settings, config, n) for n in names}
        window = max((s.history_window for s in own.values()), default=settings.history_window)
        reading = ScoringRead(
            config.warehouse.url,
            config.timeouts.engine(),
            now - window - timedelta(hours=1),
            now,
            run_id,
            settings,
            own,
            {name: states[name].last_checks for name in names},
            scorer,
        )
        # Spawned helpers read their own tables' histories while this process reads its
        # share; forked ones find every history read.
        per_table = helpers.map(names, reading if helpers.spawned else reading.scoring)
    results = [_freshness_result(states[n], now, run_id) for n in names]
    results += [r for checks in per_table for r in checks[:-1]]  # anomalies, then volumes
    results += [checks[-1] for checks in per_table]
    results += column_results(engine, config, names, now, run_id)
    coverage = Coverage(frozenset(names), CHECK_KINDS, unconfigured=not tables, run_id=run_id)
    _record(engine, config, states, results, now, coverage)
    return results


def _own_settings(
    settings: DetectorSettings, config: PipewardenConfig, name: str
) -> DetectorSettings:
    """The detector settings of one table: the run's, with the table's `anomaly` choices."""
    chosen = config.table(name).anomaly
    return table_settings(settings, chosen.sensitivity, chosen.min_change, chosen.season)


def _freshness_result(state: TableState, now: datetime, run_id: str) -> CheckResult:
    verdict = state.freshness
    reason = verdict.reason
    if state.staleness is not None:
        reason += f"; last successful sync {describe(state.staleness)} ago"
    else:
        reason += "; never synced successfully"
    method = "sla: age > warn_after warns, age > error_after errs"
    return freshness_result(state.name, verdict, now, run_id, method, reason)


def _sla_points(state: TableState, now: datetime) -> list[MetricPoint]:
    """The SLA a table was judged by, beside its age: Grafana draws the thresholds as they were."""
    limits = {
        "freshness_warn_after_seconds": state.freshness.warn_after,
        "freshness_error_after_seconds": state.freshness.error_after,
    }
    return [
        MetricPoint(now, state.name, metric, limit.total_seconds())
        for metric, limit in limits.items()
        if limit is not None
    ]


def _record(
    engine: sa.Engine,
    config: PipewardenConfig,
    states: dict[str, TableState],
    results: list[CheckResult],
    now: datetime,
    coverage: Coverage,
) -> None:
    """Results, their metrics and the alerts they raise in one transaction: a check run is
    recorded whole or not."""
    points: list[MetricPoint] = []
    for state in states.values():
        if state.freshness.age is not None:
            age = state.freshness.age.total_seconds()
            points.append(MetricPoint(now, state.name, "check_freshness_seconds", age))
        points += _sla_points(state, now)
        if state.staleness is not None:
            stale = state.staleness.total_seconds()
            points.append(MetricPoint(now, state.name, "staleness_seconds", stale))
    for r in results:
        labels = {"check": r.check, "status": r.status}
        points.append(MetricPoint(now, r.table_name, "check_outcome", float(r.severity), labels))
    with engine.begin() as conn:
        write_check_results(conn, results)
        write_metrics(conn, points)
        record_checked_owners(conn, config, states, now)
        raise_alerts(conn, config, from_check_results(results), now, coverage)
