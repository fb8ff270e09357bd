"""Drift: effect size gates (trivial shifts at large n pass), real shifts are caught, BH holds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipewarden.checks.monitoring.distribution_drift import (
    DriftSettings,
    benjamini_hochberg,
    categorical_drift,
    chi_square,
    column_drift,
    control_fdr,
    numeric_drift,
    numeric_drifts,
    psi_index,
    sorted_quantiles,
)
from tests.checks.monitoring.support import reference_numeric_drift


def test_trivial_numeric_shift_at_large_n_is_ignored() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 200_000)
    current = rng.normal(0.03, 1, 200_000)
    result = numeric_drift("amount", reference, current)
    assert result.p_value < 1e-6  # "significant"...
    assert result.effect_size < 0.05  # ...but tiny
    assert not result.drifted
    assert "stable" in result.reason


def test_real_numeric_shift_is_caught() -> None:
    rng = np.random.default_rng(1)
    result = numeric_drift("amount", rng.normal(0, 1, 5000), rng.normal(0.6, 1, 500))
    assert result.drifted
    assert result.effect_size > 0.2 and result.psi > 0.2
    assert result.reference_size == 5000 and result.current_size == 500


def test_change_of_spread_is_caught_by_the_tails() -> None:
    rng = np.random.default_rng(2)
    result = numeric_drift("latency", rng.normal(0, 1, 5000), rng.normal(0, 3, 2000))
    assert result.drifted


def test_small_samples_are_not_judged() -> None:
    result = numeric_drift("x", [1.0, 2.0, 3.0], [10.0, 11.0, 12.0])
    assert not result.drifted and "too few" in result.reason


def test_categorical_drift() -> None:
    reference = ["email"] * 60_000 + ["sms"] * 40_000
    nudged = ["email"] * 60_800 + ["sms"] * 39_200
    assert not categorical_drift("channel", reference, nudged).drifted
    changed = ["email"] * 30_000 + ["sms"] * 40_000 + ["push"] * 30_000
    result = categorical_drift("channel", reference, changed)
    assert result.drifted and result.effect == "psi"
    assert result.psi > 1


def test_nulls_are_a_category() -> None:
    reference = ["a", "b"] * 500
    current = ["a", None] * 500
    assert categorical_drift("c", reference, current).drifted


def test_benjamini_hochberg_matches_scipy() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    expected = stats.false_discovery_control(p, method="bh")
    assert np.allclose(benjamini_hochberg(p), expected)
    assert benjamini_hochberg([]) == []


def test_fdr_across_a_run_demotes_marginal_results() -> None:
    """A large effect with a marginal p-value is significant alone but not among 50 monitors."""
    settings = DriftSettings(min_size=5)
    rng = np.random.default_rng(3)
    marginal = numeric_drift("x", rng.normal(0, 1, 60), rng.normal(0.6, 1, 60), settings)
    assert marginal.effect_size >= settings.ks_threshold and marginal.p_value < settings.alpha
    stable = [
        numeric_drift(f"c{i}", rng.normal(size=300), rng.normal(size=300), settings)
        for i in range(49)
    ]
    adjusted = control_fdr([marginal, *stable], settings)
    assert not adjusted[0].drifted
    assert adjusted[0].q_value is not None and adjusted[0].q_value > marginal.p_value


def test_column_drift_reads_types_and_adjusts() -> None:
    rng = np.random.default_rng(4)
    reference = {"amount": list(rng.normal(size=2000)), "country": ["DE", "FR"] * 1000}
    current = {"amount": list(rng.normal(1, 1, 2000)), "country": ["DE", "FR"] * 1000}
    results = {r.column: r for r in column_drift(reference, current)}
    assert results["amount"].kind == "numeric" and results["amount"].drifted
    assert results["country"].kind == "categorical" and not results["country"].drifted
    assert all(r.q_value is not None for r in results.values())


def test_psi_of_identical_shares_is_zero() -> None:
    assert psi_index(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0


@pytest.mark.parametrize(
    "table",
    [
        [[120, 880], [3, 997]],
        [[5, 40, 300, 12], [9, 31, 280, 40]],
        [[1, 0, 7], [0, 2, 9], [4, 4, 4]],
    ],
)
def test_chi_square_is_scipys_contingency_test_without_correction(table: list[list[int]]) -> None:
    expected = stats.chi2_contingency(np.array(table), correction=False)
    statistic, p_value = chi_square(np.array(table))
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_sorted_quantiles_are_numpys() -> None:
    rng = np.random.default_rng(5)
    for i in range(2000):
        n = int(rng.integers(2, 6000))
        values = [rng.normal(0, 1, n), rng.integers(0, 7, n) * 1.0, rng.gamma(2, 25, n)][i % 3]
        q = np.linspace(0, 1, int(rng.integers(3, 21)))[1:-1]
        ascending = np.sort(values)
        assert np.array_equal(sorted_quantiles(ascending, q), np.quantile(ascending, q)), n


def test_numeric_drift_is_scipys_tests_on_the_same_values() -> None:
    """Sorted once, KS written out, PSI from sorted bins, many columns at once: the verdicts of
    scipy's functions, column by column."""
    rng = np.random.default_rng(6)
    settings = DriftSettings()
    cases = [(rng.normal(0, 1, 5000), rng.normal(0.02, 1, 1000))]
    for _ in range(120):
        n1, n2 = (int(n) for n in rng.integers(20, 4000, 2))
        shift = rng.choice([0.0, 0.05, 0.3, 1.0])
        cases.append((rng.gamma(2, 25, n1), rng.gamma(2, 25 * (1 + shift), n2)))
        cases.append((rng.integers(0, 9, n1) * 1.0, rng.integers(0, 9 + int(10 * shift), n2) * 1.0))
    cases.append((np.array([1.0, np.nan, np.inf] * 40), np.arange(100.0)))
    tests = set()
    together = numeric_drifts([("x", reference, current) for reference, current in cases], settings)
    for (reference, current), fast in zip(cases, together, strict=True):
        plain = reference_numeric_drift("x", reference, current, settings)
        assert numeric_drift("x", reference, current, settings) == fast
        assert fast.model_dump(exclude={"p_value", "reason"}) == plain.model_dump(
            exclude={"p_value", "reason"}
        )
        assert fast.p_value == pytest.approx(plain.p_value, rel=1e-12, abs=1e-300)
        tests.add((fast.test, fast.drifted))
    assert tests == {
        ("ks_2samp", False),
        ("ks_2samp+anderson_ksamp", False),
        ("ks_2samp+anderson_ksamp", True),
        ("none", False),
    }
