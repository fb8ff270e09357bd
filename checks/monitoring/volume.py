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

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np
import sqlalchemy as sa

from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, Verdict
from pipewarden.measurements.sync_metrics import NEWEST_CURSOR
from pipewarden.records.evidence import ANOMALY, INSUFFICIENT, OK
from pipewarden.records.metrics import (
    CheckResult,
    EpochSeries,
    as_instant,
    latest_check_results,
    latest_values,
    metric_arrays,
    name_chunks,
)
from pipewarden.records.tables import sync_runs
from pipewarden.records.values import utc

VOLUME = "rows_by_cursor_hour"
HOUR = timedelta(hours=1)
_HOUR_US = 3_600_000_000
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0))

Scorer = Callable[..., list[Verdict]]
T = TypeVar("T")


def volume_judge(
    engine: sa.Engine,
    names: Sequence[str],
    now: datetime,
    run_id: str,
    settings: DetectorSettings,
    scorer: Scorer,
    series: Mapping[str, EpochSeries] | None = None,
    last_checks: Mapping[str, Sequence[CheckResult]] | None = None,
    own_settings: Mapping[str, DetectorSettings] | None = None,
) -> VolumeJudge:
    """Reads what the volume checks of the named tables need, and returns the check of one
    table, which reads nothing more (so tables can be judged apart, in other processes).

    `series` (the histories of rows_by_cursor_hour) and `last_checks` (each table's results of
    the last check run) are read here unless the caller has read them already; `own_settings`
    holds the tables' own detector settings where they differ from `settings`.
    """
    since = now - settings.history_window - HOUR
    with engine.connect() as conn:
        if series is None:
            read = metric_arrays(conn, names, [VOLUME], since=since, until=now, labels={})
            series = read.get(VOLUME, {})
        newest = latest_values(conn, NEWEST_CURSOR, names)
        started = _last_success_start(conn, names)
        if last_checks is None:
            last_checks = latest_check_results(conn, names)
    earlier = {
        name: r
        for name, checks in last_checks.items()
        for r in checks
        if r.check == f"anomaly:{VOLUME}" and r.status != INSUFFICIENT
    }
    covered: dict[str, datetime | None] = {}
    for name in names:
        seen = [datetime.fromtimestamp(newest[name][1], UTC)] if name in newest else []
        seen += [started[name]] if name in started else []
        covered[name] = max(seen, default=None)
    return VolumeJudge(
        dict(series), covered, earlier, dict(own_settings or {}), settings, scorer, now, run_id
    )


@dataclass(frozen=True)
class VolumeJudge:
    """The volume check of one table (`__call__`), from what `volume_judge` read: picklable, so
    a spawned helper can be sent the part for its tables (`share`)."""

    histories: Mapping[str, EpochSeries]
    covered: Mapping[str, datetime | None]  # the newest instant the table's rows were seen
    earlier: Mapping[str, CheckResult]
    own_settings: Mapping[str, DetectorSettings]
    settings: DetectorSettings
    scorer: Scorer
    now: datetime
    run_id: str

    def __call__(self, name: str) -> CheckResult:
        micros, values = self.histories.get(name, _EMPTY)
        covered = self.covered.get(name)
        open_hour = _hour(min(covered, self.now)) if covered is not None else None
        hours, counts = hourly_counts(micros, values, open_hour)
        chosen = self.own_settings.get(name, self.settings)
        earlier = self.earlier.get(name)
        return _result(name, hours, counts, chosen, self.scorer, self.now, self.run_id, earlier)

    def share(self, names: Sequence[str]) -> VolumeJudge:
        """What judging `names` needs, and nothing of the other tables."""

        def only(mapping: Mapping[str, T]) -> dict[str, T]:
            return {n: mapping[n] for n in names if n in mapping}

        return replace(
            self,
            histories=only(self.histories),
            covered=only(self.covered),
            earlier=only(self.earlier),
            own_settings=only(self.own_settings),
        )


def hourly_counts(
    micros: np.ndarray, values: np.ndarray, open_hour: datetime | None
) -> tuple[np.ndarray, np.ndarray]:
    """Points summed per hour, hours without a point as zero, up to the hour in progress.

    Instants are microseconds since the epoch (UTC), and so are the hours returned. Without
    `open_hour` the hour of the newest point is taken as the one in progress.
    """
    if not len(micros):
        return _EMPTY
    hour = np.asarray(micros, dtype=np.int64) // _HOUR_US
    first = int(hour.min())
    last = _micros(open_hour) // _HOUR_US if open_hour is not None else int(hour.max())
    if last < first:
        return _EMPTY
    kept = hour <= last  # a row stamped after the open hour waits for its hour
    counts = np.bincount(hour[kept] - first, np.asarray(values)[kept], minlength=last - first + 1)
    return np.arange(first, last + 1, dtype=np.int64) * _HOUR_US, counts


def _result(
    name: str,
    hours: np.ndarray,
    counts: np.ndarray,
    settings: DetectorSettings,
    scorer: Scorer,
    now: datetime,
    run_id: str,
    earlier: CheckResult | None = None,
) -> CheckResult:
    """The complete hour's verdict, unless the hour in progress is already too high.

    Both come from one replay of the trailing history window up to the hour in progress (its
    last two verdicts), each decided from the hours before it. A verdict of the last check on
    the same hour and count is reused: scoring is from the past only, so it would come out the
    same, and checks may run far more often than syncs.
    """
    base = CheckResult(
        table_name=name,
        check=f"anomaly:{VOLUME}",
        status=INSUFFICIENT,
        run_id=run_id,
        checked_at=now,
    )
    if len(hours) < 2:
        reason = f"no complete cursor hour yet ({len(hours)} hours with rows or after them)"
        return replace(base, reason=reason, history_size=0)
    if _same(earlier, hours[-1], counts[-1]) and earlier is not None and earlier.failing:
        return replace(earlier, checked_at=now, run_id=run_id)
    complete = None
    if _same(earlier, hours[-2], counts[-2]) and earlier is not None:
        complete = replace(earlier, checked_at=now, run_id=run_id)
        if complete.failing or counts[-1] == 0:
            return complete
    verdicts = scorer(hours, counts, settings, kind="count", points=2)
    verdict = None if complete is not None else verdicts[0]
    at, note = as_instant(hours[-2]), "the last complete hour"
    if (verdict is None or not verdict.is_anomaly) and counts[-1] > 0:
        so_far = verdicts[1]
        high = so_far.expected_high is not None and so_far.observed > so_far.expected_high
        if so_far.is_anomaly and high:
            verdict, at = so_far, as_instant(hours[-1])
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


def _same(earlier: CheckResult | None, hour: np.integer, count: np.floating) -> bool:
    if earlier is None or earlier.observed_at is None:
        return False
    return earlier.observed_at == as_instant(hour) and earlier.observed == count


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
                out[name] = utc(at)
    return out


def _hour(moment: datetime) -> datetime:
    return utc(moment).replace(minute=0, second=0, microsecond=0)


def _micros(moment: datetime) -> int:
    return (utc(moment) - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
