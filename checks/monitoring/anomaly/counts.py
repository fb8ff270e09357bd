"""Count-aware tails: how surprising a count is under a Poisson or negative binomial model.

Robust z-scores on small counts are absurd: a table that usually gets 0 or 1 rows has a MAD of 0,
so 3 rows score in the millions. A count cannot be more surprising than its Poisson tail says
(the negative binomial when the bucket's quartiles show over-dispersion), so the detector caps its
score there.

The tails are scipy's, called as `scipy.stats.nbinom`, `poisson` and `norm` call them (the same
`scipy.special` functions, with the same handling of bounds and invalid shapes) without importing
`scipy.stats`: that import alone took 2-3 s of a fresh interpreter, which every `pipewarden check`
and every flow run of a process worker paid. tests/checks/monitoring/test_counts_tails.py holds
them to scipy.stats' values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special
from scipy.special import _ufuncs

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
            valid = _nbinom_valid(size[nb], prob[nb])
            upper[nb] = _sf(x[nb] - 1, valid, _ufuncs._nbinom_sf, size[nb], prob[nb])
            lower[nb] = _cdf(x[nb], valid, _ufuncs._nbinom_cdf, size[nb], prob[nb])
        if poisson.any():
            valid = rate[poisson] >= 0
            upper[poisson] = _sf(x[poisson] - 1, valid, special.pdtrc, rate[poisson])
            lower[poisson] = _cdf(x[poisson], valid, special.pdtr, rate[poisson])
        high = x > rate
        tail = np.where(high, upper, lower)
        z = _norm_isf(np.clip(tail, 1e-300, 1.0))
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
    p = special.ndtr(-threshold)  # scipy.stats.norm.sf(threshold)
    nb, poisson = prob < 1.0, prob >= 1.0
    high, low = np.empty(rate.shape), np.empty(rate.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        if nb.any():
            valid = _nbinom_valid(size[nb], prob[nb])
            high[nb] = _quantile(p, True, valid, _ufuncs._nbinom_isf, size[nb], prob[nb])
            low[nb] = _quantile(p, False, valid, _ufuncs._nbinom_ppf, size[nb], prob[nb])
        if poisson.any():
            valid = rate[poisson] >= 0
            high[poisson] = _quantile(p, True, valid, _poisson_isf, rate[poisson])
            low[poisson] = _quantile(p, False, valid, _poisson_ppf, rate[poisson])
    return low, high


#: A scipy.special function of (point or probability, *shape parameters), elementwise.
_Tail = Callable[..., np.ndarray]

# What scipy.stats' rv_discrete.sf, .cdf, .ppf and .isf and norm.isf do around the special
# function, for distributions supported on 0, 1, 2, … (nbinom, poisson), without loc.


def _nbinom_valid(size: np.ndarray, prob: np.ndarray) -> np.ndarray:
    return (size > 0) & (prob > 0) & (prob <= 1)


def _sf(k: np.ndarray, valid: np.ndarray, sf: _Tail, *shape: np.ndarray) -> np.ndarray:
    """`rv_discrete.sf`: 1 below the support, NaN for invalid shapes or k."""
    k = np.asarray(k, dtype=np.float64)
    inside = valid & (k >= 0) & np.isfinite(k)
    out = np.zeros(k.shape)
    out[~valid | np.isnan(k)] = np.nan
    out[((k < 0) | np.isneginf(k)) & valid] = 1.0
    if inside.any():
        out[inside] = np.clip(sf(np.floor(k[inside]), *(s[inside] for s in shape)), 0, 1)
    return out


def _cdf(k: np.ndarray, valid: np.ndarray, cdf: _Tail, *shape: np.ndarray) -> np.ndarray:
    """`rv_discrete.cdf`: 0 below the support, 1 at +inf, NaN for invalid shapes or k."""
    k = np.asarray(k, dtype=np.float64)
    inside = valid & (k >= 0) & np.isfinite(k)
    out = np.zeros(k.shape)
    out[np.isposinf(k)] = 1.0
    out[~valid | np.isnan(k)] = np.nan
    if inside.any():
        out[inside] = np.clip(cdf(np.floor(k[inside]), *(s[inside] for s in shape)), 0, 1)
    return out


def _quantile(
    q: float, upper: bool, valid: np.ndarray, inverse: _Tail, *shape: np.ndarray
) -> np.ndarray:
    """`rv_discrete.ppf` (`upper`: `.isf`) of one probability for many shapes."""
    out = np.full(valid.shape, np.nan)
    if q == 0 or q == 1:
        out[valid] = np.inf if (q == 0) == upper else -1.0
    elif 0 < q < 1 and valid.any():
        out[valid] = inverse(q, *(s[valid] for s in shape))
    return out


def _poisson_ppf(q: float | np.ndarray, mu: np.ndarray) -> np.ndarray:
    """`scipy.stats.poisson._ppf`."""
    vals = np.ceil(special.pdtrik(q, mu))
    vals1 = np.maximum(vals - 1, 0)
    return np.where(special.pdtr(vals1, mu) >= q, vals1, vals)


def _poisson_isf(q: float, mu: np.ndarray) -> np.ndarray:
    """`rv_discrete._isf`: the ppf of the complement."""
    return _poisson_ppf(1.0 - q, mu)


def _norm_isf(q: np.ndarray) -> np.ndarray:
    """`scipy.stats.norm.isf`: -inf at 1, +inf at 0, NaN outside [0, 1]."""
    q = np.asarray(q, dtype=np.float64)
    out = np.full(q.shape, np.nan)
    out[q == 1] = -np.inf
    out[q == 0] = np.inf
    inside = (q > 0) & (q < 1)
    out[inside] = 0.0 - special.ndtri(q[inside])
    return out
