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

from pipewarden.checks.anomaly.windows import score_windows
from pipewarden.checks.backtest import OUTPUT_COLUMNS, infer_kind, run_backtest
from pipewarden.cli.backtest import backtest

SHARED_SCORER = Path(__file__).resolve().parents[3] / "shared" / "eval" / "score_anomalies.py"


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


def test_unordered_series_is_an_error_naming_the_file(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("timestamp,value\n2024-01-02 00:00:00,1\n2024-01-01 00:00:00,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*ascending"):
        run_backtest(source, tmp_path / "out")


def test_timestamps_in_iso_and_with_offsets(tmp_path: Path) -> None:
    source = tmp_path / "iso.csv"
    rows = [f"2024-01-01T{h:02d}:00:00+01:00,{10 + h % 3}" for h in range(24)]
    source.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    run_backtest(source, tmp_path / "out")
    written = read_rows(tmp_path / "out" / "iso.csv")
    assert [r["timestamp"] for r in written] == [r.split(",")[0] for r in rows]
