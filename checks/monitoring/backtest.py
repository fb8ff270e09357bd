"""Backtest: replay labelled or unlabelled series through the detector, point by point.

Each input CSV (`timestamp,value`) gets an output CSV at the same relative path with
`timestamp,value,expected_low,expected_high,score,is_anomaly`, one row per input row, in order.
Every point is decided from earlier points only, with the detector and defaults that monitor
metrics. Labels (windows.json) are used for scoring only, never by the detector.

Rows may be out of order, share timestamps and leave gaps, as real exports do: the detector
reads them sorted, with repeated timestamps merged into one point (the median of their values,
`checks.monitoring.anomaly.history`); every row of a merged point gets its verdict, and each series'
result says what was done (`SeriesResult.notes`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from pipewarden.checks.monitoring.anomaly.detector import (
    DetectorSettings,
    Kind,
    Verdict,
    detect_series,
)
from pipewarden.checks.monitoring.anomaly.episodes import group_episodes
from pipewarden.checks.monitoring.anomaly.history import tidy
from pipewarden.checks.monitoring.anomaly.windows import (
    load_windows,
    parse_timestamp,
    score_windows,
    windows_for,
)

OUTPUT_COLUMNS = ["timestamp", "value", "expected_low", "expected_high", "score", "is_anomaly"]


class SeriesResult(BaseModel):
    """One replayed series: what was flagged and, with labels, how that scores."""

    path: str
    kind: Kind
    points: int
    anomalies: int
    incidents: int
    method: str
    windows: int | None = None
    windows_found: int | None = None
    false_alarms: int | None = None
    scored_points: int | None = None
    notes: str = ""  # rows sorted, repeats merged, gaps: how the history was read


class BacktestSummary(BaseModel):
    """All series of a backtest, with the figures of the shared evaluation when labelled."""

    series: list[SeriesResult]
    points: int
    anomalies: int
    incidents: int
    labelled: bool
    windows: int = 0
    windows_found: int = 0
    false_alarms: int = 0
    scored_points: int = 0

    @property
    def window_recall(self) -> float | None:
        return self.windows_found / self.windows if self.windows else None

    @property
    def false_alarms_per_1000(self) -> float | None:
        return 1000 * self.false_alarms / self.scored_points if self.scored_points else None


def find_series(path: Path) -> Iterator[tuple[Path, str]]:
    """CSV files under `path` (or `path` itself) with their paths relative to it."""
    path = Path(path)
    if path.is_file():
        yield path, path.name
        return
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    for file in sorted(path.rglob("*.csv")):
        if file.is_file():
            yield file, file.relative_to(path).as_posix()


def read_series(file: Path) -> tuple[list[str], list[str], list[float]]:
    """Timestamp and value texts, and values (NaN where missing), of a timestamp,value CSV."""
    with open(file, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"timestamp", "value"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{file}: missing column(s) {', '.join(sorted(missing))}")
        texts, cells, values = [], [], []
        for row in reader:
            texts.append(row["timestamp"])
            cell = (row["value"] or "").strip()
            cells.append(cell)
            values.append(float(cell) if cell else math.nan)
    return texts, cells, values


def infer_kind(values: list[float]) -> Kind:
    """Non-negative whole numbers are counts (row counts, events); anything else is a gauge."""
    finite = [v for v in values if not math.isnan(v)]
    if finite and all(v >= 0 and v == int(v) for v in finite):
        return "count"
    return "gauge"


def backtest_series(
    texts: list[str], values: list[float], settings: DetectorSettings, kind: Kind
) -> list[Verdict | None]:
    """Verdicts per row; None for rows without a value (they never enter a baseline)."""
    return verdicts_of([parse_timestamp(t) for t in texts], values, settings, kind)


def verdicts_of(
    stamps: list[datetime], values: list[float], settings: DetectorSettings, kind: Kind
) -> list[Verdict | None]:
    """`backtest_series` of parsed timestamps."""
    present = [i for i, v in enumerate(values) if not math.isnan(v)]
    verdicts = detect_series(
        [stamps[i] for i in present], [values[i] for i in present], settings, kind
    )
    out: list[Verdict | None] = [None] * len(values)
    for i, verdict in zip(present, verdicts, strict=True):
        out[i] = verdict
    return out


def history_notes(stamps: list[datetime], values: list[float]) -> str:
    """What reading the rows with a value took: sorting, merging repeats, gaps (or "")."""
    present = [i for i, v in enumerate(values) if not math.isnan(v)]
    seconds = np.array([_epoch_seconds(stamps[i]) for i in present], dtype=np.int64)
    return tidy(seconds, np.array([values[i] for i in present])).describe()


def _epoch_seconds(stamp: datetime) -> int:
    return int((stamp.replace(tzinfo=None) - _EPOCH).total_seconds())


_EPOCH = datetime(1970, 1, 1)


def write_verdicts(
    file: Path, texts: list[str], cells: list[str], verdicts: list[Verdict | None]
) -> None:
    """The output contract: one row per input row, in order, timestamp and value as read."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT_COLUMNS)
        for text, cell, verdict in zip(texts, cells, verdicts, strict=True):
            if verdict is None or verdict.expected_low is None:
                band = ["", ""]
            else:
                band = [_number(verdict.expected_low), _number(verdict.expected_high)]
            score = 0.0 if verdict is None else verdict.score
            flag = verdict is not None and verdict.is_anomaly
            writer.writerow(
                [
                    text,
                    cell,
                    *band,
                    f"{score:.4f}",
                    int(flag),
                ]
            )


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def run_backtest(
    path: Path,
    output: Path,
    labels: Path | None = None,
    settings: DetectorSettings | None = None,
) -> BacktestSummary:
    """Replay every series under `path`, write verdict CSVs under `output`, score with labels."""
    settings = settings or DetectorSettings()
    windows = load_windows(labels) if labels is not None else None
    results: list[SeriesResult] = []
    for file, relative in find_series(path):
        texts, cells, values = read_series(file)
        kind = infer_kind(values)
        try:
            stamps = [parse_timestamp(t) for t in texts]
        except ValueError as error:
            raise ValueError(f"{file}: {error}") from error
        verdicts = verdicts_of(stamps, values, settings, kind)
        write_verdicts(Path(output) / relative, texts, cells, verdicts)
        present = sorted((v for v in verdicts if v is not None), key=lambda v: v.timestamp)
        result = SeriesResult(
            path=relative,
            kind=kind,
            points=len(values),
            anomalies=sum(v.is_anomaly for v in present),
            incidents=len(group_episodes(present)),
            method=present[-1].method if present else "",
            notes=history_notes(stamps, values),
        )
        spans = windows_for(windows, relative) if windows is not None else None
        if spans is not None:
            flags = [v is not None and v.is_anomaly for v in verdicts]
            score = score_windows(stamps, flags, spans)
            result = result.model_copy(update=score.model_dump())
        results.append(result)
    return _summarise(results, labelled=windows is not None)


#: Thresholds `sweep` replays by default: from very sensitive to very quiet.
SWEEP_THRESHOLDS = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0)


class SweepPoint(BaseModel):
    """A labelled backtest's figures at one threshold."""

    threshold: float
    windows: int
    windows_found: int
    false_alarms: int
    scored_points: int

    @property
    def window_recall(self) -> float | None:
        return self.windows_found / self.windows if self.windows else None

    @property
    def false_alarms_per_1000(self) -> float | None:
        return 1000 * self.false_alarms / self.scored_points if self.scored_points else None


def sweep_thresholds(
    path: Path,
    labels: Path,
    thresholds: Sequence[float] = SWEEP_THRESHOLDS,
    settings: DetectorSettings | None = None,
) -> list[SweepPoint]:
    """Window recall and false alarms of every labelled series under `path` at each threshold
    (the other settings as given): the curve a user picks a sensitivity from."""
    settings = settings or DetectorSettings()
    windows = load_windows(labels)
    totals = {t: [0, 0, 0, 0] for t in thresholds}
    for file, relative in find_series(path):
        spans = windows_for(windows, relative)
        if spans is None:
            continue
        texts, _, values = read_series(file)
        try:
            stamps = [parse_timestamp(t) for t in texts]
        except ValueError as error:
            raise ValueError(f"{file}: {error}") from error
        kind = infer_kind(values)
        for threshold in thresholds:
            at = settings.model_copy(update={"threshold": threshold})
            verdicts = verdicts_of(stamps, values, at, kind)
            score = score_windows(stamps, [v is not None and v.is_anomaly for v in verdicts], spans)
            found = (score.windows, score.windows_found, score.false_alarms, score.scored_points)
            totals[threshold] = [a + b for a, b in zip(totals[threshold], found, strict=True)]
    return [
        SweepPoint(
            threshold=t,
            windows=totals[t][0],
            windows_found=totals[t][1],
            false_alarms=totals[t][2],
            scored_points=totals[t][3],
        )
        for t in thresholds
    ]


def _summarise(results: list[SeriesResult], labelled: bool) -> BacktestSummary:
    scored = [r for r in results if r.windows is not None]
    return BacktestSummary(
        series=results,
        points=sum(r.points for r in results),
        anomalies=sum(r.anomalies for r in results),
        incidents=sum(r.incidents for r in results),
        labelled=labelled,
        windows=sum(r.windows or 0 for r in scored),
        windows_found=sum(r.windows_found or 0 for r in scored),
        false_alarms=sum(r.false_alarms or 0 for r in scored),
        scored_points=sum(r.scored_points or 0 for r in scored),
    )


__all__ = [
    "BacktestSummary",
    "SeriesResult",
    "SweepPoint",
    "backtest_series",
    "find_series",
    "infer_kind",
    "read_series",
    "run_backtest",
    "sweep_thresholds",
    "verdicts_of",
    "write_verdicts",
]
