"""ks_2samp_sorted is scipy's ks_2samp: the same statistic and p-value, ties and sizes alike."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from checks.ks import ASYMPTOTIC_FROM, ks_2samp_sorted


def _scipy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """What the column monitors asked scipy for: asymptotic from 100 values a side."""
    method = "asymp" if min(len(x), len(y)) >= ASYMPTOTIC_FROM else "auto"
    result = stats.ks_2samp(x, y, method=method)
    return float(result.statistic), float(result.pvalue)


def _cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    cases = []
    for _ in range(150):
        n1, n2 = (int(n) for n in rng.integers(30, 3000, 2))
        shift, spread = rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.3)
        cases.append((rng.normal(0, 1, n1), rng.normal(shift, spread, n2)))
        # Ties within and across the samples, as counts and rounded amounts have.
        cases.append(
            (rng.integers(0, 12, n1) * 1.0, rng.integers(0, int(rng.integers(3, 15)), n2) * 1.0)
        )
        cases.append((np.round(rng.gamma(2, 25, n1)), np.round(rng.gamma(2, 27, n2))))
    # Either side of the switch from the exact p-value to the asymptotic one.
    for n1, n2 in [(99, 5000), (100, 5000), (5000, 99), (100, 100), (99, 100), (30, 40), (120, 99)]:
        cases.append((rng.normal(0, 1, n1), rng.normal(0.2, 1, n2)))
        cases.append((rng.integers(0, 5, n1) * 1.0, rng.integers(0, 6, n2) * 1.0))
    x = rng.normal(0, 1, 500)
    cases += [(x, x.copy()), (x, x + 100), (np.zeros(200), np.zeros(300)), (x, x[:150])]
    return cases


def test_statistic_and_p_value_are_scipys() -> None:
    for x, y in _cases(np.random.default_rng(8)):
        statistic, p_value = ks_2samp_sorted(np.sort(x), np.sort(y))
        expected = _scipy(x, y)
        assert statistic == expected[0], (len(x), len(y))
        assert p_value == pytest.approx(expected[1], rel=1e-12, abs=1e-300), (len(x), len(y))


def test_the_exact_p_value_below_a_hundred_values_a_side() -> None:
    rng = np.random.default_rng(9)
    x, y = np.sort(rng.normal(0, 1, 99)), np.sort(rng.normal(0.4, 1, 3000))
    exact = stats.ks_2samp(x, y, method="exact").pvalue
    assert ks_2samp_sorted(x, y)[1] == pytest.approx(exact, rel=1e-12)
    assert exact != pytest.approx(stats.ks_2samp(x, y, method="asymp").pvalue, rel=1e-3)
