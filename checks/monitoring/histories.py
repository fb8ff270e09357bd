"""What scoring a share of a check run's tables reads: one scan for every history they need.

`ScoringRead` names the tables and the window and holds what was read before (their detector
settings, their last check results); it is picklable, so a spawned helper is sent the part for
its tables (`share`) and reads their histories itself, while this process reads its own: the
histories are a quarter of a check run's CPU. It reads on its first use (`__call__`), once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property

from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings
from pipewarden.checks.monitoring.anomaly.resets import Reset, reset_instants, since_reset
from pipewarden.checks.monitoring.scoring import ANOMALY_METRICS, Scorer, TableScoring
from pipewarden.checks.monitoring.volume import VOLUME, volume_judge
from pipewarden.db.engines import Timeouts, cached_engine
from pipewarden.records.metrics import CheckResult, EpochSeries, metric_arrays


@dataclass(frozen=True)
class ScoringRead:
    """The tables' scoring (`TableScoring`), read from the warehouse on first use."""

    url: str
    timeouts: Timeouts
    since: datetime  # the same for every share: each table's read is the one a whole run makes
    now: datetime
    run_id: str
    settings: DetectorSettings
    own: Mapping[str, DetectorSettings]  # each table's settings, in the run's order
    last_checks: Mapping[str, Sequence[CheckResult]]  # each table's results of the last run
    scorer: Scorer

    def __call__(self, name: str) -> list[CheckResult]:
        return self.scoring(name)

    def share(self, names: Sequence[str]) -> ScoringRead:
        """The read of `names` alone."""
        return replace(
            self,
            own={n: self.own[n] for n in names},
            last_checks={n: self.last_checks[n] for n in names},
        )

    @cached_property
    def scoring(self) -> TableScoring:
        """Reads the histories of the tables (one scan) and what their volume checks need."""
        names = list(self.own)
        engine = cached_engine(self.url, self.timeouts)
        wanted = [metric for metric, _ in ANOMALY_METRICS] + [VOLUME]
        with engine.connect() as conn:
            read = metric_arrays(conn, names, wanted, since=self.since, until=self.now, labels={})
            resets = reset_instants(conn, names, wanted)
        series = {m: _since_resets(read.get(m, {}), resets.get(m)) for m in wanted}
        last_checks = {n: _after_resets(self.last_checks[n], resets, n) for n in names}
        volume = volume_judge(
            engine,
            names,
            self.now,
            self.run_id,
            self.settings,
            self.scorer,
            series[VOLUME],
            last_checks,
            self.own,
        )
        anomaly_series = {metric: series[metric] for metric, _ in ANOMALY_METRICS}
        return TableScoring(
            anomaly_series, last_checks, self.own, volume, self.scorer, self.now, self.run_id
        )


def _since_resets(
    read: dict[str, EpochSeries], resets: dict[str, Reset] | None
) -> dict[str, EpochSeries]:
    """Each table's history from its newest baseline reset on (`anomaly.resets`)."""
    if not resets:
        return read
    return {
        name: since_reset(s, resets[name].since_micros if name in resets else None)
        for name, s in read.items()
    }


def _after_resets(
    results: Sequence[CheckResult], resets: dict[str, dict[str, Reset]], name: str
) -> list[CheckResult]:
    """The table's last check results, less those of a metric reset after they were made: a
    verdict from the old baseline is no verdict to reuse."""
    kept = []
    for r in results:
        metric = r.check.removeprefix("anomaly:")
        reset = resets.get(metric, {}).get(name)
        if r.check.startswith("anomaly:") and reset and reset.recorded_at >= r.checked_at:
            continue
        kept.append(r)
    return kept
