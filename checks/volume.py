"""Volume by cursor time: rows that changed in each source hour, whatever the sync cadence.

Rows per sync run depend on when the syncs ran: a run minutes after another loads a few rows and
looks like a collapse, a run after an outage loads hours of rows and looks like a burst. Rows per
*cursor* hour (`rows_by_cursor_hour`, counted by the sync from the rows' own cursor values, rows
re-read by the lookback counted once) measure the source, not the scheduler: the points of every
run that touched an hour are summed, so an hour's count is the same whether one run or twelve
loaded it. The elapsed-time alternative (rows per hour since the previous run) stays a rate with
the noise of its shortest runs and is no count, so the detector's count test could not use it.

An hour is complete once a successful sync started after it ended (or a later row was loaded);
hours in between that have no point had no rows and count as zero. The newest complete hour is
scored against its own past, both ways. The hour in progress is a count that can only grow, so it
is also scored, and only a verdict above its band counts: a burst is reported as it happens, a
shortfall only when the hour is over.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from checks.anomaly.detector import DetectorSettings, Verdict
from pipewarden.metrics.sync_metrics import NEWEST_CURSOR
from pipewarden.records.metrics import (
    ANOMALY,
    INSUFFICIENT,
    OK,
    CheckResult,
    histories,
    latest_check_results,
    latest_values,
    name_chunks,
)
from pipewarden.records.tables import sync_runs

VOLUME = "rows_by_cursor_hour"
HOUR = timedelta(hours=1)

Scorer = Callable[..., Verdict]


def volume_results(
    engine: sa.Engine,
    names: Sequence[str],
    now: datetime,
    run_id: str,
    settings: DetectorSettings,
    scorer: Scorer,
) -> list[CheckResult]:
    """`anomaly:rows_by_cursor_hour` of each named table; full loads' hours are left out."""
    since = now - settings.history_window - HOUR
    with engine.connect() as conn:
        series = histories(conn, names, VOLUME, since=since, until=now, labels={})
        newest = latest_values(conn, NEWEST_CURSOR, names)
        started = _last_success_start(conn, names)
        earlier = {
            name: r
            for name, checks in latest_check_results(conn, names).items()
            for r in checks
            if r.check == f"anomaly:{VOLUME}" and r.status != INSUFFICIENT
        }
    results = []
    for name in names:
        times, values = series.get(name, ([], []))
        seen = [datetime.fromtimestamp(newest[name][1], UTC)] if name in newest else []
        covered = max([*seen, *([started[name]] if name in started else [])], default=None)
        open_hour = _hour(min(covered, now)) if covered is not None else None
        hours, counts = hourly_counts(times, values, open_hour)
        result = _result(name, hours, counts, settings, scorer, now, run_id, earlier.get(name))
        results.append(result)
    return results


def hourly_counts(
    times: Sequence[datetime], values: Sequence[float], open_hour: datetime | None
) -> tuple[list[datetime], list[float]]:
    """Points summed per hour, hours without a point as zero, up to the hour in progress.

    Without `open_hour` the hour of the newest point is taken as the one in progress.
    """
    sums: dict[datetime, float] = {}
    for at, value in zip(times, values, strict=True):
        hour = _hour(at)
        sums[hour] = sums.get(hour, 0.0) + value
    if not sums:
        return [], []
    last = open_hour if open_hour is not None else max(sums)
    hours, counts = [], []
    hour = min(sums)
    while hour <= last:
        hours.append(hour)
        counts.append(sums.get(hour, 0.0))
        hour += HOUR
    return hours, counts


def _result(
    name: str,
    hours: list[datetime],
    counts: list[float],
    settings: DetectorSettings,
    scorer: Scorer,
    now: datetime,
    run_id: str,
    earlier: CheckResult | None = None,
) -> CheckResult:
    """The complete hour's verdict, unless the hour in progress is already too high.

    A verdict of the last check on the same hour and count is reused: scoring is from the past
    only, so it would come out the same, and checks may run far more often than syncs.
    """
    base = CheckResult(now, name, f"anomaly:{VOLUME}", INSUFFICIENT, run_id=run_id)
    if len(hours) < 2:
        reason = f"no complete cursor hour yet ({len(hours)} hours with rows or after them)"
        return replace(base, reason=reason, history_size=0)
    if _same(earlier, hours[-1], counts[-1]) and earlier is not None and earlier.failing:
        return replace(earlier, checked_at=now, run_id=run_id)
    if _same(earlier, hours[-2], counts[-2]) and earlier is not None:
        complete = replace(earlier, checked_at=now, run_id=run_id)
        if complete.failing or counts[-1] == 0:
            return complete
        verdict = None
    else:
        verdict = scorer(hours[:-1], counts[:-1], settings, kind="count")
        complete = None
    at, note = hours[-2], "the last complete hour"
    if (verdict is None or not verdict.is_anomaly) and counts[-1] > 0:
        so_far = scorer(hours, counts, settings, kind="count")
        high = so_far.expected_high is not None and so_far.observed > so_far.expected_high
        if so_far.is_anomaly and high:
            verdict, at = so_far, hours[-1]
            note = "in progress: so far, and it can only grow"
    if verdict is None:
        assert complete is not None
        return complete
    status = ANOMALY if verdict.is_anomaly else OK
    if verdict.expected_low is None:
        status = INSUFFICIENT
    return CheckResult(
        checked_at=now,
        table_name=name,
        check=base.check,
        status=status,
        observed=verdict.observed,
        observed_at=at,
        expected_low=verdict.expected_low,
        expected_high=verdict.expected_high,
        score=verdict.score,
        method=verdict.method,
        reason=f"rows in cursor hour {at:%H:00} ({note}): {verdict.reason}",
        history_size=verdict.history_size,
        run_id=run_id,
    )


def _same(earlier: CheckResult | None, hour: datetime, count: float) -> bool:
    return earlier is not None and earlier.observed_at == hour and earlier.observed == count


def _last_success_start(conn: sa.Connection, names: Sequence[str]) -> dict[str, datetime]:
    """When each table's newest successful sync started: rows older than that were visible."""
    c = sync_runs.c
    out: dict[str, datetime] = {}
    for wanted in name_chunks(names):
        newest = (
            sa.select(c.started_at)
            .where(c.table_name == wanted.c.name, c.status == "success")
            .order_by(c.started_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        for name, at in conn.execute(sa.select(wanted.c.name, newest)).tuples():
            if at is not None:
                out[name] = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return out


def _hour(moment: datetime) -> datetime:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)
