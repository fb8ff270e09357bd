"""Count tails: small counts get sober scores, over-dispersion makes them soberer still."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pipewarden.checks.monitoring.anomaly.counts import (
    MAX_SCORE,
    count_band,
    count_score,
    count_scores,
)


def test_small_counts_have_small_scores() -> None:
    assert abs(count_score(5, mean=2.5, variance=2.5)) < 2
    assert abs(count_score(0, mean=0.3, variance=0.3)) < 1
    assert abs(count_score(3, mean=0.0, variance=0.0)) < 3  # never assume a rate of zero


def test_scores_grow_with_the_surprise_and_are_signed() -> None:
    x = np.array([10.0, 20.0, 40.0, 80.0])
    z = count_scores(x, np.full(4, 10.0), np.full(4, 10.0))
    assert np.all(np.diff(z) > 0)
    assert count_score(0, mean=50.0, variance=50.0) < -5
    assert 30 < count_score(10_000, mean=1.0, variance=1.0) <= MAX_SCORE  # finite, capped


def test_over_dispersion_lowers_the_score() -> None:
    poisson = count_score(60, mean=30.0, variance=30.0)
    negative_binomial = count_score(60, mean=30.0, variance=300.0)
    assert poisson > negative_binomial > 0


@pytest.mark.parametrize(("mean", "variance"), [(0.2, 0.2), (4.0, 4.0), (30.0, 200.0)])
def test_band_and_scores_agree(mean: float, variance: float) -> None:
    threshold = 3.5
    low, high = count_band(np.array([mean]), np.array([variance]), threshold)
    above = count_score(float(high[0]) + 1, mean, variance)
    at = count_score(float(high[0]), mean, variance)
    assert above >= threshold > at
    if low[0] > 0:
        assert count_score(float(low[0]) - 1, mean, variance) <= -threshold


def test_mixed_poisson_and_negative_binomial_points_raise_no_warnings() -> None:
    """Each point is evaluated under its own distribution only, without numpy warnings."""
    mean = np.array([0.0, 0.5, 3.0, 30.0, 30.0, 1e6, 2.0])
    variance = np.array([0.0, 0.5, 300.0, 30.0, 30.0 * (1 + 1e-12), 1e12, np.nan])
    observed = np.array([0.0, 4.0, 0.0, 60.0, 60.0, 0.0, 5.0])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        z = count_scores(observed, mean, variance)
        low, high = count_band(mean, variance, 3.5)
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(low)) and np.all(np.isfinite(high))
    for i in range(len(mean)):  # vectorized results are the point-by-point ones
        assert z[i] == count_score(observed[i], mean[i], variance[i])
        one_low, one_high = count_band(mean[i : i + 1], variance[i : i + 1], 3.5)
        assert (low[i], high[i]) == (one_low[0], one_high[0])
    assert np.all(low <= np.maximum(mean, 0.5)) and np.all(high >= mean)
