"""Count-aware tails: how surprising a count is under a Poisson or negative binomial model.

Robust z-scores on small counts are absurd: a table that usually gets 0 or 1 rows has a MAD of 0,
so 3 rows score in the millions. A count cannot be more surprising than its Poisson tail says
(the negative binomial when the bucket's quartiles show over-dispersion), so the detector caps its
score there.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

# A rate estimated from a handful of zeros is not zero: never assume less than half an event.
MIN_RATE = 0.5
# Largest score reported; beyond this, tail probabilities underflow and mean nothing.
MAX_SCORE = 40.0


def _distribution(mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Negative binomial (size, p) per point; p = 1 marks a Poisson point (no over-dispersion)."""
    rate = np.maximum(mean, MIN_RATE)
    excess = np.asarray(variance, dtype=np.float64) - rate
    over = excess > 1e-9 * rate
    safe_excess = np.where(over, excess, 1.0)
    size = np.where(over, rate * rate / safe_excess, 1.0)
    prob = np.where(over, size / (size + rate), 1.0)
    return size, prob


def count_scores(observed: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Signed z-score equivalents of each count's tail probability (positive: too many)."""
    x = np.asarray(observed, dtype=np.float64)
    rate = np.maximum(np.asarray(mean, dtype=np.float64), MIN_RATE)
    size, prob = _distribution(rate, np.asarray(variance, dtype=np.float64))
    x, rate, size, prob = np.broadcast_arrays(x, rate, size, prob)
    # Each distribution sees only its own points: the placeholders of the other (p = 1) would
    # divide by zero inside scipy.
    nb, poisson = prob < 1.0, prob >= 1.0
    upper, lower = np.empty(x.shape), np.empty(x.shape)
    # A scipy.stats call costs even on no points: a distribution no point uses is skipped.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        if nb.any():
            upper[nb] = stats.nbinom.sf(x[nb] - 1, size[nb], prob[nb])
            lower[nb] = stats.nbinom.cdf(x[nb], size[nb], prob[nb])
        if poisson.any():
            upper[poisson] = stats.poisson.sf(x[poisson] - 1, rate[poisson])
            lower[poisson] = stats.poisson.cdf(x[poisson], rate[poisson])
        high = x > rate
        tail = np.where(high, upper, lower)
        z = stats.norm.isf(np.clip(tail, 1e-300, 1.0))
    z = np.clip(np.maximum(z, 0.0), 0.0, MAX_SCORE)
    return np.where(high, z, -z)


def count_score(observed: float, mean: float, variance: float) -> float:
    """Scalar form of count_scores, for the few points the robust test already flags."""
    return float(count_scores(np.array([observed]), np.array([mean]), np.array([variance]))[0])


def count_band(
    mean: np.ndarray, variance: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Counts outside [low, high] have a tail beyond the threshold's."""
    rate = np.maximum(np.asarray(mean, dtype=np.float64), MIN_RATE)
    size, prob = _distribution(rate, np.asarray(variance, dtype=np.float64))
    rate, size, prob = np.broadcast_arrays(rate, size, prob)
    p = stats.norm.sf(threshold)
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
