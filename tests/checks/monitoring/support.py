"""The column monitors the plain way: what the fast path must agree with.

Every sample decoded into a `ColumnSample`, each column's samples gathered by scanning the
runs, the reference thinned with `rng.choice` on the values, and every test through scipy's
public functions (`ks_2samp` with the documented method switch, `np.quantile` bins counted
with `bincount`, `anderson_ksamp`, `chi2_contingency`). Only the verdicts' wording is shared
with `checks.monitoring.column_monitor`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from scipy import stats

from pipewarden.checks.monitoring.column_monitor import (
    REFERENCE_VALUES,
    ColumnMonitorSettings,
    NullRateTest,
    _drift_result,
    _null_result,
    _split,
)
from pipewarden.checks.monitoring.distribution_drift import (
    DriftResult,
    DriftSettings,
    _judged,
    _too_small,
    benjamini_hochberg,
    psi_index,
    with_q_value,
)
from pipewarden.records.column_samples import ColumnSample, by_run, read_samples
from pipewarden.records.evidence import INSUFFICIENT
from pipewarden.records.metrics import CheckResult


def reference_numeric_drift(
    column: str, reference: np.ndarray, current: np.ndarray, settings: DriftSettings
) -> DriftResult:
    """`checks.monitoring.distribution_drift.numeric_drift` through scipy, unsorted arrays and
    all."""
    ref = reference[np.isfinite(reference)]
    cur = current[np.isfinite(current)]
    if min(len(ref), len(cur)) < settings.min_size:
        return _too_small(column, "numeric", len(ref), len(cur), settings)
    method = "asymp" if min(len(ref), len(cur)) >= 100 else "auto"
    ks = stats.ks_2samp(ref, cur, method=method)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, settings.bins + 1)[1:-1]))
    shares = [
        np.bincount(np.searchsorted(edges, side, side="right"), minlength=len(edges) + 1)
        / len(side)
        for side in (ref, cur)
    ]
    psi = psi_index(shares[0], shares[1])
    test, p_value = "ks_2samp", float(ks.pvalue)
    if ks.statistic >= settings.ks_threshold or psi >= settings.psi_threshold:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ad = stats.anderson_ksamp([ref, cur])
        test, p_value = "ks_2samp+anderson_ksamp", min(1.0, 2 * min(p_value, float(ad.pvalue)))
    d = float(ks.statistic)
    return _result(column, "numeric", test, d, p_value, d, psi, len(ref), len(cur), settings)


def reference_counts_drift(
    column: str, ref: dict[str, int], cur: dict[str, int], settings: DriftSettings
) -> DriftResult:
    """`checks.monitoring.distribution_drift.counts_drift` with scipy's `chi2_contingency`."""
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    if min(n_ref, n_cur) < settings.min_size:
        return _too_small(column, "categorical", n_ref, n_cur, settings)
    categories = sorted(set(ref) | set(cur))
    table = np.array([[ref.get(c, 0) for c in categories], [cur.get(c, 0) for c in categories]])
    statistic, p_value = 0.0, 1.0
    if len(categories) >= 2:
        chi2 = stats.chi2_contingency(table, correction=False)
        statistic, p_value = float(chi2.statistic), float(chi2.pvalue)
    psi = psi_index(table[0] / n_ref, table[1] / n_cur)
    return _result(
        column,
        "categorical",
        "chi2_contingency",
        statistic,
        p_value,
        psi,
        psi,
        n_ref,
        n_cur,
        settings,
    )


def reference_column_results(
    engine: sa.Engine,
    config: Any,
    names: Sequence[str],
    now: datetime,
    run_id: str,
    settings: ColumnMonitorSettings | None = None,
) -> list[CheckResult]:
    """`checks.monitoring.column_monitor.column_results`, the plain way."""
    settings = settings or ColumnMonitorSettings()
    with engine.connect() as conn:
        samples = read_samples(conn, names)
    drift: list[tuple[str, datetime, DriftResult, int]] = []
    nulls: list[tuple[str, datetime, NullRateTest, int]] = []
    waiting: list[CheckResult] = []
    for name in names:
        runs = by_run(samples.get(name, []))
        if not runs:
            continue
        skip = {*config.tables[name].primary_key, config.tables[name].cursor}
        split = _split(runs, settings)  # type: ignore[arg-type]
        at = runs[0][0].measured_at
        for column in [s.column for s in runs[0] if s.column not in skip]:
            cur = [s for run in split.current for s in run if s.column == column]
            ref = [s for run in split.reference for s in run if s.column == column]
            rows = sum(s.rows for s in cur)
            if len(ref) < settings.min_reference_runs or rows < settings.drift.min_size:
                waiting += _waiting(name, column, at, len(ref), rows, now, run_id, settings)
                continue
            ref_nulls, ref_rows = sum(s.nulls for s in ref), sum(s.rows for s in ref)
            table = np.array([[ref_nulls, ref_rows - ref_nulls], [sum(s.nulls for s in cur), 0]])
            table[1, 1] = rows - table[1, 0]
            p = 1.0
            if table.sum(axis=0).min() > 0:
                p = float(stats.chi2_contingency(table, correction=False).pvalue)
            test = NullRateTest(column, int(table[1, 0]), rows, ref_nulls, ref_rows, p)
            nulls.append((name, at, test, len(ref)))
            result = _reference_drift(column, cur, ref, settings.drift)
            if result is not None:
                drift.append((name, at, result, len(ref)))
    tested = [d for d in drift if d[2].test != "none"]
    q_values = iter(
        benjamini_hochberg([d[2].p_value for d in tested] + [n[2].p_value for n in nulls])
    )
    out = [
        _drift_result(
            name,
            at,
            r if r.test == "none" else with_q_value(r, next(q_values), settings.drift),
            runs,
            settings.drift,
            now,
            run_id,
        )
        for name, at, r, runs in drift
    ]
    out += [
        _null_result(name, at, test, next(q_values), runs, settings, now, run_id)
        for name, at, test, runs in nulls
    ]
    return out + waiting


def _reference_drift(
    column: str, cur: list[ColumnSample], ref: list[ColumnSample], settings: DriftSettings
) -> DriftResult | None:
    if all(s.values is not None for s in cur + ref):
        reference = np.concatenate([s.values for s in ref if s.values is not None])
        if len(reference) > REFERENCE_VALUES:
            rng = np.random.default_rng(0)
            reference = rng.choice(reference, REFERENCE_VALUES, replace=False)
        current = np.concatenate([s.values for s in cur if s.values is not None])
        return reference_numeric_drift(column, reference, current, settings)
    if all(s.counts is not None for s in cur + ref):
        return reference_counts_drift(column, _summed(ref), _summed(cur), settings)
    return None


def _summed(samples: list[ColumnSample]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in samples:
        for value, n in (s.counts or {}).items():
            total[value] = total.get(value, 0) + n
    return total


def _waiting(
    name: str,
    column: str,
    at: datetime,
    runs: int,
    rows: int,
    now: datetime,
    run_id: str,
    settings: ColumnMonitorSettings,
) -> list[CheckResult]:
    why = (
        f"{column}: {runs} earlier runs with this column and {rows} rows in the latest batch "
        f"(needs {settings.min_reference_runs} runs and {settings.drift.min_size} rows)"
    )
    return [
        CheckResult(
            table_name=name,
            check=f"{kind}:{column}",
            status=INSUFFICIENT,
            observed_at=at,
            reason=why,
            run_id=run_id,
            checked_at=now,
        )
        for kind in ("null_rate", "drift")
    ]


def _result(
    column: str,
    kind: Literal["numeric", "categorical"],
    test: str,
    statistic: float,
    p_value: float,
    effect_size: float,
    psi: float,
    n_ref: int,
    n_cur: int,
    settings: DriftSettings,
) -> DriftResult:
    return _judged(
        DriftResult(
            column=column,
            kind=kind,
            test=test,
            statistic=statistic,
            p_value=p_value,
            effect="ks_d" if kind == "numeric" else "psi",
            effect_size=effect_size,
            psi=psi,
            reference_size=n_ref,
            current_size=n_cur,
        ),
        settings,
    )
