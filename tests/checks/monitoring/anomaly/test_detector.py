"""The point-by-point detector on synthetic series with known seasons and anomalies."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipewarden.checks.monitoring.anomaly.detector import (
    DetectorSettings,
    Verdict,
    detect_series,
    score_latest,
    score_tail,
)
from pipewarden.checks.monitoring.anomaly.episodes import group_episodes

START = datetime(2024, 1, 1)  # a Monday


def hourly(days: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(days * 24)]


def daily(days: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(days=d) for d in range(days)]


def hour_of_day_series(days: int, seed: int = 0, noise: float = 4.0) -> np.ndarray:
    """Busy days, quiet nights: 100 +- 50 over the day, Gaussian noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24) % 24
    return 100 + 50 * np.sin(2 * math.pi * (hours - 6) / 24) + rng.normal(0, noise, days * 24)


def index_of(stamps: list[datetime], when: datetime) -> int:
    return stamps.index(when)


def flagged(verdicts: list[Verdict]) -> list[int]:
    return [i for i, v in enumerate(verdicts) if v.is_anomaly]


def test_hour_of_day_anomaly_is_found_from_the_season_alone() -> None:
    """A daytime value at 3 a.m. is anomalous though it is normal for the series as a whole."""
    stamps = hourly(28)
    values = hour_of_day_series(28)
    spike = index_of(stamps, START + timedelta(days=20, hours=3))  # night: about 65
    values[spike] = 140.0  # an ordinary afternoon value, no outlier for the series as a whole
    assert values[spike] < values.max()
    verdicts = detect_series(stamps, values)
    high = verdicts[spike].expected_high
    assert verdicts[spike].is_anomaly and high is not None and high < 140
    assert "period 1d" in verdicts[spike].method
    # One incident: the spike, held for keep_firing_for (an hour: the next point) by default.
    assert flagged(verdicts) == [spike, spike + 1]
    assert "keeps firing" in verdicts[spike + 1].reason
    alone = detect_series(stamps, values, DetectorSettings(keep_firing_for=timedelta(0)))
    assert flagged(alone) == [spike]


def test_silent_until_minimum_history_then_explains_every_verdict() -> None:
    stamps = hourly(10)
    values = hour_of_day_series(10)
    verdicts = detect_series(stamps, values)
    first = verdicts[0]
    assert first.expected_low is None and not first.is_anomaly and first.score == 0
    assert "learning" in first.reason
    speaking = [v for v in verdicts if v.expected_low is not None]
    assert speaking, "the detector should speak after three days of hourly points"
    v = speaking[-1]
    assert v.expected_low is not None and v.expected_high is not None and v.expected is not None
    assert v.expected_low <= v.expected <= v.expected_high
    assert v.history_size >= DetectorSettings().min_history
    assert v.method and "band" in v.reason


def test_day_of_week_declared_season() -> None:
    """Weekends are quiet; a weekend as busy as a weekday is anomalous."""
    stamps = daily(140)
    rng = np.random.default_rng(1)
    values = np.array([1000.0 if t.weekday() < 5 else 200.0 for t in stamps])
    values += rng.normal(0, 20, len(values))
    busy_saturday = next(i for i in range(120, 140) if stamps[i].weekday() == 5)
    values[busy_saturday] = 1000.0
    settings = DetectorSettings(season="day_of_week")
    verdicts = detect_series(stamps, values, settings)
    assert verdicts[busy_saturday].is_anomaly
    assert flagged(verdicts) == [busy_saturday]
    # Found from the data too, once three weeks exist.
    auto = detect_series(stamps, values)
    assert "period 7d" in auto[-1].method
    assert auto[busy_saturday].is_anomaly


def test_month_end_spike_is_normal_and_its_absence_is_not() -> None:
    stamps = daily(400)
    rng = np.random.default_rng(2)
    values = 100 + rng.normal(0, 3, len(stamps))
    month_end = [i for i, t in enumerate(stamps) if (t + timedelta(days=1)).day == 1]
    values[month_end] *= 4  # billing runs on the last day, whatever the month's length
    missed = month_end[-2]
    values[missed] = 100.0
    verdicts = detect_series(stamps, values, DetectorSettings(season="day_of_month"))
    assert verdicts[missed].is_anomaly
    assert verdicts[missed].score < 0
    assert flagged(verdicts) == [missed]


def test_level_shift_is_one_incident_then_the_new_normal() -> None:
    stamps = hourly(30)
    rng = np.random.default_rng(3)
    values = 100 + rng.normal(0, 3, len(stamps))
    shift = 15 * 24
    values[shift:] += 60
    verdicts = detect_series(stamps, values, DetectorSettings(season="none"))
    assert verdicts[shift].is_anomaly
    incidents = group_episodes(verdicts)
    assert len(incidents) == 1
    assert incidents[0].start == stamps[shift]
    # Accepted after new_normal_after (two days): the last week is quiet and centred on 160.
    assert not any(v.is_anomaly for v in verdicts[-7 * 24 :])
    assert verdicts[-1].expected == pytest.approx(160, abs=5)


def test_gradual_drift_is_followed_without_alarms() -> None:
    stamps = hourly(60)
    rng = np.random.default_rng(4)
    trend = np.linspace(100, 160, len(stamps))  # +1 per day against noise of 3
    values = trend + rng.normal(0, 3, len(stamps))
    verdicts = detect_series(stamps, values)
    assert len(flagged(verdicts)) <= 3
    assert verdicts[-1].expected == pytest.approx(160, abs=6)


def test_recurring_incident_is_caught_every_time() -> None:
    """Flagged points stay out of the baseline, so the band does not widen to let it pass."""
    days = 40
    stamps = hourly(days)
    values = hour_of_day_series(days, seed=5)
    starts = [index_of(stamps, START + timedelta(days=d, hours=2)) for d in (12, 16, 20, 24, 28)]
    for s in starts:
        values[s : s + 3] = 0.0  # a loader that silently writes nothing for three hours
    verdicts = detect_series(stamps, values)
    for s in starts:
        assert all(v.is_anomaly for v in verdicts[s : s + 3]), f"missed the incident at {s}"
    lows = [verdicts[s].expected_low or 0.0 for s in starts]
    assert all(low > 10 for low in lows)
    assert lows[-1] >= lows[0] - 2  # the band has not widened towards zero
    assert len(group_episodes(verdicts)) == len(starts)


def test_tiny_counts_never_score_absurdly() -> None:
    stamps = hourly(60)
    rng = np.random.default_rng(6)
    values = rng.integers(0, 6, len(stamps)).astype(float)  # 0..5 rows per hour
    verdicts = detect_series(stamps, values, kind="count")
    scores = [abs(v.score) for v in verdicts]
    assert max(scores) < 4
    assert not flagged(verdicts)


def test_count_of_a_usually_empty_table() -> None:
    """Three rows where there are usually none is noise; five hundred is an incident."""
    stamps = hourly(30)
    values = np.zeros(len(stamps))
    values[::50] = 1
    values[-30] = 3
    values[-1] = 500
    verdicts = detect_series(stamps, values, kind="count")
    assert not verdicts[-30].is_anomaly and abs(verdicts[-30].score) < 4
    assert verdicts[-1].is_anomaly
    assert flagged(verdicts) == [len(values) - 1]


def test_floors_silence_small_changes() -> None:
    stamps = hourly(20)
    values = np.full(len(stamps), 1000.0)
    values[-1] = 1003.0  # statistically infinite, practically nothing
    default = detect_series(stamps, values)
    assert not default[-1].is_anomaly  # the 1% relative floor
    strict = DetectorSettings(rel_floor=0.0)
    assert detect_series(stamps, values, strict)[-1].is_anomaly
    absolute = DetectorSettings(rel_floor=0.0, abs_floor=5.0)
    assert not detect_series(stamps, values, absolute)[-1].is_anomaly


def test_sensitivity_orders_the_number_of_flags() -> None:
    stamps = hourly(40)
    rng = np.random.default_rng(7)
    values = 100 + rng.standard_t(3, len(stamps)) * 5
    counts = {
        level: len(flagged(detect_series(stamps, values, DetectorSettings(sensitivity=level))))
        for level in ("low", "medium", "high")
    }
    assert counts["low"] <= counts["medium"] <= counts["high"]
    assert counts["high"] > counts["low"]


def test_excluded_window_stays_out_of_the_baseline() -> None:
    """A three-day maintenance window would become the new normal if it were learned."""
    stamps = hourly(30)
    rng = np.random.default_rng(8)
    values = 100 + rng.normal(0, 3, len(stamps))
    start, end = 12 * 24, 15 * 24
    values[start:end] = 10.0
    window = [(stamps[start], stamps[end - 1])]
    settings = DetectorSettings(season="none")
    with_window = detect_series(stamps, values, settings, excluded=window)
    assert not any(v.is_anomaly for v in with_window[end:])
    assert with_window[end + 1].expected == pytest.approx(100, abs=5)
    without = detect_series(stamps, values, settings)
    assert without[end].is_anomaly  # it had taken the outage as the new normal


def test_score_latest_is_the_last_verdict_of_the_replay() -> None:
    stamps = hourly(20)
    values = hour_of_day_series(20, seed=9)
    values[-1] = 400.0
    latest = score_latest(stamps, values, DetectorSettings())
    assert latest == detect_series(stamps, values)[-1]
    assert latest.is_anomaly


def test_score_latest_replays_only_its_history_window() -> None:
    stamps = hourly(60)
    values = hour_of_day_series(60, seed=10)
    settings = DetectorSettings(history_window=timedelta(days=21))
    start = stamps.index(stamps[-1] - timedelta(days=21))
    assert (
        score_latest(stamps, values, settings)
        == detect_series(stamps[start:], values[start:], settings)[-1]
    )


@pytest.mark.parametrize("kind", ["gauge", "count"])
def test_score_tail_gives_the_last_verdicts_of_one_replay_of_the_window(kind: str) -> None:
    """The check of a cursor hour and the hour in progress: one replay, its last two verdicts."""
    stamps = hourly(40)
    values = eventful_series(40, 23, kind)
    values[-2] = 4 * values[-2] + 50  # the complete hour bursts; it stays out of the newest's past
    settings = DetectorSettings(history_window=timedelta(days=21))
    micros = np.array([int(t.replace(tzinfo=UTC).timestamp()) * 1_000_000 for t in stamps])
    tail = score_tail(micros, values, settings, kind=kind, points=2)  # type: ignore[arg-type]
    start = stamps.index(stamps[-1] - timedelta(days=21))
    window = detect_series(stamps[start:], values[start:], settings, kind=kind)  # type: ignore[arg-type]
    assert [v.model_dump(exclude={"timestamp"}) for v in tail] == [
        v.model_dump(exclude={"timestamp"}) for v in window[-2:]
    ]
    assert [v.timestamp for v in tail] == [t.replace(tzinfo=UTC) for t in stamps[-2:]]
    assert tail[0].is_anomaly
    # The burst stays out of the newest's past: the newest is inside its band, held only by
    # keep_firing_for (an hour after the burst).
    assert tail[1].expected_low is not None and tail[1].expected_high is not None
    assert tail[1].expected_low <= tail[1].observed <= tail[1].expected_high
    assert "keeps firing" in tail[1].reason


def test_score_tail_replays_at_least_the_points_it_is_asked_for() -> None:
    stamps = hourly(3)
    micros = np.array([int(t.replace(tzinfo=UTC).timestamp()) * 1_000_000 for t in stamps])
    settings = DetectorSettings(history_window=timedelta(minutes=30))
    tail = score_tail(micros, hour_of_day_series(3, seed=5), settings, points=2)
    assert [v.timestamp for v in tail] == [t.replace(tzinfo=UTC) for t in stamps[-2:]]


def test_aware_timestamps_are_read_as_utc() -> None:
    naive = hourly(10)
    aware = [t.replace(tzinfo=UTC) for t in naive]
    values = hour_of_day_series(10, seed=11)
    a = score_latest(aware, values)
    b = score_latest(naive, values)
    assert a.score == b.score and a.expected_high == b.expected_high


def test_missing_values_are_neither_judged_nor_learned() -> None:
    stamps = hourly(20)
    values = hour_of_day_series(20, seed=12)
    values[200:210] = np.nan
    verdicts = detect_series(stamps, values)
    assert all(v.reason == "no value" and not v.is_anomaly for v in verdicts[200:210])
    clean = detect_series(stamps[:200] + stamps[210:], np.concatenate([values[:200], values[210:]]))
    assert [v.score for v in verdicts[210:]] == [v.score for v in clean[200:]]


def eventful_series(days: int, seed: int, kind: str) -> np.ndarray:
    """A daily season with a weekly dip, a level shift that stays, and a recurring outage."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    level = np.where(hours >= (days // 2) * 24, 1.6, 1.0)  # a shift that becomes the new normal
    weekly = np.where((hours // 24) % 7 >= 5, 0.7, 1.0)
    shape = 200 * level * weekly * (1 + 0.5 * np.sin(2 * math.pi * (hours % 24 - 6) / 24))
    if kind == "count":
        values = rng.poisson(shape).astype(float)
    else:
        values = shape * (1 + rng.normal(0, 0.04, len(hours)))
    for day in range(6, days, 5):  # three quiet hours every fifth night
        values[day * 24 + 2 : day * 24 + 5] = 0.0
    return values


@pytest.mark.parametrize(("kind", "seed"), [("gauge", 21), ("count", 22)])
def test_score_latest_equals_the_replay_of_its_window_through_shifts_and_incidents(
    kind: str, seed: int
) -> None:
    days = 36
    stamps = hourly(days)
    values = eventful_series(days, seed, kind)
    settings = DetectorSettings(history_window=timedelta(days=21))
    whole = detect_series(stamps, values, settings, kind=kind)  # type: ignore[arg-type]
    assert group_episodes(whole), "the series should have incidents to remember"
    ends = [e for d in range(22, days) for e in (d * 24 + 3, d * 24 + 13)]
    agree = 0
    for end in ends:
        start = stamps.index(stamps[end] - timedelta(days=21))
        window = detect_series(
            stamps[start : end + 1],
            values[start : end + 1],
            settings,
            kind=kind,  # type: ignore[arg-type]
        )[-1]
        latest = score_latest(stamps[: end + 1], values[: end + 1], settings, kind=kind)  # type: ignore[arg-type]
        assert latest == window
        agree += latest.is_anomaly == whole[end].is_anomaly
    # The window forgets what came before it; the verdicts still mostly match the full replay.
    assert agree >= 0.9 * len(ends)


def test_hour_of_week_season_knows_a_weekly_job_by_its_hour() -> None:
    """A job runs every Monday at 09:00: then it is normal, at any other hour (or missing) not."""
    stamps = hourly(56)
    rng = np.random.default_rng(21)
    values = 100 + rng.normal(0, 3, len(stamps))
    job = [i for i, t in enumerate(stamps) if t.weekday() == 0 and t.hour == 9]
    values[job] = 400.0
    skipped_job = job[-2]
    values[skipped_job] = 100.0
    wrong_day = index_of(stamps, stamps[job[-3]] + timedelta(days=1))  # Tuesday 09:00
    values[wrong_day] = 400.0
    verdicts = detect_series(stamps, values, DetectorSettings(season="hour_of_week"))
    assert "hour of week" in verdicts[-1].method
    assert verdicts[skipped_job].is_anomaly and verdicts[skipped_job].score < 0
    assert verdicts[wrong_day].is_anomaly
    assert not any(verdicts[i].is_anomaly for i in job if i not in (skipped_job,))
    flat = detect_series(stamps, values, DetectorSettings(season="none"))
    assert sum(flat[i].is_anomaly for i in job) > 3  # without the season, every job alarms


def test_a_lasting_shift_inside_the_band_fires_after_sustained_points() -> None:
    """A shift of 3 sigma stays inside a 3.5 sigma band point by point, but six points in a row
    beyond 0.6 x 3.5 = 2.1 sigma do not happen by chance."""
    stamps = hourly(30)
    rng = np.random.default_rng(22)
    values = 100 + rng.normal(0, 2, len(stamps))
    shift = 20 * 24
    values[shift : shift + 12] = 106.0  # 3 sigma, no noise: every point counts
    settings = DetectorSettings(season="none", sustained_points=6, sustained_ratio=0.6)
    verdicts = detect_series(stamps, values, settings)
    fired = [i for i in flagged(verdicts) if shift <= i < shift + 12]
    assert fired and fired[0] == shift + settings.sustained_points - 1
    assert "lasting change" in verdicts[fired[0]].reason
    assert all(abs(verdicts[i].observed - 100) < 8 for i in fired)  # inside the point band
    alone = detect_series(stamps, values, settings.model_copy(update={"sustained_points": 1}))
    assert not any(alone[i].is_anomaly for i in range(shift, shift + 12))
    latest = score_tail(
        np.array([int(t.timestamp() * 1e6) for t in stamps[: fired[0] + 1]]),
        values[: fired[0] + 1],
        settings,
    )
    assert latest[-1].is_anomaly
    # As the checks score (no keep_firing_for): one replay of the newest point, then one with
    # the points before it, since it lies beyond the sustained score.
    checks = settings.model_copy(update={"keep_firing_for": timedelta(0)})
    newest = score_tail(
        np.array([int(t.timestamp() * 1e6) for t in stamps[: fired[0] + 1]]),
        values[: fired[0] + 1],
        checks,
    )
    assert newest[-1].is_anomaly and "lasting change" in newest[-1].reason


def test_a_flickering_incident_keeps_firing_as_one_alert() -> None:
    """An outage that comes back into the band for a point now and then is one run of flags
    (keep_firing_for), decided from the past only; after it the series is quiet again."""
    stamps = hourly(30)
    rng = np.random.default_rng(23)
    values = 100 + rng.normal(0, 2, len(stamps))
    start = 20 * 24
    for i in range(start, start + 8):
        values[i] = 100.0 if i % 3 == 2 else 40.0  # every third point looks normal
    held = detect_series(stamps, values, DetectorSettings(season="none"))
    plain = detect_series(
        stamps, values, DetectorSettings(season="none", keep_firing_for=timedelta(0))
    )
    assert len(group_episodes(plain)) > 1
    (incident,) = group_episodes(held)
    assert incident.start == stamps[start]
    assert not any(v.is_anomaly for v in held[start + 10 :])
    # The same verdicts whatever comes later: nothing is decided from the future.
    prefix = detect_series(
        stamps[: start + 5], values[: start + 5], DetectorSettings(season="none")
    )
    assert [v.is_anomaly for v in prefix] == [v.is_anomaly for v in held[: start + 5]]
