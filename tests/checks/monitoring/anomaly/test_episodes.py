"""Episodes: runs of anomalies, and when a long one becomes the new normal."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from pipewarden.checks.monitoring.anomaly.baseline import SortedWindow, quantile_of_sorted
from pipewarden.checks.monitoring.anomaly.detector import Verdict
from pipewarden.checks.monitoring.anomaly.episodes import EpisodeTracker, group_episodes


def verdict(hour: int, anomalous: bool, score: float = 0.0) -> Verdict:
    return Verdict(
        timestamp=datetime(2024, 1, 1) + timedelta(hours=hour),
        observed=1.0,
        expected=1.0,
        expected_low=0.0,
        expected_high=2.0,
        score=score,
        is_anomaly=anomalous,
        method="test",
        reason="test",
        history_size=10,
    )


def test_consecutive_anomalies_are_one_episode() -> None:
    flags = [False, True, True, False, True, False, False, True, True, True]
    scores = [0, 5, -9, 0, 4, 0, 0, 6, 7, 5]
    episodes = group_episodes([verdict(h, f, s) for h, (f, s) in enumerate(zip(flags, scores))])
    assert [(i.points, i.peak_score) for i in episodes] == [(2, -9), (1, 4), (3, 7)]
    assert episodes[-1].end == datetime(2024, 1, 1, 9)


def test_tracker_accepts_a_long_episode_once() -> None:
    tracker = EpisodeTracker(quiet_points=1, new_normal_after=3 * 3600)
    accepted = [tracker.observe(h, h * 3600.0, anomalous=h != 2) for h in range(6)]
    assert accepted == [False, False, False, True, False, False]  # one quiet point is tolerated
    assert tracker.members == [0, 1, 3, 4, 5]  # an accepted incident keeps its members


def test_tracker_closes_after_quiet_points() -> None:
    tracker = EpisodeTracker(quiet_points=1, new_normal_after=3 * 3600)
    for h, anomalous in enumerate([True, False, False, True, True, True]):
        assert not tracker.observe(h, h * 3600.0, anomalous)
    assert tracker.members == [3, 4, 5]


def test_sorted_window_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    window = SortedWindow(horizon=50.0, max_size=40)
    values = rng.normal(size=200)
    for t, v in enumerate(values):
        window.add(float(t), float(v))
        window.expire(float(t))
        recent = values[max(0, t - 39, t - 50) : t + 1]
        assert len(window) == len(recent)
        for q in (0.01, 0.25, 0.5, 0.99):
            assert window.quantile(q) == pytest.approx(np.quantile(recent, q))
    assert quantile_of_sorted([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
