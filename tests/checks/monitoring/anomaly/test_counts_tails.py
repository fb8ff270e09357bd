"""The count tails without scipy.stats give scipy.stats' values, bit for bit: on the shapes the
detector builds, at the edges of the support and on invalid shapes and counts."""

import numpy as np
from scipy import stats

from pipewarden.checks.monitoring.anomaly.counts import (
    _distribution,
    _norm_isf,
    count_band,
    count_scores,
)

RNG = np.random.default_rng(14)
RATES = np.concatenate([[0.0, 0.3, 0.5, 1.0, 3.0], RNG.uniform(0.5, 40, 60), [1e3, 1e5, 1e7]])


def _shapes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed counts, means and variances: Poisson and over-dispersed buckets, counts far in
    both tails, and NaN, infinite and negative inputs."""
    mean = np.repeat(RATES, 6)
    ratio = np.tile([0.5, 1.0, 1.0 + 1e-12, 1.7, 25.0, np.inf], len(RATES))
    with np.errstate(invalid="ignore"):  # 0 × inf: NaN, an invalid variance on purpose
        variance = mean * ratio
    observed = np.floor(mean * RNG.choice([0.0, 0.2, 1.0, 2.5, 9.0], len(mean)))
    extra_obs = [np.nan, np.inf, -np.inf, -3.0, 0.0, 4.0, 1e9, 2.5]
    extra_mean = [3.0, 3.0, 3.0, 3.0, np.nan, np.inf, 2.0, 7.0]
    extra_var = [9.0, 9.0, 9.0, 9.0, 9.0, 9.0, np.nan, -1.0]
    return (
        np.concatenate([observed, extra_obs]),
        np.concatenate([mean, extra_mean]),
        np.concatenate([variance, extra_var]),
    )


def _scipy_scores(observed: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """count_scores as written with scipy.stats before it was taken out."""
    x = np.asarray(observed, dtype=np.float64)
    rate = np.maximum(np.asarray(mean, dtype=np.float64), 0.5)
    size, prob = _distribution(rate, np.asarray(variance, dtype=np.float64))
    x, rate, size, prob = np.broadcast_arrays(x, rate, size, prob)
    nb, poisson = prob < 1.0, prob >= 1.0
    upper, lower = np.empty(x.shape), np.empty(x.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        if nb.any():
            upper[nb] = stats.nbinom.sf(x[nb] - 1, size[nb], prob[nb])
            lower[nb] = stats.nbinom.cdf(x[nb], size[nb], prob[nb])
        if poisson.any():
            upper[poisson] = stats.poisson.sf(x[poisson] - 1, rate[poisson])
            lower[poisson] = stats.poisson.cdf(x[poisson], rate[poisson])
        high = x > rate
        z = stats.norm.isf(np.clip(np.where(high, upper, lower), 1e-300, 1.0))
    z = np.clip(np.maximum(z, 0.0), 0.0, 40.0)
    return np.where(high, z, -z)


def _scipy_band(mean: np.ndarray, variance: np.ndarray, thr: float) -> tuple[np.ndarray, ...]:
    rate = np.maximum(np.asarray(mean, dtype=np.float64), 0.5)
    size, prob = _distribution(rate, np.asarray(variance, dtype=np.float64))
    rate, size, prob = np.broadcast_arrays(rate, size, prob)
    p = stats.norm.sf(thr)
    nb, poisson = prob < 1.0, prob >= 1.0
    high, low = np.empty(rate.shape), np.empty(rate.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        if nb.any():
            high[nb] = stats.nbinom.isf(p, size[nb], prob[nb])
            low[nb] = stats.nbinom.ppf(p, size[nb], prob[nb])
        if poisson.any():
            high[poisson] = stats.poisson.isf(p, rate[poisson])
            low[poisson] = stats.poisson.ppf(p, rate[poisson])
    return low, high


def test_count_scores_equal_scipy_stats() -> None:
    observed, mean, variance = _shapes()
    ours = count_scores(observed, mean, variance)
    np.testing.assert_array_equal(ours, _scipy_scores(observed, mean, variance))
    assert np.isfinite(ours).sum() > len(ours) // 2  # the grid reaches the scores, not only NaN


def test_count_band_equals_scipy_stats() -> None:
    _, mean, variance = _shapes()
    for thr in (0.0, 1.5, 3.5, 6.0, 9.0, 40.0, np.inf):
        ours = count_band(mean, variance, thr)
        theirs = _scipy_band(mean, variance, thr)
        np.testing.assert_array_equal(ours[0], theirs[0], err_msg=f"low, threshold {thr}")
        np.testing.assert_array_equal(ours[1], theirs[1], err_msg=f"high, threshold {thr}")


def test_normal_quantile_equals_scipy_stats_at_the_edges() -> None:
    q = np.array([0.0, 1e-300, 1e-20, 0.3, 0.5, 0.9999, 1.0, np.nan, 1.5, -0.1])
    np.testing.assert_array_equal(_norm_isf(q), stats.norm.isf(q))
