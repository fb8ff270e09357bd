"""Freshness against a table's SLA, and staleness of its sync.

Freshness is the age of the newest source cursor value loaded: how old the newest data in the
warehouse is. Staleness is the time since the last successful sync: how long the pipeline has
been silent. A table whose source stopped is stale in data though its syncs succeed; a table
whose syncs fail is both.

Boundary rule, as dbt's source freshness has it: a threshold is crossed only when the age is
*greater* than it. With `warn_after: 1h`, an age of exactly one hour is still ok, one
microsecond more is a warning; the same at `error_after`.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from pipewarden.config.durations import describe
from pipewarden.records.evidence import ERROR, OK, WARN
from pipewarden.records.metrics import CheckResult
from pipewarden.records.values import utc


@dataclass(frozen=True)
class FreshnessVerdict:
    """A table's freshness status, its age, the thresholds it was judged by, and why."""

    status: str
    age: timedelta | None
    newest: datetime | None
    warn_after: timedelta | None
    error_after: timedelta | None
    reason: str


def freshness_status(
    newest_cursor: datetime | None,
    now: datetime,
    warn_after: timedelta | None,
    error_after: timedelta | None,
) -> FreshnessVerdict:
    """Judge the newest loaded cursor instant against the SLA (see the boundary rule above)."""
    if newest_cursor is None:
        if warn_after is None and error_after is None:
            return FreshnessVerdict(OK, None, None, None, None, "no rows loaded; no SLA set")
        return FreshnessVerdict(
            ERROR, None, None, warn_after, error_after, "no rows with a cursor time loaded yet"
        )
    age = max(timedelta(0), utc(now) - utc(newest_cursor))
    newest = utc(newest_cursor)
    if error_after is not None and age > error_after:
        status, limit = ERROR, f"over error_after {describe(error_after)}"
    elif warn_after is not None and age > warn_after:
        status, limit = WARN, f"over warn_after {describe(warn_after)}"
    elif warn_after is None and error_after is None:
        status, limit = OK, "no SLA set"
    elif warn_after is not None:
        status, limit = OK, f"within warn_after {describe(warn_after)}"
    else:
        status, limit = OK, f"within error_after {describe(error_after or timedelta(0))}"
    reason = f"newest row {describe(age)} old ({newest:%Y-%m-%d %H:%M:%S} UTC), {limit}"
    return FreshnessVerdict(status, age, newest, warn_after, error_after, reason)


def staleness(last_success: datetime | None, now: datetime) -> timedelta | None:
    """Time since the last successful sync; None if there never was one."""
    if last_success is None:
        return None
    return max(timedelta(0), utc(now) - utc(last_success))


def freshness_result(
    name: str, verdict: FreshnessVerdict, now: datetime, run_id: str, method: str, reason: str
) -> CheckResult:
    """A freshness verdict as the check result that is recorded and alerted on (tables, streams)."""
    limit = verdict.warn_after or verdict.error_after
    return CheckResult(
        checked_at=now,
        table_name=name,
        check="freshness",
        status=verdict.status,
        observed=None if verdict.age is None else verdict.age.total_seconds(),
        observed_at=verdict.newest,
        expected_low=0.0,
        expected_high=None if limit is None else limit.total_seconds(),
        method=method,
        reason=reason,
        run_id=run_id,
    )
