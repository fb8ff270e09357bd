"""The two-sample Kolmogorov-Smirnov test of sorted samples: scipy's `ks_2samp`, written out.

`scipy.stats.ks_2samp` sorts both samples, searches each in their concatenation and goes
through scipy's argument-checking wrapper, several times the statistic below on samples the
column monitor already holds sorted (it sorts each side once for KS and PSI alike). The
asymptotic p-value is scipy's own `kstwo.sf`, called once for the columns of a check run and
once per distinct (D, n) (D is a multiple of 1 / lcm(n1, n2), so columns of equal sample sizes
share values). Samples of under `ASYMPTOTIC_FROM` values a side, whose exact
p-value scipy computes, go to `ks_2samp` itself.
"""

from collections.abc import Sequence

import numpy as np

# scipy.stats is imported where a p-value needs it: its import costs seconds of a fresh
# interpreter, which a check run of tables without column samples need not pay.

#: Fewest values a side for the asymptotic p-value, as good as the exact one past this size
#: (which scipy would compute, slowly, up to 10,000 values a side).
ASYMPTOTIC_FROM = 100


def ks_2samp_sorted(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided KS statistic and p-value of ascending `x` and `y`: `ks_2samp(x, y,
    method="asymp")` from `ASYMPTOTIC_FROM` values a side, `method="auto"` below."""
    return ks_2samp_sorted_many([(x, y)])[0]


def ks_2samp_sorted_many(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
) -> list[tuple[float, float]]:
    """`ks_2samp_sorted` of every pair, the asymptotic p-values computed together."""
    exact: dict[int, tuple[float, float]] = {}
    asymptotic: dict[int, tuple[float, float]] = {}  # pair -> (D, n of the limit law)
    for i, (x, y) in enumerate(pairs):
        if min(len(x), len(y)) < ASYMPTOTIC_FROM:
            from scipy import stats

            result = stats.ks_2samp(x, y, method="auto")
            exact[i] = (float(result.statistic), float(result.pvalue))
        else:
            m, n = sorted([float(len(x)), float(len(y))], reverse=True)
            asymptotic[i] = (_statistic(x, y), float(np.round(m * n / (m + n))))
    distinct = sorted(set(asymptotic.values()))
    p_values = {}
    if distinct:
        from scipy import stats

        d, n = np.array(distinct).T
        p_values = dict(zip(distinct, np.clip(stats.kstwo.sf(d, n), 0, 1).tolist(), strict=True))
    return [
        exact[i] if i in exact else (asymptotic[i][0], p_values[asymptotic[i]])
        for i in range(len(pairs))
    ]


def _statistic(x: np.ndarray, y: np.ndarray) -> float:
    n1, n2 = len(x), len(y)
    both = np.concatenate([x, y])
    # A stable sort of two sorted runs is a merge; `order < n1` marks x's values in it.
    order = np.argsort(both, kind="stable")
    merged = both[order]
    reached_x = np.cumsum(order < n1)
    reached_y = np.arange(1, n1 + n2 + 1) - reached_x
    # The CDFs are read after the last of equal values, as scipy's searchsorted(side="right").
    last = np.empty(n1 + n2, dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=last[:-1])
    last[-1] = True
    diffs = reached_x[last] / n1 - reached_y[last] / n2
    below = np.clip(-diffs.min(), 0, 1)
    above = diffs.max()
    return float(below if below > above else above)
