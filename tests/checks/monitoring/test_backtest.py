"""The backtest file contract, label scoring, and the command."""

from __future__ import annotations

import csv
import importlib.util
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from pipewarden.checks.monitoring.anomaly.windows import score_windows
from pipewarden.checks.monitoring.backtest import OUTPUT_COLUMNS, infer_kind, run_backtest
from pipewarden.cli.backtest import backtest

SHARED_SCORER = Path(__file__).resolve().parents[4] / "shared" / "eval" / "score_anomalies.py"


def write_series(path: Path, values: list[float], start: datetime = datetime(2024, 3, 1)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            stamp = start + timedelta(hours=i)
            writer.writerow([stamp.strftime("%Y-%m-%d %H:%M:%S"), "" if np.isnan(v) else v])


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def series_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    gauge = list(100 + rng.normal(0, 2, 24 * 12))
    gauge[250] = 200.0
    gauge[100] = float("nan")
    write_series(data / "shop" / "orders" / "latency.csv", gauge)
    counts = [float(v) for v in rng.poisson(20, 24 * 12)]
    counts[260] = 120.0
    write_series(data / "rows.csv", counts)
    return data


def test_outputs_mirror_inputs_row_for_row(series_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_backtest(series_folder, out)
    assert sorted(r.path for r in summary.series) == ["rows.csv", "shop/orders/latency.csv"]
    for relative in ("rows.csv", "shop/orders/latency.csv"):
        source = read_rows(series_folder / relative)
        written_path = out / relative
        with open(written_path, newline="") as handle:
            assert next(csv.reader(handle)) == OUTPUT_COLUMNS
        written = read_rows(written_path)
        assert len(written) == len(source)
        assert [r["timestamp"] for r in written] == [r["timestamp"] for r in source]
        assert [r["value"] for r in written] == [r["value"] for r in source]
        assert {r["is_anomaly"] for r in written} <= {"0", "1"}
        assert written[0]["expected_low"] == ""  # still learning
    latency = read_rows(out / "shop/orders/latency.csv")
    assert latency[250]["is_anomaly"] == "1"
    assert float(latency[250]["expected_high"]) < 200
    assert latency[100]["value"] == "" and latency[100]["is_anomaly"] == "0"
    assert read_rows(out / "rows.csv")[260]["is_anomaly"] == "1"
    kinds = {r.path: r.kind for r in summary.series}
    assert kinds == {"rows.csv": "count", "shop/orders/latency.csv": "gauge"}
    assert not summary.labelled and summary.window_recall is None


def test_single_file_and_labels(series_folder: Path, tmp_path: Path) -> None:
    labels = tmp_path / "windows.json"
    hit = (datetime(2024, 3, 1) + timedelta(hours=248), datetime(2024, 3, 1) + timedelta(hours=252))
    missed = (
        datetime(2024, 3, 1) + timedelta(hours=200),
        datetime(2024, 3, 1) + timedelta(hours=201),
    )
    labels.write_text(
        json.dumps(
            {
                "shop/orders/latency.csv": [
                    [str(hit[0]), str(hit[1])],
                    [str(missed[0]), str(missed[1])],
                ]
            }
        )
    )
    summary = run_backtest(
        series_folder / "shop" / "orders" / "latency.csv", tmp_path / "o", labels
    )
    assert (tmp_path / "o" / "latency.csv").exists()
    assert summary.labelled
    assert (summary.windows, summary.windows_found) == (2, 1)
    assert summary.window_recall == 0.5
    assert summary.false_alarms_per_1000 is not None


@pytest.mark.skipif(not SHARED_SCORER.exists(), reason="shared evaluation script not present")
def test_window_scoring_matches_the_shared_script() -> None:
    spec = importlib.util.spec_from_file_location("score_anomalies", SHARED_SCORER)
    assert spec is not None and spec.loader is not None
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    rng = np.random.default_rng(5)
    stamps = [datetime(2024, 1, 1) + timedelta(minutes=5 * i) for i in range(2000)]
    flags = list(rng.random(2000) < 0.05)
    windows = [(stamps[100], stamps[180]), (stamps[600], stamps[700]), (stamps[1500], stamps[1510])]
    text = [[str(a), str(b)] for a, b in windows]
    expected = shared.score(stamps, flags, text)
    ours = score_windows(stamps, flags, windows)
    assert (ours.windows_found, ours.windows, ours.false_alarms, ours.scored_points) == expected


def test_kind_inference() -> None:
    assert infer_kind([0.0, 3.0, 12.0, float("nan")]) == "count"
    assert infer_kind([0.5, 3.0]) == "gauge"
    assert infer_kind([-1.0, 3.0]) == "gauge"


def test_command_prints_the_summary(series_folder: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(backtest)
    app.command("noop")(lambda: None)  # a second command keeps typer in sub-command mode
    labels = tmp_path / "windows.json"
    labels.write_text(json.dumps({"rows.csv": []}))
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            str(series_folder),
            "--output",
            str(tmp_path / "cli"),
            "--labels",
            str(labels),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "window_recall" in result.output and "per_1000_points" in result.output
    assert (tmp_path / "cli" / "shop" / "orders" / "latency.csv").exists()
    missing = CliRunner().invoke(app, ["backtest", str(tmp_path / "nope"), "--output", "x"])
    assert missing.exit_code == 2


def test_rows_out_of_order_repeated_and_with_gaps_are_read_sorted_and_merged(
    tmp_path: Path,
) -> None:
    """A real export: a DST hour twice, a few rows swapped, a gap. Each row gets the verdict of
    its instant in the sorted, merged series, in the order of the file, and the run says what it
    did."""
    rng = np.random.default_rng(3)
    start = datetime(2024, 10, 20)
    tidy_rows = [(start + timedelta(hours=h), 100 + rng.normal(0, 2)) for h in range(24 * 14)]
    spike = tidy_rows[300][0]
    tidy_rows[300] = (spike, 180.0)
    del tidy_rows[200:206]  # a six-hour gap
    messy = list(tidy_rows)
    repeated_hour = tidy_rows[250][0]
    messy.insert(251, (repeated_hour, tidy_rows[250][1] + 4.0))  # the clock set back
    messy[120], messy[121] = messy[121], messy[120]
    messy[310], messy[311] = messy[311], messy[310]

    def write(path: Path, rows: list[tuple[datetime, float]]) -> None:
        lines = [f"{t:%Y-%m-%d %H:%M:%S},{v}" for t, v in rows]
        path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")

    write(tmp_path / "messy.csv", messy)
    merged = [(t, v + 2.0 if t == repeated_hour else v) for t, v in tidy_rows]
    write(tmp_path / "clean.csv", merged)
    messy_run = run_backtest(tmp_path / "messy.csv", tmp_path / "out")
    clean_run = run_backtest(tmp_path / "clean.csv", tmp_path / "out")
    written = read_rows(tmp_path / "out" / "messy.csv")
    assert [r["timestamp"] for r in written] == [f"{t:%Y-%m-%d %H:%M:%S}" for t, _ in messy]
    by_time = {r["timestamp"]: r for r in read_rows(tmp_path / "out" / "clean.csv")}
    for row in written:
        clean = by_time[row["timestamp"]]
        assert (row["is_anomaly"], row["score"]) == (clean["is_anomaly"], clean["score"])
    assert by_time[f"{spike:%Y-%m-%d %H:%M:%S}"]["is_anomaly"] == "1"
    (notes,) = [r.notes for r in messy_run.series]
    assert "sorted 2 rows out of order" in notes
    assert "merged 1 repeated timestamps" in notes
    assert "1 gaps (longest 7 h)" in notes
    assert clean_run.series[0].notes == "1 gaps (longest 7 h)"


def test_timestamps_in_iso_and_with_offsets(tmp_path: Path) -> None:
    source = tmp_path / "iso.csv"
    rows = [f"2024-01-01T{h:02d}:00:00+01:00,{10 + h % 3}" for h in range(24)]
    source.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    run_backtest(source, tmp_path / "out")
    written = read_rows(tmp_path / "out" / "iso.csv")
    assert [r["timestamp"] for r in written] == [r.split(",")[0] for r in rows]


def test_sweep_prints_recall_and_false_alarms_per_threshold(
    series_folder: Path, tmp_path: Path
) -> None:
    app = typer.Typer()
    app.command()(backtest)
    app.command("noop")(lambda: None)
    start = datetime(2024, 3, 1)
    labels = tmp_path / "windows.json"
    around = [str(start + timedelta(hours=248)), str(start + timedelta(hours=262))]
    labels.write_text(json.dumps({"shop/orders/latency.csv": [around], "rows.csv": [around]}))
    args = ["backtest", str(series_folder), "--output", str(tmp_path / "o"), "--labels"]
    result = CliRunner().invoke(app, [*args, str(labels), "--sweep", "--sensitivity", "high"])
    assert result.exit_code == 0, result.output
    rows = [line.split("│") for line in result.output.splitlines() if line.count("│") == 7]
    table = {r[1].strip(): r for r in rows if r[1].strip()[:1].isdigit()}
    assert "3 *" in table and table["3 *"][2].strip() == "high"  # the one this run used
    assert {"2.5", "3.5", "6"} <= set(table)
    alarms = [int(table[key][5]) for key in ("2.5", "3 *", "3.5", "4", "4.5", "5", "6")]
    assert alarms == sorted(alarms, reverse=True)  # lower thresholds fire more
    unlabelled = CliRunner().invoke(app, [*args[:-1], "--sweep"])
    assert unlabelled.exit_code == 2 and "--labels" in unlabelled.output
    wrong = CliRunner().invoke(app, [*args, str(labels), "--sensitivity", "loud"])
    assert wrong.exit_code == 2 and "sensitivity" in wrong.output


def test_a_lower_sensitivity_and_a_minimum_change_flag_less(
    series_folder: Path, tmp_path: Path
) -> None:
    from pipewarden.checks.monitoring.anomaly.detector import DetectorSettings, sensitivity_settings

    flagged = {}
    for name, chosen in {
        "high": sensitivity_settings("high"),
        "low": sensitivity_settings("low"),
        "coarse": {**sensitivity_settings("high"), "abs_floor": 1e6},
    }.items():
        summary = run_backtest(series_folder, tmp_path / name, settings=DetectorSettings(**chosen))
        flagged[name] = summary.anomalies
    assert flagged["high"] > flagged["low"] and flagged["coarse"] == 0
