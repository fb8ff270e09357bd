"""How well the detector's defaults generalize: figures on the development series, leave-one-out
choices of the sensitivity, and seeded synthetic series (`bench/anomaly_synthetic.py`).

    python bench/anomaly_eval.py [--data ../shared/data/nab] [--seeds 0 1] [--jobs 2]

For every series and every sensitivity of the grid, the series is replayed by the backtest
(`checks.backtest.verdicts_of`, the code `pipewarden backtest` runs) and scored as the shared
script scores it (window recall; false alarms per 1,000 points). It prints:

- the defaults' figures on the development set and on the synthetic set, per group and overall;
- leave-one-series-out and leave-one-group-out: for each series (group) left out, the grid point
  that does best on all the others is chosen, by the objective below, and judged on the one left
  out; the figures add up the left-out judgements. A default that generalizes is chosen the same
  way whichever series is left out, and its left-out figures stay near the pooled ones;
- the sweep: recall and false alarms of every grid point, pooled.

Objective (higher is better): window recall - 0.05 x false alarms per 1,000 points, that is one
more false alarm per 1,000 points costs as much as missing 5% of the windows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from anomaly_synthetic import generate  # noqa: E402

from pipewarden.checks.monitoring.anomaly.detector import THRESHOLDS, DetectorSettings  # noqa: E402
from pipewarden.checks.monitoring.anomaly.windows import (  # noqa: E402
    load_windows,
    parse_timestamp,
    score_windows,
)
from pipewarden.checks.monitoring.backtest import infer_kind, read_series, verdicts_of  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "nab"
GRID = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0)
FALSE_ALARM_COST = 0.05


@dataclass(frozen=True)
class Tally:
    """Windows found, windows, false alarms and scored points of one or more series."""

    found: int = 0
    windows: int = 0
    alarms: int = 0
    points: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.found + other.found,
            self.windows + other.windows,
            self.alarms + other.alarms,
            self.points + other.points,
        )

    @property
    def recall(self) -> float:
        return self.found / self.windows if self.windows else float("nan")

    @property
    def rate(self) -> float:
        return 1000 * self.alarms / self.points if self.points else float("nan")

    @property
    def objective(self) -> float:
        recall = self.recall if self.windows else 1.0
        return recall - FALSE_ALARM_COST * self.rate

    def __str__(self) -> str:
        return (
            f"recall {self.recall:.3f} ({self.found}/{self.windows})  "
            f"false alarms {self.rate:.2f} per 1,000 ({self.alarms} in {self.points})"
        )


def total(tallies: Iterable[Tally]) -> Tally:
    out = Tally()
    for t in tallies:
        out = out + t
    return out


def score_file(
    job: tuple[str, str, list, tuple[float, ...], dict[str, str]],
) -> tuple[str, dict[float, Tally]]:
    """One series replayed at every threshold of the grid."""
    key, path, windows, grid, overrides = job
    texts, _, values = read_series(Path(path))
    stamps = [parse_timestamp(t) for t in texts]
    kind = infer_kind(values)
    out = {}
    for threshold in grid:
        settings = DetectorSettings.model_validate({**overrides, "threshold": threshold})
        verdicts = verdicts_of(stamps, values, settings, kind)
        flags = [v is not None and v.is_anomaly for v in verdicts]
        s = score_windows(stamps, flags, windows)
        out[threshold] = Tally(s.windows_found, s.windows, s.false_alarms, s.scored_points)
    return key, out


def score_set(
    folder: Path, grid: Sequence[float], jobs: int, overrides: dict[str, str]
) -> dict[str, dict[float, Tally]]:
    labels = load_windows(folder / "windows.json")
    work = [
        (key, str(folder / key), spans, tuple(grid), overrides)
        for key, spans in sorted(labels.items())
        if (folder / key).exists()
    ]
    with ProcessPoolExecutor(jobs) as pool:
        return dict(pool.map(score_file, work))


def group_of(key: str) -> str:
    return key.split("/")[0]


def held_out(results: dict[str, dict[float, Tally]], fold_of: dict[str, str]) -> tuple[Tally, list]:
    """Each fold judged at the grid point best on the other folds."""
    judged, chosen = Tally(), []
    for fold in sorted(set(fold_of.values())):
        train = [k for k in results if fold_of[k] != fold]
        test = [k for k in results if fold_of[k] == fold]
        best = max(
            results[train[0]],
            key=lambda thr: (total(results[k][thr] for k in train).objective, -abs(thr - 3.5)),
        )
        judged = judged + total(results[k][best] for k in test)
        chosen.append((fold, best))
    return judged, chosen


def report(name: str, results: dict[str, dict[float, Tally]], default: float) -> None:
    print(f"\n== {name}: {len(results)} series")
    groups = defaultdict(list)
    for key in results:
        groups[group_of(key)].append(key)
    for group, keys in sorted(groups.items()):
        print(f"  defaults  {group:22s} {total(results[k][default] for k in keys)}")
    print(f"  defaults  {'all':22s} {total(r[default] for r in results.values())}")
    series, chosen_series = held_out(results, {k: k for k in results})
    groups_out, chosen_groups = held_out(results, {k: group_of(k) for k in results})
    print(f"  leave-one-series-out     {series}")
    print(f"    thresholds chosen: {_counts(t for _, t in chosen_series)}")
    print(f"  leave-one-group-out      {groups_out}")
    print(f"    thresholds chosen: {', '.join(f'{g} -> {t:g}' for g, t in chosen_groups)}")
    print("  sweep (threshold: pooled figures)")
    for thr in next(iter(results.values())):
        print(f"    {thr:4.1f}  {total(r[thr] for r in results.values())}")


def _counts(values: Iterable[float]) -> str:
    seen: dict[float, int] = defaultdict(int)
    for v in values:
        seen[v] += 1
    return ", ".join(f"{t:g} x{n}" for t, n in sorted(seen.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEV)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--grid", type=float, nargs="*", default=list(GRID))
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="A detector setting."
    )
    parser.add_argument("--only", choices=["dev", "synthetic"])
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    default = DetectorSettings.model_validate(overrides).effective_threshold
    grid = sorted(set(args.grid) | {default})
    print(f"default threshold {default:g} (sensitivities {THRESHOLDS})")
    if overrides:
        print(f"settings {overrides}")
    if (args.data / "windows.json").exists() and args.only != "synthetic":
        found = score_set(args.data, grid, args.jobs, overrides)
        report(f"development set {args.data}", found, default)
    if args.only == "dev":
        return
    with tempfile.TemporaryDirectory() as tmp:
        synthetic: dict[str, dict[float, Tally]] = {}
        for seed in args.seeds:
            folder = Path(tmp) / f"seed{seed}"
            generate(folder, seed)
            found = score_set(folder, grid, args.jobs, overrides)
            synthetic.update({f"{k.split('/')[0]}/seed{seed}-{k}": v for k, v in found.items()})
        report(f"synthetic, seeds {args.seeds}", synthetic, default)


if __name__ == "__main__":
    main()
