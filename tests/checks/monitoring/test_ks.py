"""ks_2samp_sorted is scipy's ks_2samp: the same statistic and p-value, ties and sizes alike."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipewarden.checks.monitoring.ks import ASYMPTOTIC_FROM, ks_2samp_sorted, ks_2samp_sorted_many


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
    cases = _cases(np.random.default_rng(8))
    # Together, as a check run asks (p-values computed once per distinct D and size), and alone.
    together = ks_2samp_sorted_many([(np.sort(x), np.sort(y)) for x, y in cases])
    for (x, y), (statistic, p_value) in zip(cases, together, strict=True):
        expected = _scipy(x, y)
        assert statistic == expected[0], (len(x), len(y))
        assert p_value == pytest.approx(expected[1], rel=1e-12, abs=1e-300), (len(x), len(y))
        assert ks_2samp_sorted(np.sort(x), np.sort(y)) == (statistic, p_value)


def test_columns_of_equal_sizes_share_statistics() -> None:
    """What makes computing the p-values together pay: D is a multiple of 1 / lcm(n1, n2)."""
    rng = np.random.default_rng(10)
    pairs = [(np.sort(rng.normal(0, 1, 5000)), np.sort(rng.normal(0, 1, 1000))) for _ in range(200)]
    results = ks_2samp_sorted_many(pairs)
    assert len({statistic for statistic, _ in results}) < len(pairs)
    assert results == [ks_2samp_sorted(x, y) for x, y in pairs]


def test_the_exact_p_value_below_a_hundred_values_a_side() -> None:
    rng = np.random.default_rng(9)
    x, y = np.sort(rng.normal(0, 1, 99)), np.sort(rng.normal(0.4, 1, 3000))
    exact = stats.ks_2samp(x, y, method="exact").pvalue
    assert ks_2samp_sorted(x, y)[1] == pytest.approx(exact, rel=1e-12)
    assert exact != pytest.approx(stats.ks_2samp(x, y, method="asymp").pvalue, rel=1e-3)
