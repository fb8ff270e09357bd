"""The detector's share of a check run, one table at a time: what a helper process is given.

`TableScoring` holds what scoring a table needs (its histories, its last verdicts, its detector
settings) and reads nothing, so a check run can score its tables in other processes: forked
helpers find it in memory, spawned ones are sent the part for their tables (`share`), pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, Verdict
from pipewarden.checks.monitoring.volume import VolumeJudge
from pipewarden.records.evidence import ANOMALY, INSUFFICIENT, OK
from pipewarden.records.metrics import CheckResult, EpochSeries, as_instant

#: The metrics whose newest point is checked, and how the detector should read them. Volume is
#: checked per cursor hour (`checks.monitoring.volume`), not per run, whose size follows the
#: cadence.
ANOMALY_METRICS: tuple[tuple[str, str], ...] = (
    ("latency_p95_seconds", "gauge"),
    ("freshness_seconds", "gauge"),
)
#: Metrics where only a rise is bad: data arriving faster or fresher than usual is no incident.
ONLY_HIGH_IS_BAD = frozenset(
    {"latency_p95_seconds", "freshness_seconds", "delivery_latency_p95_seconds"}
)

#: `checks.monitoring.anomaly.detector.score_tail` or a stand-in: the verdicts of a series' newest
#: points.
Scorer = Callable[..., list[Verdict]]
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0))


@dataclass(frozen=True)
class TableScoring:
    """Scores one table's anomaly checks, then its volume (`__call__`), from what was read."""

    series: Mapping[str, Mapping[str, EpochSeries]]  # {metric: {table: arrays}}
    last_checks: Mapping[str, Sequence[CheckResult]]
    settings: Mapping[str, DetectorSettings]
    volume: VolumeJudge
    scorer: Scorer
    now: datetime
    run_id: str

    def __call__(self, name: str) -> list[CheckResult]:
        earlier = {r.check: r for r in self.last_checks[name]}
        out = []
        for metric, kind in ANOMALY_METRICS:
            micros, values = self.series[metric].get(name, _EMPTY)
            again = _unchanged(earlier.get(f"anomaly:{metric}"), micros, values)
            if again is not None:
                out.append(replace(again, checked_at=self.now, run_id=self.run_id))
                continue
            own = self.settings[name]
            out.append(
                anomaly_result(
                    name, metric, kind, micros, values, own, self.scorer, self.now, self.run_id
                )
            )
        return [*out, self.volume(name)]

    def share(self, names: Sequence[str]) -> TableScoring:
        """What scoring `names` needs, and nothing of the other tables."""
        return replace(
            self,
            series={
                metric: {n: tables[n] for n in names if n in tables}
                for metric, tables in self.series.items()
            },
            last_checks={n: self.last_checks[n] for n in names},
            settings={n: self.settings[n] for n in names},
            volume=self.volume.share(names),
        )


def _unchanged(
    earlier: CheckResult | None, micros: np.ndarray, values: np.ndarray
) -> CheckResult | None:
    """The last check's verdict when it scored this very point: scoring is from the past only,
    so the same newest point gets the same verdict; checks that run more often than syncs then
    cost no detector time."""
    if earlier is None or not len(values) or earlier.observed_at is None:
        return None
    if earlier.status == INSUFFICIENT or earlier.observed_at != as_instant(micros[-1]):
        return None
    return earlier if earlier.observed == values[-1] else None


def anomaly_result(
    name: str,
    metric: str,
    kind: str,
    micros: np.ndarray,
    values: np.ndarray,
    settings: DetectorSettings,
    scorer: Scorer,
    now: datetime,
    run_id: str,
) -> CheckResult:
    base = CheckResult(checked_at=now, table_name=name, check=f"anomaly:{metric}", status=OK)
    if not len(values):
        return replace(
            base,
            status=INSUFFICIENT,
            reason=f"no {metric} points in the last {settings.history_window.days} days",
            history_size=0,
            run_id=run_id,
        )
    verdict = scorer(micros, values, settings, kind=kind)[-1]
    status = ANOMALY if verdict.is_anomaly else OK
    reason = f"{metric}: {verdict.reason}"
    below = verdict.score < 0  # beyond the band, or a lasting change below the expected value
    if status == ANOMALY and metric in ONLY_HIGH_IS_BAD and below:
        status, reason = OK, f"{reason}; lower is better for {metric}, so no incident"
    if verdict.expected_low is None:
        status = INSUFFICIENT
    return replace(
        base,
        status=status,
        observed=verdict.observed,
        observed_at=as_instant(micros[-1]),
        expected_low=verdict.expected_low,
        expected_high=verdict.expected_high,
        score=verdict.score,
        method=verdict.method,
        reason=reason,
        history_size=verdict.history_size,
        run_id=run_id,
    )
