"""Season detection (periodogram candidates checked by prediction) and calendar buckets."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from scipy import signal

from pipewarden.checks.monitoring.anomaly.season import (
    _clip_bounds,
    _periodogram,
    declared_season,
    detect_period,
    detect_season,
)


def epoch_seconds(stamps: list[datetime]) -> np.ndarray:
    return np.array(stamps, dtype="datetime64[s]").astype(np.int64)


def test_daily_period_of_an_hourly_series() -> None:
    rng = np.random.default_rng(0)
    hours = np.arange(21 * 24)
    values = 100 + 40 * np.sin(2 * math.pi * hours / 24) + rng.normal(0, 5, len(hours))
    seconds = 1_700_000_000 + hours * 3600
    assert detect_period(seconds, values, 3600.0) == 86_400.0


def test_weekly_period_of_a_daily_series() -> None:
    rng = np.random.default_rng(1)
    days = np.arange(120)
    values = np.where(days % 7 < 5, 1000.0, 300.0) + rng.normal(0, 20, len(days))
    assert detect_period(days * 86_400, values, 86_400.0) == 7 * 86_400.0


def test_spike_train_period_is_found_through_the_autocorrelation() -> None:
    """A spike every 100 samples spreads its power over all harmonics; the period is 100."""
    values = np.zeros(3000)
    values[::100] = 20.0
    seconds = np.arange(3000) * 300
    season = detect_season(seconds, values, 300.0)
    assert season.period_seconds == 100 * 300
    assert season.neighbours == 0  # pooling neighbours would blur the spikes away


def test_no_season_in_noise_or_a_flat_line() -> None:
    rng = np.random.default_rng(2)
    seconds = np.arange(2000) * 3600
    assert detect_period(seconds, rng.normal(0, 1, 2000), 3600.0) is None
    assert detect_period(seconds, np.full(2000, 7.0), 3600.0) is None


def test_too_short_a_history_has_no_season() -> None:
    hours = np.arange(10)
    assert detect_period(hours * 3600, np.sin(2 * math.pi * hours / 4), 3600.0) is None


def test_calendar_buckets() -> None:
    hour = declared_season("hour_of_day")
    week = declared_season("day_of_week")
    month = declared_season("day_of_month")
    assert hour is not None and week is not None and month is not None
    stamps = [datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 13), datetime(2024, 1, 6, 23)]
    assert hour.buckets(epoch_seconds(stamps)).tolist() == [0, 13, 23]
    assert week.buckets(epoch_seconds(stamps)).tolist() == [0, 0, 5]  # Monday, Monday, Saturday
    ends = [
        datetime(2024, 1, 31),
        datetime(2024, 2, 29),
        datetime(2023, 2, 28),
        datetime(2024, 4, 30),
    ]
    assert set(month.buckets(epoch_seconds(ends)).tolist()) == {30}
    firsts = [datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 15)]
    assert month.buckets(epoch_seconds(firsts)).tolist() == [0, 0, 14]
    assert declared_season("auto") is None


@pytest.mark.parametrize("n", [12, 13, 72, 73, 504, 671])
def test_the_written_out_periodogram_is_scipys(n: int) -> None:
    rng = np.random.default_rng(n)
    t = np.arange(n)
    for grid in (
        rng.normal(0, 3, n) + 0.05 * t + 5 * np.sin(2 * math.pi * t / 24),
        rng.poisson(40, n).astype(float),
        np.where(t % 7 == 0, 100.0, 1.0) + 1e6,
    ):
        freqs, power = _periodogram(grid)
        expected_freqs, expected = signal.periodogram(grid, detrend="linear")
        assert np.array_equal(freqs, expected_freqs)
        np.testing.assert_allclose(power, expected, rtol=1e-9, atol=1e-9 * expected.max())
        top = np.argsort(expected[1:])[::-1][:12]
        assert np.array_equal(np.argsort(power[1:])[::-1][:12], top)


@pytest.mark.parametrize("n", [2, 3, 12, 13, 72, 73, 200, 201, 504, 671, 4000])
def test_the_written_out_clip_bounds_are_numpys_quantiles_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    t = np.arange(n)
    for grid in (
        rng.normal(0, 3, n) + 0.05 * t,
        rng.lognormal(3, 2, n),
        rng.poisson(2, n).astype(float),  # ties
        np.where(t % 7 == 0, 1e12, -1e-12),
        np.full(n, 4.25),
        np.where(t == 0, np.nan, 1.0),  # not finite: numpy's own way
    ):
        expected = np.quantile(grid, [0.005, 0.995])
        found = _clip_bounds(grid.copy())
        assert np.array_equal(np.array(found), expected, equal_nan=True)
