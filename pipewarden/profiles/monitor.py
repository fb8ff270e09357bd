"""The profile table watched like the synced tables, after each build.

A build leaves what a sync leaves: metric points (the freshness of its oldest input as the
table's newest cursor, the rows, each segment's size), check results and, through the same
alert path, incidents and Slack messages. Its checks:

* `freshness`: the age of the oldest input the profiles read (`BuildResult.data_as_of`:
  customers, orders, the cart stream) against `profiles.warn_after` / `error_after`;
* `schema`: the build's own SQL checks over the whole table and the Pandera model
  (`profile_schema`) on the rows it changed (at most `MODEL_ROWS` of them); a failure marks
  the build failed, so the API serves the last good snapshot instead;
* `anomaly:profile_segment_size:NAME`: each segment's size scored by the tables' detector
  against its own past builds (quiet until it has `min_history` builds);
* `segment_change:NAME`: a plain rule that needs no history: a segment at most half, or at
  least twice, its size at the newest build a day or more before (else the oldest build
  known) errs. Segments smaller than `SEGMENT_MIN` on both sides are left to the detector;
* `customer_keys`: warns when orders name no known customer (`order_keys`): they are in no
  profile. An incremental build reads only the orders changed since the last one, so it
  reports only when it finds some: it cannot tell that older ones were mended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
import sqlalchemy as sa

from pipewarden.alerts.announce import Coverage, raise_alerts
from pipewarden.alerts.findings import from_check_results
from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, score_tail
from pipewarden.checks.monitoring.freshness import freshness_result, freshness_status
from pipewarden.checks.monitoring.scoring import anomaly_result
from pipewarden.config import PipewardenConfig, ProfilesConfig
from pipewarden.measurements.cursor import NEWEST_CURSOR
from pipewarden.profiles.build import BuildResult
from pipewarden.profiles.profile_schema import profile_problems
from pipewarden.profiles.tables import builds_table, read_profiles
from pipewarden.records.evidence import ERROR, OK, WARN
from pipewarden.records.metrics import (
    CheckResult,
    MetricPoint,
    metric_arrays,
    write_check_results,
    write_metrics,
)
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.values import utc

SEGMENT_SIZE = "profile_segment_size"
PROFILE_ROWS = "profile_rows"
#: A segment this many times smaller, or larger, than a day before errs, whatever the history.
SEGMENT_RATIO = 2.0
#: The span the plain rule compares over ("overnight").
SEGMENT_SPAN = timedelta(days=1)
#: Segments below this size at both builds are too small for the plain rule (3 → 1 is noise).
SEGMENT_MIN = 20
#: The changed rows the Pandera model reads at most, evenly spaced: every row of a full build
#: is changed, and reading them all cost as much as the build (the SQL checks cover the table).
MODEL_ROWS = 10_000
#: The checks every build gives a result for (an incident of a segment that is gone closes).
CHECK_KINDS = ("freshness", "schema", f"anomaly:{SEGMENT_SIZE}:", "segment_change:")


def model_sample(changed: list[str]) -> list[str]:
    """At most `MODEL_ROWS` of the changed keys, evenly spaced (all of them when fewer)."""
    step = -(-len(changed) // MODEL_ROWS)
    return changed if step <= 1 else changed[::step]


def segment_sizes(conn: sa.Connection, config: PipewardenConfig) -> dict[str, int]:
    """Customers per segment now, every declared segment present (an empty one is 0)."""
    spec = _spec(config)
    table = sa.table(spec.table, sa.column("segment"), schema=config.warehouse.schema_name)
    query = sa.select(table.c.segment, sa.func.count()).group_by(table.c.segment)
    found = {str(s): int(n) for s, n in conn.execute(query).tuples() if s is not None}
    names = [rule.name for rule in spec.segments] + [spec.default_segment]
    return {name: found.get(name, 0) for name in names} | found


def watch_build(
    engine: sa.Engine,
    config: PipewardenConfig,
    result: BuildResult,
    now: datetime | None = None,
    settings: DetectorSettings | None = None,
) -> list[CheckResult]:
    """Record the build's points and checks and raise their alerts; a build whose rows fail
    the model is marked failed (`result` too) before anyone trusts it."""
    spec = _spec(config)
    name = spec.table
    now = utc(now or datetime.now(UTC))
    at = utc(result.as_of)
    settings = settings or DetectorSettings(keep_firing_for=timedelta(0))
    run_id = str(uuid4())
    ensure_tables(engine)
    problems = list(result.problems)
    problems += profile_problems(spec, read_profiles(engine, config, model_sample(result.changed)))
    if problems and result.status == "ok":
        _mark_failed(engine, config, result, problems)
    with engine.connect() as conn:
        sizes = segment_sizes(conn, config)
        since = at - max(settings.history_window, SEGMENT_SPAN) - timedelta(hours=1)
        past = {
            segment: metric_arrays(
                conn, [name], [SEGMENT_SIZE], since, at, labels={"segment": segment}
            )
            .get(SEGMENT_SIZE, {})
            .get(name, (np.zeros(0, dtype=np.int64), np.zeros(0)))
            for segment in sizes
        }
    points = [MetricPoint(at, name, PROFILE_ROWS, float(result.rows))]
    points += [
        MetricPoint(at, name, SEGMENT_SIZE, float(n), {"segment": s}) for s, n in sizes.items()
    ]
    if result.data_as_of is not None:
        points.append(MetricPoint(now, name, NEWEST_CURSOR, utc(result.data_as_of).timestamp()))
    results = [
        _freshness(spec, result, now, run_id),
        _schema(name, problems, result, now, run_id),
    ]
    kinds: tuple[str, ...] = CHECK_KINDS
    if result.mode == "full" or result.unknown_customer_orders:
        results.append(_customer_keys(name, result, now, run_id))
        kinds = (*kinds, "customer_keys")
    for segment, n in sizes.items():
        micros, values = _with_point(past[segment], at, n)
        metric = f"{SEGMENT_SIZE}:{segment}"
        scored = anomaly_result(
            name, metric, "count", micros, values, settings, score_tail, now, run_id
        )
        results.append(scored)
        results.append(segment_change(name, segment, micros, values, now, run_id))
    points += [
        MetricPoint(
            now, name, "check_outcome", float(r.severity), {"check": r.check, "status": r.status}
        )
        for r in results
    ]
    points += _freshness_points(spec, results[0], now)
    coverage = Coverage(frozenset([name]), kinds, run_id=run_id)
    with engine.begin() as conn:
        write_metrics(conn, points)
        write_check_results(conn, results)
        raise_alerts(conn, config, from_check_results(results), now, coverage)
    return results


def segment_change(
    name: str,
    segment: str,
    micros: np.ndarray,
    values: np.ndarray,
    now: datetime,
    run_id: str,
) -> CheckResult:
    """The plain rule: the newest size against the size a day before (see the module)."""
    base = CheckResult(
        checked_at=now,
        table_name=name,
        check=f"segment_change:{segment}",
        status=OK,
        method=f"size at most 1/{SEGMENT_RATIO:g} or at least {SEGMENT_RATIO:g}x the size "
        f"{SEGMENT_SPAN.days} day before errs",
        history_size=len(values),
        run_id=run_id,
    )
    if len(values) < 2:
        return replace(base, reason="first build with this segment: nothing to compare with")
    newest, when = float(values[-1]), int(micros[-1])
    day_before = np.flatnonzero(micros <= when - int(SEGMENT_SPAN.total_seconds() * 1e6))
    i = int(day_before[-1]) if len(day_before) else 0
    before = float(values[i])
    then = datetime.fromtimestamp(micros[i] / 1e6, UTC)
    observed_at = datetime.fromtimestamp(when / 1e6, UTC)
    low, high = before / SEGMENT_RATIO, before * SEGMENT_RATIO
    found = replace(
        base,
        observed=newest,
        observed_at=observed_at,
        expected_low=low,
        expected_high=high,
        score=newest / before if before else None,
    )
    compared = f"{segment}: {newest:,.0f} customers, {before:,.0f} at {then:%Y-%m-%d %H:%M} UTC"
    if max(newest, before) < SEGMENT_MIN:
        return replace(found, reason=f"{compared}; under {SEGMENT_MIN} customers, not judged")
    if newest <= low or newest >= high:
        how = "halved or worse" if newest <= low else "doubled or more"
        return replace(found, status=ERROR, reason=f"{compared}: {how}")
    return replace(found, reason=f"{compared}: within 1/{SEGMENT_RATIO:g} – {SEGMENT_RATIO:g}x")


def _with_point(
    series: tuple[np.ndarray, np.ndarray], at: datetime, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The past sizes of a segment and this build's (not written yet), in time order."""
    micros, values = series
    instant = int(at.timestamp() * 1_000_000)
    keep = micros < instant
    return (
        np.append(micros[keep], np.int64(instant)),
        np.append(values[keep], float(size)),
    )


def _freshness(
    spec: ProfilesConfig, result: BuildResult, now: datetime, run_id: str
) -> CheckResult:
    verdict = freshness_status(result.data_as_of, now, spec.warn_after, spec.error_after)
    method = (
        "sla: age of the oldest input (tables, cart stream) > warn_after warns, > error_after errs"
    )
    reason = verdict.reason.replace("newest row", "oldest input's newest change", 1)
    return freshness_result(spec.table, verdict, now, run_id, method, reason)


def _freshness_points(spec: ProfilesConfig, fresh: CheckResult, now: datetime) -> list[MetricPoint]:
    """The age and the SLA it was judged by, as the table checks write them for the freshness
    dashboard's panels."""
    points = []
    if fresh.observed is not None:
        points.append(MetricPoint(now, spec.table, "check_freshness_seconds", fresh.observed))
    for metric, limit in (
        ("freshness_warn_after_seconds", spec.warn_after),
        ("freshness_error_after_seconds", spec.error_after),
    ):
        if limit is not None:
            points.append(MetricPoint(now, spec.table, metric, limit.total_seconds()))
    return points


def _schema(
    name: str, problems: Iterable[str], result: BuildResult, now: datetime, run_id: str
) -> CheckResult:
    problems = list(problems)
    method = "one profile per customer, scores in range, declared segments; Pandera model"
    return CheckResult(
        checked_at=now,
        table_name=name,
        check="schema",
        status=ERROR if problems else OK,
        observed=float(len(problems)),
        observed_at=utc(result.as_of),
        method=method,
        reason="; ".join(problems)[:1000]
        if problems
        else f"build {result.build_id} ({result.mode}): {result.rows:,} profiles pass",
        run_id=run_id,
    )


def _customer_keys(name: str, result: BuildResult, now: datetime, run_id: str) -> CheckResult:
    n = result.unknown_customer_orders
    read = "all orders" if result.mode == "full" else "the orders changed since the last build"
    return CheckResult(
        checked_at=now,
        table_name=name,
        check="customer_keys",
        status=WARN if n else OK,
        observed=float(n),
        observed_at=utc(result.as_of),
        method="orders whose customer id equals no customer key as text; warns when any",
        reason=f"build {result.build_id} ({result.mode}): {n:,} orders name no known customer "
        f"among {read} (credited to no one)",
        run_id=run_id,
    )


def _mark_failed(
    engine: sa.Engine, config: PipewardenConfig, result: BuildResult, problems: list[str]
) -> None:
    """The build's record says failed, with why: the API then trusts its last good build."""
    builds = builds_table(config.warehouse.schema_name)
    with engine.begin() as conn:
        conn.execute(
            sa.update(builds)
            .where(builds.c.build_id == result.build_id)
            .values(status="failed", problems="; ".join(problems)[:4000])
        )
    result.status, result.problems = "failed", problems


def _spec(config: PipewardenConfig) -> ProfilesConfig:
    if config.profiles is None:
        raise ValueError("the configuration declares no profiles (profiles: in pipewarden.yaml)")
    return config.profiles
