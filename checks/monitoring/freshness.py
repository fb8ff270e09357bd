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


def freshness_level(
    newest_cursor: datetime | None,
    now: datetime,
    warn_after: timedelta | None,
    error_after: timedelta | None,
) -> tuple[str, timedelta | None]:
    """The status and age alone (the boundary rule above), without the reason's text: what
    the exporter needs for each of hundreds of tables a scrape."""
    if newest_cursor is None:
        return (OK if warn_after is None and error_after is None else ERROR), None
    age = max(timedelta(0), utc(now) - utc(newest_cursor))
    if error_after is not None and age > error_after:
        return ERROR, age
    if warn_after is not None and age > warn_after:
        return WARN, age
    return OK, age


#: Why a table with nothing loaded is judged as it is (the freshness checks and `ready`).
NO_ROWS_YET = "no rows with a cursor time loaded yet"


def freshness_status(
    newest_cursor: datetime | None,
    now: datetime,
    warn_after: timedelta | None,
    error_after: timedelta | None,
) -> FreshnessVerdict:
    """Judge the newest loaded cursor instant against the SLA (see the boundary rule above)."""
    status, age = freshness_level(newest_cursor, now, warn_after, error_after)
    if newest_cursor is None or age is None:
        none = "no rows loaded; no SLA set", NO_ROWS_YET
        reason = none[0] if status == OK else none[1]
        return FreshnessVerdict(status, None, None, warn_after, error_after, reason)
    newest = utc(newest_cursor)
    if status == ERROR:
        limit = f"over error_after {describe(error_after or timedelta(0))}"
    elif status == WARN:
        limit = f"over warn_after {describe(warn_after or timedelta(0))}"
    elif warn_after is None and error_after is None:
        limit = "no SLA set"
    elif warn_after is not None:
        limit = f"within warn_after {describe(warn_after)}"
    else:
        limit = f"within error_after {describe(error_after or timedelta(0))}"
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
