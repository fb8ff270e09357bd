"""Histories read as exported: sorted, repeats merged by their median, gaps counted."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from pipewarden.checks.monitoring.anomaly.detector import detect_series, score_latest, score_tail
from pipewarden.checks.monitoring.anomaly.history import tidy


def test_tidy_sorts_merges_repeats_by_median_and_maps_rows_to_points() -> None:
    instants = np.array([10, 30, 20, 30, 30, 40, 100])
    values = np.array([1.0, 5.0, 2.0, 7.0, 100.0, 4.0, 6.0])
    history = tidy(instants, values)
    assert history.instants.tolist() == [10, 20, 30, 40, 100]
    assert history.values.tolist() == [1.0, 2.0, 7.0, 4.0, 6.0]  # median of 5, 7 and 100
    assert history.point_of_row.tolist() == [0, 2, 1, 2, 2, 3, 4]
    assert (history.out_of_order, history.repeated) == (1, 2)
    assert (history.gaps, history.longest_gap) == (1, 60)
    assert "sorted 1 rows" in history.describe() and "merged 2" in history.describe()


def test_tidy_leaves_an_ordered_history_alone() -> None:
    history = tidy(np.arange(0, 50, 5), np.arange(10.0))
    assert not history.changed and history.describe() == ""
    assert history.values.tolist() == list(np.arange(10.0))


def _hourly(seed: int, hours: int = 24 * 10) -> tuple[list[datetime], np.ndarray]:
    rng = np.random.default_rng(seed)
    stamps = [datetime(2024, 3, 1) + timedelta(hours=h) for h in range(hours)]
    values = 50 + 10 * np.sin(np.arange(hours) * 2 * np.pi / 24) + rng.normal(0, 1, hours)
    values[-1] += 40
    return stamps, values


def test_detector_entry_points_accept_unsorted_histories() -> None:
    stamps, values = _hourly(1)
    order = np.random.default_rng(2).permutation(len(values))
    shuffled = [stamps[i] for i in order]
    ordered = detect_series(stamps, values)
    unordered = detect_series(shuffled, values[order])
    assert [v.is_anomaly for v in unordered] == [ordered[i].is_anomaly for i in order]
    assert [v.timestamp for v in unordered] == shuffled
    latest = score_latest(shuffled, values[order])
    assert latest.timestamp == stamps[-1] and latest.is_anomaly
    micros = np.array([int(t.timestamp() * 1e6) for t in stamps])
    doubled = score_tail(
        np.concatenate([micros, micros[-3:]]), np.concatenate([values, values[-3:]])
    )
    assert doubled[-1].is_anomaly and doubled[-1].observed == values[-1]
