"""`pipewarden backtest`: replay series through the anomaly detector and score it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli.common import console, fail

if TYPE_CHECKING:
    from rich.table import Table

    from pipewarden.checks.monitoring.backtest import BacktestSummary, SweepPoint


def backtest(
    path: Annotated[
        Path,
        typer.Argument(help="A timestamp,value CSV file or a folder of them.", metavar="PATH"),
    ],
    output: Annotated[
        Path, typer.Option("--output", metavar="FOLDER", help="Folder for the verdict CSVs.")
    ],
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            metavar="FILE",
            help="windows.json: also print window recall and false alarms.",
        ),
    ] = None,
    sensitivity: Annotated[
        str | None,
        typer.Option(
            "--sensitivity",
            metavar="LEVEL",
            help="low, medium (default), high, or a threshold in robust standard deviations.",
        ),
    ] = None,
    min_change: Annotated[
        float | None,
        typer.Option(
            "--min-change",
            metavar="NUMBER",
            min=0,
            help="Smallest absolute change from the expected value that may fire.",
        ),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="With --labels: also print recall and false alarms at a range of thresholds.",
        ),
    ] = False,
) -> None:
    """Replay each series point by point, each point decided from earlier points only."""
    from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, sensitivity_settings
    from pipewarden.checks.monitoring.backtest import (
        SWEEP_THRESHOLDS,
        run_backtest,
        sweep_thresholds,
    )

    if sweep and labels is None:
        raise fail("--sweep needs --labels: recall and false alarms are counted against them")
    try:
        chosen = sensitivity_settings(sensitivity)
        if min_change is not None:
            chosen["abs_floor"] = min_change
        settings = DetectorSettings(**chosen)
        summary = run_backtest(path, output, labels, settings)
        curve = []
        if labels is not None and sweep:
            grid = sorted({*SWEEP_THRESHOLDS, settings.effective_threshold})
            curve = sweep_thresholds(path, labels, grid, settings)
    except (OSError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(summary_table(summary))
    for result in summary.series:
        if result.notes:
            console.print(f"{result.path}: {result.notes}", highlight=False)
    console.print(summary_line(summary), highlight=False)
    if curve:
        console.print(sweep_table(curve, settings.effective_threshold))


def sweep_table(curve: list[SweepPoint], current: float) -> Table:
    """Recall and false alarms per threshold; the one this run used is marked."""
    from rich.table import Table

    from pipewarden.checks.monitoring.anomaly.detector import THRESHOLDS

    names = {threshold: name for name, threshold in THRESHOLDS.items()}
    table = Table(title="sweep: lower thresholds fire more")
    for column in ("threshold", "sensitivity", "windows", "window_recall", "false alarms"):
        table.add_column(column, justify="left" if column == "sensitivity" else "right")
    table.add_column("per_1000_points", justify="right")
    for point in curve:
        recall, rate = point.window_recall, point.false_alarms_per_1000
        table.add_row(
            f"{point.threshold:g}" + (" *" if point.threshold == current else ""),
            names.get(point.threshold, ""),
            f"{point.windows_found}/{point.windows}",
            "n/a" if recall is None else f"{recall:.3f}",
            str(point.false_alarms),
            "n/a" if rate is None else f"{rate:.3f}",
        )
    return table


def summary_table(summary: BacktestSummary) -> Table:
    """One row per series: points, anomalies, incidents and, with labels, windows found."""
    from rich.table import Table

    table = Table(title="backtest", show_lines=False)
    for column in ("series", "kind", "points", "anomalies", "incidents", "method"):
        table.add_column(column, justify="right" if column in {"points", "anomalies"} else "left")
    if summary.labelled:
        table.add_column("windows", justify="right")
        table.add_column("false alarms", justify="right")
    for r in summary.series:
        row = [r.path, r.kind, str(r.points), str(r.anomalies), str(r.incidents), r.method]
        if summary.labelled:
            found = "-" if r.windows is None else f"{r.windows_found}/{r.windows}"
            row += [found, "-" if r.false_alarms is None else str(r.false_alarms)]
        table.add_row(*row)
    return table


def summary_line(summary: BacktestSummary) -> str:
    """The totals, in the words of the shared evaluation script when labelled."""
    line = (
        f"series {len(summary.series)}  points {summary.points}  "
        f"anomalies {summary.anomalies}  incidents {summary.incidents}"
    )
    if summary.labelled:
        recall = summary.window_recall
        rate = summary.false_alarms_per_1000
        line += (
            f"\nwindows {summary.windows_found}/{summary.windows}  window_recall "
            f"{'n/a' if recall is None else f'{recall:.3f}'}  false_alarms "
            f"{summary.false_alarms}  per_1000_points {'n/a' if rate is None else f'{rate:.3f}'}"
        )
    return line
