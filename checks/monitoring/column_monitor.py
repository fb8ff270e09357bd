"""Column monitors: distribution drift and null rates of the newest sync against earlier syncs.

What is compared, from `pipewarden_column_samples` (one row per delta run and column):

* The latest batch: the newest delta run's rows. A run with fewer than `DriftSettings.min_size`
  rows is pooled with the runs just before it until there are enough, so a table that changes
  by a handful of rows an hour is judged over its last few runs rather than never.
* The reference: the `reference_runs` delta runs before those (a day of hourly syncs), at least
  `min_reference_runs` of them. Full loads are neither: a first load is the whole table, not a
  batch of changes. The key and the cursor are not monitored: both move by construction.
* Runs an earlier check flagged (per column and monitor) stay out of the reference, so a
  recurring incident is caught every time instead of widening the reference until it passes.
  A change that lasts a whole reference window (`reference_runs` flagged runs in a row) is the
  new normal: those runs count again.

Numbers: `checks.monitoring.distribution_drift.numeric_drift` (KS and Anderson-Darling, gated on KS
D or PSI) over the runs' samples, every numeric column of the check run in one `numeric_drifts` call
(the KS p-values are computed together); columns with few distinct values: `counts_drift`
(chi-square, gated on PSI) over exact counts. Null rates: chi-square of the two (nulls, present)
rows, gated on Cohen's h = |2 asin sqrt(p1) - 2 asin sqrt(p0)| and an absolute floor, so 0% -> 0.5%
stays quiet while 0% -> 40% does not. Every p-value of a check run, across tables and both kinds of
monitor, is adjusted by Benjamini-Hochberg together before anything is called a change.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from pipewarden.checks.monitoring.distribution_drift import (
    DriftResult,
    DriftSettings,
    benjamini_hochberg,
    chi_square,
    counts_drift,
    numeric_drifts,
    with_q_value,
)
from pipewarden.config import PipewardenConfig, TableConfig
from pipewarden.records.column_samples import (
    StoredSample,
    by_run,
    read_stored,
    sample_values,
    summed_counts,
)
from pipewarden.records.evidence import ANOMALY, INSUFFICIENT, OK
from pipewarden.records.metrics import CheckResult, check_results
from pipewarden.records.values import utc

KINDS = ("null_rate", "drift")
#: Most reference values a numeric test reads (the runs' samples pooled, then thinned).
REFERENCE_VALUES = 5000


class ColumnMonitorSettings(BaseModel):
    """Thresholds of the column monitors; effect sizes gate, the FDR level only confirms."""

    model_config = ConfigDict(frozen=True)

    drift: DriftSettings = DriftSettings()
    null_rate_effect: float = Field(
        default=0.2, gt=0, description="Cohen's h of a null-rate change worth an alert."
    )
    null_rate_floor: float = Field(
        default=0.02, ge=0, le=1, description="Smallest absolute null-rate change worth an alert."
    )
    reference_runs: int = Field(default=24, ge=1, description="Earlier runs in the reference.")
    min_reference_runs: int = Field(default=3, ge=1, description="Fewest runs before judging.")


@dataclass(frozen=True)
class NullRateTest:
    """Null counts of the latest batch and of the reference, and the test's p-value."""

    column: str
    nulls: int
    rows: int
    ref_nulls: int
    ref_rows: int
    p_value: float

    @property
    def rate(self) -> float:
        return self.nulls / self.rows

    @property
    def ref_rate(self) -> float:
        return self.ref_nulls / self.ref_rows

    @property
    def effect(self) -> float:
        return abs(_angle(self.rate) - _angle(self.ref_rate))


def null_rate_test(
    column: str, nulls: int, rows: int, ref_nulls: int, ref_rows: int
) -> NullRateTest:
    """Chi-square of (nulls, present) now against the reference; p = 1 when neither has nulls."""
    table = np.array([[ref_nulls, ref_rows - ref_nulls], [nulls, rows - nulls]])
    # No nulls on either side (or only nulls): nothing changed.
    p_value = 1.0 if table.sum(axis=0).min() == 0 else chi_square(table)[1]
    return NullRateTest(column, nulls, rows, ref_nulls, ref_rows, p_value)


def null_rate_band(ref_rate: float, settings: ColumnMonitorSettings) -> tuple[float, float]:
    """Null rates too close to the reference to matter: within h and within the floor."""
    half = settings.null_rate_effect / 2
    base = math.asin(math.sqrt(ref_rate))
    low = math.sin(max(0.0, base - half)) ** 2
    high = math.sin(min(math.pi / 2, base + half)) ** 2
    floor = settings.null_rate_floor
    return max(0.0, min(low, ref_rate - floor)), min(1.0, max(high, ref_rate + floor))


@dataclass(frozen=True)
class _Split:
    """One table's latest batch and reference, as runs of samples (newest first)."""

    current: list[list[StoredSample]]
    reference: list[list[StoredSample]]


def column_results(
    engine: sa.Engine,
    config: PipewardenConfig,
    names: Sequence[str],
    now: datetime,
    run_id: str,
    settings: ColumnMonitorSettings | None = None,
) -> list[CheckResult]:
    """Drift and null-rate verdicts of every monitored column of the named tables.

    1. Read every table's column samples and the runs earlier checks flagged, in one go.
    2. Per table, column and monitor, the latest batch against its reference (`_table_tests`):
       too little of either is a verdict at once (insufficient history); otherwise the null-rate
       test is computed and the drift comparison kept.
    3. The drift tests of every column (`_drifts`: the numeric ones in one call).
    4. Every p-value of the run, drift and null rate, adjusted by Benjamini-Hochberg together.
    5. The verdicts, their q-values as scores.
    """
    settings = settings or ColumnMonitorSettings()
    with engine.connect() as conn:
        samples = read_stored(conn, names)
        flagged = flagged_runs(conn, names)
    tests = _Tests()
    for name in names:
        runs = by_run(samples.get(name, []))
        if runs:
            _table_tests(tests, name, config.tables[name], runs, flagged, settings, now, run_id)
    drifts = _drifts([sides for _, sides in tests.drifts], settings.drift)
    tested = [r.p_value for r in drifts if r.test != "none"]
    q_values = iter(benjamini_hochberg(tested + [t.p_value for _, t in tests.nulls]))
    out = [
        _drift_result(
            batch.table,
            batch.at,
            r if r.test == "none" else with_q_value(r, next(q_values), settings.drift),
            batch.runs,
            settings.drift,
            now,
            run_id,
        )
        for (batch, _), r in zip(tests.drifts, drifts, strict=True)
    ]
    out += [
        _null_result(batch.table, batch.at, test, next(q_values), batch.runs, settings, now, run_id)
        for batch, test in tests.nulls
    ]
    return out + tests.waiting


@dataclass(frozen=True)
class _Batch:
    """Whose latest batch a test judges: the table, its newest run, the runs it is compared to."""

    table: str
    at: datetime
    runs: int


@dataclass
class _Tests:
    """A check run's column tests before their p-values are adjusted together, and the columns
    that wait for more history."""

    drifts: list[tuple[_Batch, "_Compared"]] = field(default_factory=list)
    nulls: list[tuple[_Batch, NullRateTest]] = field(default_factory=list)
    waiting: list[CheckResult] = field(default_factory=list)


def _table_tests(
    tests: _Tests,
    name: str,
    table: TableConfig,
    runs: list[list[StoredSample]],
    flagged: dict[tuple[str, str, str], set[datetime]],
    settings: ColumnMonitorSettings,
    now: datetime,
    run_id: str,
) -> None:
    """Add one table's tests: each column but the key and the cursor, by each monitor."""
    skip = {*table.primary_key, table.cursor}
    split = _split(runs, settings)
    current, earlier = _by_column(split.current), _by_column(split.reference)
    at = runs[0][0].measured_at
    for column in [s.column for s in runs[0] if s.column not in skip]:
        cur, rows = current[column], sum(s.rows for s in current[column])
        for kind in KINDS:
            ref = _reference(earlier.get(column, []), flagged.get((name, kind, column)), settings)
            batch = _Batch(name, at, len(ref))
            if len(ref) < settings.min_reference_runs or rows < settings.drift.min_size:
                why = (
                    f"{column}: {len(ref)} earlier runs with this column and {rows} rows in "
                    f"the latest batch (needs {settings.min_reference_runs} runs and "
                    f"{settings.drift.min_size} rows)"
                )
                waiting = CheckResult(
                    table_name=name,
                    check=f"{kind}:{column}",
                    status=INSUFFICIENT,
                    observed_at=at,
                    reason=why,
                    run_id=run_id,
                    checked_at=now,
                )
                tests.waiting.append(waiting)
            elif kind == "null_rate":
                ref_rows = sum(s.rows for s in ref)
                test = null_rate_test(column, _nulls(cur), rows, _nulls(ref), ref_rows)
                tests.nulls.append((batch, test))
            elif (sides := _compared(column, cur, ref)) is not None:
                tests.drifts.append((batch, sides))


def _split(runs: list[list[StoredSample]], settings: ColumnMonitorSettings) -> _Split:
    """Newest runs until they hold `min_size` rows, then every kept run before them."""
    taken, rows = 0, 0
    while taken < len(runs) and rows < settings.drift.min_size:
        rows += max(s.rows for s in runs[taken])
        taken += 1
    return _Split(runs[:taken], runs[taken:])


def _reference(
    earlier: list[StoredSample], flagged: set[datetime] | None, settings: ColumnMonitorSettings
) -> list[StoredSample]:
    """A column's reference: its `reference_runs` newest earlier runs that no check flagged.

    Flagged runs count again when they are part of `reference_runs` flagged runs in a row: a
    change that lasted a whole reference window is the new normal, not an incident.
    """
    if not flagged:
        return earlier[: settings.reference_runs]
    kept: list[StoredSample] = []
    streak: list[StoredSample] = []
    for sample in [*earlier, None]:
        if sample is not None and sample.measured_at in flagged:
            streak.append(sample)
            continue
        if len(streak) >= settings.reference_runs:
            kept += streak
        streak = []
        if sample is not None:
            kept.append(sample)
    return kept[: settings.reference_runs]


def flagged_runs(
    conn: sa.Connection, names: Sequence[str]
) -> dict[tuple[str, str, str], set[datetime]]:
    """`{(table, monitor, column): runs}`: when each run a column monitor flagged was measured."""
    c = check_results.c
    monitored = sa.or_(*(c.check.startswith(f"{kind}:") for kind in KINDS))
    q = sa.select(c.table_name, c.check, c.observed_at).where(
        c.table_name.in_(list(names)), c.status == ANOMALY, monitored, c.observed_at.is_not(None)
    )
    out: dict[tuple[str, str, str], set[datetime]] = {}
    for table, check, at in conn.execute(q.distinct()).tuples().all():
        kind, column = check.split(":", 1)
        out.setdefault((table, kind, column), set()).add(utc(at))
    return out


def _by_column(runs: list[list[StoredSample]]) -> dict[str, list[StoredSample]]:
    """Each column's samples, newest run first."""
    columns: dict[str, list[StoredSample]] = {}
    for run in runs:
        for s in run:
            columns.setdefault(s.column, []).append(s)
    return columns


def _nulls(samples: list[StoredSample]) -> int:
    return sum(s.nulls for s in samples)


@dataclass(frozen=True)
class _Compared:
    """What a column's drift test compares: both sides' numbers, or both sides' counts."""

    column: str
    numbers: tuple[np.ndarray, np.ndarray] | None = None
    counts: tuple[dict[str, int], dict[str, int]] | None = None


def _compared(column: str, cur: list[StoredSample], ref: list[StoredSample]) -> _Compared | None:
    """Numbers when both sides have samples, categories when both have counts, else nothing."""
    if all(s.sample is not None for s in cur + ref):
        reference = sample_values([s.sample for s in ref if s.sample is not None])
        if len(reference) > REFERENCE_VALUES:
            reference = reference[_thinned(len(reference))]
        current = sample_values([s.sample for s in cur if s.sample is not None])
        return _Compared(column, numbers=(reference, current))
    if all(s.counts is not None for s in cur + ref):
        ref_counts = summed_counts([s.counts for s in ref if s.counts is not None])
        cur_counts = summed_counts([s.counts for s in cur if s.counts is not None])
        return _Compared(column, counts=(ref_counts, cur_counts))
    return None


def _drifts(compared: list[_Compared], settings: DriftSettings) -> list[DriftResult]:
    """Each column's drift, in order; the numeric ones in one call (their KS p-values together)."""
    numbers = [(c.column, *c.numbers) for c in compared if c.numbers is not None]
    numeric = iter(numeric_drifts(numbers, settings))
    return [
        counts_drift(c.column, *c.counts, settings) if c.counts is not None else next(numeric)
        for c in compared
    ]


@lru_cache(maxsize=64)
def _thinned(size: int) -> np.ndarray:
    """Which `REFERENCE_VALUES` of `size` pooled values a test reads: the same for the same
    runs, and drawn once per size (the tables of one cadence share it). The
    picks are those of `default_rng(0).choice(values, REFERENCE_VALUES, replace=False)`."""
    picks = np.random.default_rng(0).choice(size, REFERENCE_VALUES, replace=False)
    picks.flags.writeable = False
    return picks


def _drift_result(
    name: str,
    observed_at: datetime,
    r: DriftResult,
    runs: int,
    settings: DriftSettings,
    now: datetime,
    run_id: str,
) -> CheckResult:
    status = INSUFFICIENT if r.test == "none" else ANOMALY if r.drifted else OK
    threshold = settings.ks_threshold if r.effect == "ks_d" else settings.psi_threshold
    gate = f"KS D ≥ {settings.ks_threshold:g} or PSI ≥ {settings.psi_threshold:g}"
    if r.effect == "psi":
        gate = f"PSI ≥ {settings.psi_threshold:g}"
    return CheckResult(
        checked_at=now,
        table_name=name,
        check=f"drift:{r.column}",
        status=status,
        observed=r.effect_size,
        observed_at=observed_at,
        expected_low=0.0,
        expected_high=threshold,
        score=r.q_value,
        method=f"{r.test}; drift when {gate} and BH q ≤ {settings.alpha:g} (score: q)",
        reason=(
            f"{r.column}: {r.reason}; latest {r.current_size:,} values vs {r.reference_size:,} "
            f"from {runs} earlier runs"
        ),
        history_size=r.reference_size,
        run_id=run_id,
    )


def _null_result(
    name: str,
    observed_at: datetime,
    test: NullRateTest,
    q: float,
    runs: int,
    settings: ColumnMonitorSettings,
    now: datetime,
    run_id: str,
) -> CheckResult:
    low, high = null_rate_band(test.ref_rate, settings)
    large = not low <= test.rate <= high
    changed = large and q <= settings.drift.alpha
    verdict = "changed" if changed else "not significant" if large else "stable"
    return CheckResult(
        checked_at=now,
        table_name=name,
        check=f"null_rate:{test.column}",
        status=ANOMALY if changed else OK,
        observed=test.rate,
        observed_at=observed_at,
        expected_low=low,
        expected_high=high,
        score=q,
        method=(
            f"chi-square of nulls; change when Cohen's h ≥ {settings.null_rate_effect:g}, "
            f"|Δ| ≥ {settings.null_rate_floor:g} and BH q ≤ {settings.drift.alpha:g} (score: q)"
        ),
        reason=(
            f"{test.column}: {verdict}: null rate {test.rate:.1%} ({test.nulls:,} of "
            f"{test.rows:,}) vs {test.ref_rate:.1%} over {runs} earlier runs "
            f"(h {test.effect:.2f}, q={q:.2g})"
        ),
        history_size=test.ref_rows,
        run_id=run_id,
    )


def _angle(rate: float) -> float:
    return 2 * math.asin(math.sqrt(min(1.0, max(0.0, rate))))
