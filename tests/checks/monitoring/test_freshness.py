"""Freshness against the SLA at its boundaries: exactly at a threshold is still the lower status."""

from datetime import UTC, datetime, timedelta

import pytest

from pipewarden.checks.monitoring.freshness import describe, freshness_status, staleness
from pipewarden.records.evidence import ERROR, OK, WARN

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WARN_AFTER, ERROR_AFTER = timedelta(hours=1), timedelta(hours=2)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (timedelta(0), OK),
        (WARN_AFTER - TICK, OK),
        (WARN_AFTER, OK),
        (WARN_AFTER + TICK, WARN),
        (ERROR_AFTER, WARN),
        (ERROR_AFTER + TICK, ERROR),
        (timedelta(days=3), ERROR),
    ],
)
def test_status_at_the_boundaries(age: timedelta, status: str) -> None:
    verdict = freshness_status(NOW - age, NOW, WARN_AFTER, ERROR_AFTER)
    assert verdict.status == status
    assert verdict.age == age


def test_only_error_after() -> None:
    assert freshness_status(NOW - ERROR_AFTER, NOW, None, ERROR_AFTER).status == OK
    assert freshness_status(NOW - ERROR_AFTER - TICK, NOW, None, ERROR_AFTER).status == ERROR


def test_only_warn_after_never_errs() -> None:
    verdict = freshness_status(NOW - timedelta(days=30), NOW, WARN_AFTER, None)
    assert verdict.status == WARN


def test_without_sla_every_age_is_ok() -> None:
    verdict = freshness_status(NOW - timedelta(days=30), NOW, None, None)
    assert verdict.status == OK
    assert "no SLA" in verdict.reason


def test_nothing_loaded_is_an_error_under_an_sla() -> None:
    assert freshness_status(None, NOW, WARN_AFTER, ERROR_AFTER).status == ERROR
    assert freshness_status(None, NOW, None, None).status == OK


def test_a_source_clock_ahead_counts_as_age_zero() -> None:
    verdict = freshness_status(NOW + timedelta(minutes=5), NOW, WARN_AFTER, ERROR_AFTER)
    assert (verdict.status, verdict.age) == (OK, timedelta(0))


def test_naive_times_are_utc() -> None:
    naive = (NOW - WARN_AFTER - timedelta(seconds=1)).replace(tzinfo=None)
    assert freshness_status(naive, NOW, WARN_AFTER, ERROR_AFTER).status == WARN


def test_reason_names_age_and_threshold() -> None:
    verdict = freshness_status(NOW - timedelta(hours=3, minutes=5), NOW, WARN_AFTER, ERROR_AFTER)
    assert "3h 05m old" in verdict.reason
    assert "over error_after 2h 00m" in verdict.reason


def test_staleness_is_time_since_the_last_success() -> None:
    assert staleness(NOW - timedelta(minutes=7), NOW) == timedelta(minutes=7)
    assert staleness(None, NOW) is None


def test_describe() -> None:
    assert describe(timedelta(days=2, hours=3, minutes=4)) == "2d 3h"
    assert describe(timedelta(minutes=4, seconds=10)) == "4m 10s"
    assert describe(timedelta(seconds=12)) == "12s"
