"""The fast replay (calm stretches at once) against the point-by-point reference loop.

Both must reach the same verdicts: the same flags, the same bands and scores up to float
rounding (Poisson rates are summed in another order). The series are built to visit every path
of the fast replay: season changes at each detection, lone anomalies, incidents that become the
new normal, recurring outages, missing values, excluded windows, tiny counts.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from pipewarden.checks.monitoring.anomaly.detector import (
    DetectorSettings,
    Kind,
    _excluded_mask,
    _replay,
    _seconds,
    detect_series,
)

START = datetime(2024, 1, 1)


def hourly(hours: int) -> list[datetime]:
    return [START + timedelta(hours=h) for h in range(hours)]


def seasonal(days: int, seed: int, kind: Kind, weekly: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    shape = 300 * (1 + 0.5 * np.sin(2 * math.pi * (hours % 24 - 6) / 24))
    if weekly:
        shape = shape * np.where((hours // 24) % 7 >= 5, 0.6, 1.0)
    if kind == "count":
        return rng.negative_binomial(20, 20 / (20 + shape)).astype(float)
    return shape * rng.lognormal(0.0, 0.08, len(hours))


def with_events(values: np.ndarray, seed: int) -> np.ndarray:
    """A level shift that stays, a recurring three-hour outage, lone spikes and dips."""
    rng = np.random.default_rng(seed)
    out = values.copy()
    n = len(out)
    out[n // 2 :] *= 1.8
    for start in range(6 * 24 + 2, n - 5, 5 * 24):
        out[start : start + 3] = 0.0
    spikes = rng.choice(np.arange(4 * 24, n), size=8, replace=False)
    out[spikes] *= rng.choice([0.2, 4.0], size=8)
    return out


def series_cases() -> list[tuple[str, np.ndarray, Kind, DetectorSettings, list[tuple[int, int]]]]:
    cases: list[tuple[str, np.ndarray, Kind, DetectorSettings, list[tuple[int, int]]]] = []
    for kind in ("gauge", "count"):
        base = seasonal(45, 1 if kind == "gauge" else 2, kind)  # type: ignore[arg-type]
        cases.append((f"{kind} seasons", base, kind, DetectorSettings(), []))  # type: ignore[arg-type]
        events = with_events(base, 3)
        cases.append((f"{kind} events", events, kind, DetectorSettings(), []))  # type: ignore[arg-type]
        gaps = events.copy()
        gaps[300:310] = np.nan
        gaps[700] = np.nan
        cases.append((f"{kind} gaps, excluded", gaps, kind, DetectorSettings(), [(400, 470)]))  # type: ignore[arg-type]
    flat = np.random.default_rng(4).normal(100, 3, 40 * 24)
    flat[20 * 24 :] += 40  # a shift on a series without season
    cases.append(("gauge no season", flat, "gauge", DetectorSettings(), []))
    tiny = np.random.default_rng(5).poisson(0.4, 40 * 24).astype(float)
    tiny[500:503] = 9
    cases.append(("tiny counts", tiny, "count", DetectorSettings(), []))
    declared = DetectorSettings(season="hour_of_day", sensitivity="high", quiet_points=0)
    cases.append(
        ("declared season", with_events(seasonal(30, 6, "gauge", False), 7), "gauge", declared, [])
    )
    early = DetectorSettings(sustained_points=6)
    for kind in ("gauge", "count"):
        events = with_events(seasonal(30, 10, kind), 11)  # type: ignore[arg-type]
        events[300:330] *= 1.4  # a lasting change, mostly inside the band
        cases.append((f"{kind} sustained", events, kind, early, []))  # type: ignore[arg-type]
    loose = DetectorSettings(rel_floor=1.5, abs_floor=5.0, level_points=10)
    cases.append(("wide floors", with_events(seasonal(30, 8, "gauge"), 9), "gauge", loose, []))
    return cases


CASES = series_cases()


def both(
    values: np.ndarray,
    kind: Kind,
    settings: DetectorSettings,
    excluded: list[tuple[int, int]],
    tail: int | None,
):  # type: ignore[no-untyped-def]
    stamps = hourly(len(values))
    seconds = _seconds(stamps)
    mask = _excluded_mask(seconds, [(stamps[a], stamps[b]) for a, b in excluded])
    fast = _replay(seconds, values, settings, kind, mask, tail=tail)
    reference = _replay(seconds, values, settings, kind, mask, tail=tail, pointwise=True)
    return fast, reference


def assert_same_point(fast, reference, i: int) -> None:  # type: ignore[no-untyped-def]
    for field in ("expected", "low", "high", "score", "rate", "variance"):
        a, b = getattr(fast, field)[i], getattr(reference, field)[i]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), (
            field,
            i,
        )
    assert fast.history[i] == reference.history[i], i
    assert fast.method[i] == reference.method[i], i


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_verdict_equals_the_pointwise_replay(case) -> None:  # type: ignore[no-untyped-def]
    name, values, kind, settings, excluded = case
    fast, reference = both(values, kind, settings, excluded, tail=None)
    if "seasons" not in name:
        assert reference.anomaly.any(), "the series should visit the paths after an anomaly"
    np.testing.assert_array_equal(fast.anomaly, reference.anomaly)
    for i in range(len(values)):
        assert_same_point(fast, reference, i)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_newest_verdict_and_every_flag_equal_the_pointwise_replay(case) -> None:  # type: ignore[no-untyped-def]
    """With one verdict wanted, the flags of earlier points still decide the baseline."""
    _, values, kind, settings, excluded = case
    for end in range(len(values) - 24 * 9, len(values) + 1, 24 * 3 + 5):
        fast, reference = both(values[:end], kind, settings, excluded, tail=1)
        np.testing.assert_array_equal(fast.anomaly, reference.anomaly)
        assert_same_point(fast, reference, end - 1)


def test_detect_series_is_the_fast_replay() -> None:
    """The backtest's entry point runs the same replay as the checks."""
    values = with_events(seasonal(30, 10, "count"), 11)
    stamps = hourly(len(values))
    verdicts = detect_series(stamps, values, kind="count")
    fast, _ = both(values, "count", DetectorSettings(), [], tail=None)
    assert [v.is_anomaly for v in verdicts] == fast.anomaly.tolist()


def test_long_series_are_gathered_in_row_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bucket windows of a long series are gathered a block of rows at a time, to the same end."""
    import pipewarden.checks.monitoring.anomaly.expectations as expectations

    monkeypatch.setattr(expectations, "ROWS_AT_ONCE", 100)
    monkeypatch.setattr(expectations, "CHUNK_CELLS", 1000)
    _, values, kind, settings, excluded = CASES[1]
    fast, reference = both(values, kind, settings, excluded, tail=None)
    np.testing.assert_array_equal(fast.anomaly, reference.anomaly)
    for i in range(len(values)):
        assert_same_point(fast, reference, i)
