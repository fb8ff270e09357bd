"""Column distribution drift between the latest batch and a reference.

Numbers: two-sample Kolmogorov-Smirnov and Anderson-Darling (k-sample) tests; categories: a
chi-square test of the two frequency tables. At the sizes batches reach, every tiny shift is
"significant", so a column drifts only when the change is also large: KS D or the population
stability index (PSI) above its threshold. P-values are adjusted with Benjamini-Hochberg across
every monitor of a run (`control_fdr`), so a run of many columns does not cry wolf by chance.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import special

from pipewarden.checks.monitoring.ks import ks_2samp_sorted_many

# PSI smoothing: a bin empty on one side would make the index infinite.
PSI_EPSILON = 1e-4


class DriftSettings(BaseModel):
    """Thresholds of the drift checks; effect sizes gate, the FDR level only confirms."""

    model_config = ConfigDict(frozen=True)

    alpha: float = Field(default=0.05, gt=0, lt=1, description="False discovery rate across a run.")
    ks_threshold: float = Field(
        default=0.1, gt=0, le=1, description="KS D that counts as a real shift."
    )
    psi_threshold: float = Field(default=0.2, gt=0, description="PSI that counts as a real shift.")
    bins: int = Field(default=10, ge=2, description="Reference quantile bins for numeric PSI.")
    min_size: int = Field(default=30, ge=2, description="Fewest values per side before judging.")


class DriftResult(BaseModel):
    """One column's verdict, with the numbers an alert quotes."""

    model_config = ConfigDict(frozen=True)

    column: str
    kind: Literal["numeric", "categorical"]
    test: str
    statistic: float
    p_value: float
    q_value: float | None = None
    effect: Literal["ks_d", "psi"]
    effect_size: float
    psi: float
    reference_size: int
    current_size: int
    drifted: bool = False
    reason: str = ""


def numeric_drift(
    column: str,
    reference: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    settings: DriftSettings | None = None,
) -> DriftResult:
    """KS (and, past an effect gate, Anderson-Darling: Bonferroni of the two) p-values; KS D
    and PSI as effects."""
    return numeric_drifts([(column, reference, current)], settings)[0]


def numeric_drifts(
    columns: Sequence[tuple[str, Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
    settings: DriftSettings | None = None,
) -> list[DriftResult]:
    """`numeric_drift` of many (column, reference, current): their KS p-values are computed
    together (`checks.monitoring.ks.ks_2samp_sorted_many`)."""
    settings = settings or DriftSettings()
    # Sorted once for KS and PSI alike.
    sides = [(column, np.sort(_finite(ref)), np.sort(_finite(cur))) for column, ref, cur in columns]
    judged = [(ref, cur) for _, ref, cur in sides if min(len(ref), len(cur)) >= settings.min_size]
    tests = iter(ks_2samp_sorted_many(judged))
    return [
        _numeric_result(column, ref, cur, *next(tests), settings)
        if min(len(ref), len(cur)) >= settings.min_size
        else _too_small(column, "numeric", len(ref), len(cur), settings)
        for column, ref, cur in sides
    ]


def _numeric_result(
    column: str,
    ref: np.ndarray,
    cur: np.ndarray,
    statistic: float,
    p_value: float,
    settings: DriftSettings,
) -> DriftResult:
    psi = numeric_psi(ref, cur, settings.bins)
    test = "ks_2samp"
    if statistic >= settings.ks_threshold or psi >= settings.psi_threshold:
        # Anderson-Darling adds power in the tails to a change large enough to matter; below
        # both effect gates the column cannot drift, and the test is the costliest here. (Its
        # p-value is then KS's alone, which moves the others' Benjamini-Hochberg ranks a little.)
        from scipy import stats  # seconds to import: only where a column needs it

        with warnings.catch_warnings():
            # anderson_ksamp caps its p-value to [0.001, 0.25] and warns when it does.
            warnings.simplefilter("ignore")
            ad = stats.anderson_ksamp([ref, cur])
        test = "ks_2samp+anderson_ksamp"
        p_value = min(1.0, 2 * min(p_value, float(ad.pvalue)))
    return _judged(
        DriftResult(
            column=column,
            kind="numeric",
            test=test,
            statistic=statistic,
            p_value=p_value,
            effect="ks_d",
            effect_size=statistic,
            psi=psi,
            reference_size=len(ref),
            current_size=len(cur),
        ),
        settings,
    )


def categorical_drift(
    column: str,
    reference: Iterable[object],
    current: Iterable[object],
    settings: DriftSettings | None = None,
) -> DriftResult:
    """Chi-square test of the two frequency tables; PSI over the categories as the effect."""
    ref_counts = Counter(_category(v) for v in reference)
    cur_counts = Counter(_category(v) for v in current)
    return counts_drift(column, ref_counts, cur_counts, settings)


def counts_drift(
    column: str,
    ref_counts: Mapping[str, int],
    cur_counts: Mapping[str, int],
    settings: DriftSettings | None = None,
) -> DriftResult:
    """`categorical_drift` from frequency tables (category -> count) rather than values."""
    settings = settings or DriftSettings()
    n_ref, n_cur = sum(ref_counts.values()), sum(cur_counts.values())
    if min(n_ref, n_cur) < settings.min_size:
        return _too_small(column, "categorical", n_ref, n_cur, settings)
    categories = sorted(set(ref_counts) | set(cur_counts))
    table = np.array(
        [[ref_counts.get(c, 0) for c in categories], [cur_counts.get(c, 0) for c in categories]]
    )
    if len(categories) < 2:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value = chi_square(table)
    psi = psi_index(table[0] / n_ref, table[1] / n_cur)
    return _judged(
        DriftResult(
            column=column,
            kind="categorical",
            test="chi2_contingency",
            statistic=statistic,
            p_value=p_value,
            effect="psi",
            effect_size=psi,
            psi=psi,
            reference_size=n_ref,
            current_size=n_cur,
        ),
        settings,
    )


def column_drift(
    reference: Mapping[str, Sequence[object]],
    current: Mapping[str, Sequence[object]],
    settings: DriftSettings | None = None,
) -> list[DriftResult]:
    """Every column both sides share, numeric or categorical by its values; FDR within the set.

    To control the FDR across several tables of a run, concatenate their results and call
    `control_fdr` once more on the whole list.
    """
    settings = settings or DriftSettings()
    results = []
    for column in sorted(set(reference) & set(current)):
        ref, cur = list(reference[column]), list(current[column])
        if _numeric(ref) and _numeric(cur):
            results.append(numeric_drift(column, ref, cur, settings))  # type: ignore[arg-type]
        else:
            results.append(categorical_drift(column, ref, cur, settings))
    return control_fdr(results, settings)


def control_fdr(
    results: Sequence[DriftResult], settings: DriftSettings | None = None
) -> list[DriftResult]:
    """Benjamini-Hochberg q-values across all results; drifted = large effect and q <= alpha."""
    settings = settings or DriftSettings()
    q_values = benjamini_hochberg([r.p_value for r in results])
    return [with_q_value(r, q, settings) for r, q in zip(results, q_values, strict=True)]


def with_q_value(result: DriftResult, q_value: float, settings: DriftSettings) -> DriftResult:
    """The result judged on a q-value adjusted elsewhere (a family wider than its own table's)."""
    return _judged(result.model_copy(update={"q_value": q_value}), settings)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Adjusted p-values (q-values) of the Benjamini-Hochberg step-up procedure."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty_like(p)
    q[order] = np.minimum(adjusted, 1.0)
    return q.tolist()


def chi_square(table: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of independence of a contingency table with no empty row or
    column: `scipy.stats.chi2_contingency(table, correction=False)`'s statistic and p-value.

    Written out because scipy's wrapper was most of a check run's column monitors
    (bench/checks_store.py); the test itself is these lines.
    """
    observed = np.asarray(table, dtype=np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    statistic = float(((observed - expected) ** 2 / expected).sum())
    dof = (observed.shape[0] - 1) * (observed.shape[1] - 1)
    # `chi2.sf` is this function behind argument checks.
    return statistic, float(special.chdtrc(dof, statistic))


def numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """PSI of two ascending arrays over the reference's quantile bins (ties collapse bins,
    which is fine). A bin holds the values from its lower edge to below its upper one."""
    edges = np.unique(sorted_quantiles(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    return psi_index(_bin_shares(reference, edges), _bin_shares(current, edges))


def sorted_quantiles(ascending: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`np.quantile(ascending, q)` (its default, linear method) of an ascending array.

    numpy partitions the array again, most of a column's PSI; these lines are numpy's
    interpolation as written in `numpy.lib._function_base_impl`, on the sorted array.
    """
    virtual = (len(ascending) - 1) * q
    previous = np.floor(virtual)
    below = ascending[previous.astype(np.intp)]
    above = ascending[np.minimum(previous + 1, len(ascending) - 1).astype(np.intp)]
    gamma = virtual - previous
    step = above - below
    return np.where(gamma >= 0.5, above - step * (1 - gamma), below + step * gamma)


def psi_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def _judged(result: DriftResult, settings: DriftSettings) -> DriftResult:
    if result.test == "none":
        return result
    threshold = settings.ks_threshold if result.effect == "ks_d" else settings.psi_threshold
    large = result.effect_size >= threshold or result.psi >= settings.psi_threshold
    p = result.q_value if result.q_value is not None else result.p_value
    drifted = large and p <= settings.alpha
    size = f"KS D {result.effect_size:.3f}, PSI {result.psi:.3f}"
    if result.effect == "psi":
        size = f"PSI {result.psi:.3f}"
    if drifted:
        reason = f"drifted: {size} at q={p:.2g} ({result.test})"
    elif not large:
        reason = f"stable: {size} below thresholds (p={result.p_value:.2g})"
    else:
        reason = f"not significant: {size} but p={p:.2g} > {settings.alpha}"
    return result.model_copy(update={"drifted": drifted, "reason": reason})


def _too_small(
    column: str,
    kind: Literal["numeric", "categorical"],
    n_ref: int,
    n_cur: int,
    settings: DriftSettings,
) -> DriftResult:
    return DriftResult(
        column=column,
        kind=kind,
        test="none",
        statistic=0.0,
        p_value=1.0,
        effect="ks_d" if kind == "numeric" else "psi",
        effect_size=0.0,
        psi=0.0,
        reference_size=n_ref,
        current_size=n_cur,
        reason=f"too few values to judge ({n_ref} and {n_cur}, need {settings.min_size})",
    )


def _bin_shares(ascending: np.ndarray, edges: np.ndarray) -> np.ndarray:
    bounds = np.concatenate(([0], np.searchsorted(ascending, edges), [len(ascending)]))
    return (bounds[1:] - bounds[:-1]) / len(ascending)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        array = np.asarray(values, dtype=np.float64)
    else:
        array = np.asarray([v for v in values if v is not None], dtype=np.float64)
    finite = np.isfinite(array)
    return array if finite.all() else array[finite]


def _numeric(values: Sequence[object]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present
    )


def _category(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "<null>"
    return str(value)
