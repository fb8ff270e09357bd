"""Point-by-point anomaly detection for metric histories, scored from the past only.

Algorithm, for each point in time order:

1. Season. Declared (hour of day, day of week, day of month) or found in the data
   (`season.detect_season`: periodogram candidates, kept only if they predict better than a flat
   median). Detection runs when three days of history exist (a daily pattern can show), at three
   weeks (a weekly one can), then whenever the history has doubled; after the first, it reads
   only the points the baseline holds. Nothing is flagged before the first detection.
2. Centre. The seasonal shape is the median of the same bucket (and its neighbours, for detected
   periods) over the last `lookback_cycles` cycles; the level is the median of the last
   `level_window` of residuals from that shape, so a slow drift is followed. Without a season the
   centre is the median of the last `level_window`. Counts are compared on a log scale (`log1p`),
   where bursts are multiplicative.
3. Spread. Residuals (value minus centre) of recent accepted points form a pool. The band is
   one-sided: above the centre `threshold` times (q99 - median) / z(0.99) of the pool, below it
   the mirror image; never narrower than the pool's or the bucket's own interquartile spread
   (some hours, month-ends, pattern edges are noisier than others). Tail quantiles rather than
   the MAD because metrics are heavy-tailed: the band must know how large normal bursts get.
   With few residuals the quantile moves inwards so that five points always lie beyond it.
4. Verdict. A point is anomalous when it leaves the band and the change exceeds the absolute and
   relative floors. For counts the point must also be improbable under a Poisson / negative
   binomial model of the bucket (`counts`), so tables with a handful of rows stay quiet.
5. Memory. Anomalous points, and points inside `excluded` windows (labelled incidents,
   maintenance), never enter the baselines: a recurring incident is caught every time. An incident
   (anomalies with at most `quiet_points` normal points between them) that lasts
   `new_normal_after` is a level change: the baseline restarts from the incident's points.

`detect_series` replays a whole series; `score_latest` replays the trailing `history_window` of
a metric and returns the newest verdict, with the same code and defaults.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from checks.anomaly.baseline import Expectation, SeriesBaseline
from checks.anomaly.counts import MAX_SCORE, count_band, count_score, count_scores
from checks.anomaly.incidents import IncidentTracker
from checks.anomaly.season import NO_SEASON, Season, SeasonName, declared_season, detect_season

Kind = Literal["gauge", "count"]
THRESHOLDS = {"low": 4.5, "medium": 3.5, "high": 3.0}
# A bucket needs this many values before its median means anything.
MIN_BUCKET = 3
IQR_TO_SIGMA = 1.349
THREE_WEEKS = 21 * 86_400.0
# Points a tail quantile must have beyond it to be trusted.
TAIL_POINTS = 5


class DetectorSettings(BaseModel):
    """What a user can tune; the defaults are what the backtest measures."""

    model_config = ConfigDict(frozen=True)

    sensitivity: Literal["low", "medium", "high"] = "medium"
    threshold: float | None = Field(
        default=None, gt=0, description="Overrides the sensitivity's score."
    )
    season: SeasonName = "auto"
    min_history: int = Field(default=48, ge=3, description="Points before the detector speaks.")
    abs_floor: float = Field(
        default=0.0, ge=0, description="Smallest absolute change worth an alert."
    )
    rel_floor: float = Field(
        default=0.01, ge=0, description="Smallest change relative to the expected."
    )
    lookback_cycles: int = Field(default=8, ge=1, description="Season cycles kept in each bucket.")
    level_window: timedelta = Field(
        default=timedelta(days=2), description="Recent span whose median sets the level."
    )
    level_points: int = Field(default=24, ge=3, description="Fewest points in the level window.")
    pool_points: int = Field(default=2000, ge=10, description="Recent residuals that set the band.")
    tail_quantile: float = Field(
        default=0.99, gt=0.5, lt=1.0, description="Residual quantile that sizes the band."
    )
    quiet_points: int = Field(default=2, ge=0, description="Normal points that end an incident.")
    new_normal_after: timedelta = Field(
        default=timedelta(days=2), description="An incident this long is a level change."
    )
    history_window: timedelta = Field(
        default=timedelta(days=28), description="What score_latest replays."
    )

    @property
    def effective_threshold(self) -> float:
        return self.threshold if self.threshold is not None else THRESHOLDS[self.sensitivity]


class Verdict(BaseModel):
    """One point's verdict, with everything an alert needs to say why."""

    model_config = ConfigDict(frozen=True)

    timestamp: datetime
    observed: float
    expected: float | None
    expected_low: float | None
    expected_high: float | None
    score: float
    is_anomaly: bool
    method: str
    reason: str
    history_size: int


class _Replay:
    """What a replay found, one entry per point: lists while it runs, arrays when finished."""

    def __init__(self, n: int) -> None:
        nan = math.nan
        self.expected: Any = [nan] * n
        self.low: Any = [nan] * n
        self.high: Any = [nan] * n
        self.score: Any = [0.0] * n
        self.anomaly: Any = [False] * n
        self.history: Any = [0] * n
        self.rate: Any = [nan] * n
        self.variance: Any = [nan] * n
        self.method = [""] * n

    def finish(self) -> None:
        for name in ("expected", "low", "high", "score", "rate", "variance"):
            setattr(self, name, np.array(getattr(self, name), dtype=np.float64))
        self.anomaly = np.array(self.anomaly, dtype=bool)
        self.history = np.array(self.history, dtype=np.int64)


def detect_series(
    timestamps: Sequence[datetime],
    values: Sequence[float] | np.ndarray,
    settings: DetectorSettings | None = None,
    kind: Kind = "gauge",
    excluded: Sequence[tuple[datetime, datetime]] = (),
) -> list[Verdict]:
    """Verdicts for every point, each decided from the points before it."""
    settings = settings or DetectorSettings()
    seconds = _seconds(timestamps)
    x = np.asarray(values, dtype=np.float64)
    replay = _replay(seconds, x, settings, kind, _excluded_mask(seconds, excluded))
    return [_verdict(timestamps[i], x[i], replay, i, settings) for i in range(len(x))]


def score_latest(
    timestamps: Sequence[datetime],
    values: Sequence[float] | np.ndarray,
    settings: DetectorSettings | None = None,
    kind: Kind = "gauge",
    excluded: Sequence[tuple[datetime, datetime]] = (),
) -> Verdict:
    """Verdict for the newest point, replaying the trailing `history_window` of its history."""
    settings = settings or DetectorSettings()
    if len(values) == 0:
        raise ValueError("score_latest needs at least one point")
    # Only the trailing history_window can reach the newest verdict: convert and replay that.
    newest = timestamps[-1]
    horizon = newest - settings.history_window
    start = bisect_left(timestamps, horizon)  # aware datetimes compare as instants
    seconds = _seconds(timestamps[start:])
    x = np.asarray(values, dtype=np.float64)[start:]
    replay = _replay(seconds, x, settings, kind, _excluded_mask(seconds, excluded), tail=1)
    return _verdict(timestamps[-1], x[-1], replay, len(x) - 1, settings)


def _seconds(timestamps: Sequence[datetime]) -> np.ndarray:
    """Seconds since the epoch; aware timestamps are converted to UTC, naive ones read as UTC."""
    seconds = np.fromiter(
        ((t - (_EPOCH_UTC if t.tzinfo else _EPOCH)) // _SECOND for t in timestamps),
        dtype=np.int64,
        count=len(timestamps),
    )
    if len(seconds) > 1 and np.any(np.diff(seconds) < 0):
        raise ValueError("timestamps must be in ascending order")
    return seconds


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _excluded_mask(seconds: np.ndarray, windows: Sequence[tuple[datetime, datetime]]) -> np.ndarray:
    mask = np.zeros(len(seconds), dtype=bool)
    for start, end in windows:
        lo, hi = _seconds([start, end])
        mask |= (seconds >= lo) & (seconds <= hi)
    return mask


def _replay(
    seconds: np.ndarray,
    x: np.ndarray,
    settings: DetectorSettings,
    kind: Kind,
    excluded: np.ndarray,
    tail: int | None = None,
) -> _Replay:
    """The detection loop (see the module docstring); `tail` verdicts are needed, None: all."""
    n = len(x)
    out = _Replay(n)
    count = kind == "count"
    y = np.log1p(np.maximum(x, 0.0)) if count else x
    step = float(np.median(np.diff(seconds))) if n > 1 else 1.0
    step = step if step > 0 else 1.0
    thr = settings.effective_threshold
    level_points = max(settings.level_points, int(settings.level_window.total_seconds() / step))
    declared = declared_season(settings.season)
    season = declared or NO_SEASON
    # Auto: look for a season once three days exist (a daily pattern can show), again at three
    # weeks (a weekly one can), then whenever the history has doubled.
    next_detection = _first_detection_span(step) if declared is None else math.inf
    ready = declared is not None
    included = np.zeros(n, dtype=bool)
    times = seconds.astype(np.float64).tolist()
    ys, xs = y.tolist(), x.tolist()
    buckets = season.buckets(seconds).tolist()
    model = _new_model(season, settings, step, level_points)
    band = _Band(settings, count)
    incident = IncidentTracker(settings.quiet_points, settings.new_normal_after.total_seconds())
    method = _method(season, kind)
    quick_until = 0 if tail is None else n - tail
    first_time = times[0] if n else 0.0
    min_history = settings.min_history
    skipped = excluded.tolist()
    for i in range(n):
        t, yi, xi = times[i], ys[i], xs[i]
        if not math.isfinite(xi):
            out.method[i] = "no value"
            continue  # a missing value is neither judged nor learned
        if t - first_time >= next_detection and i >= min_history:
            next_detection = max(2 * next_detection, THREE_WEEKS)
            ready = True
            # Nothing is flagged before the first detection, so it sees every point; later ones
            # see the baseline's points only, so an incident cannot pose as a season.
            found = detect_season(
                seconds[included],
                y[included],
                step,
                level_points,
                season,
                settings.lookback_cycles,
            )
            if found != season:
                season, method = found, _method(found, kind)
                buckets = season.buckets(seconds).tolist()
                model = _new_model(season, settings, step, level_points)
                for j in np.nonzero(included)[0].tolist():
                    bj = buckets[j]
                    model.learn(times[j], bj, ys[j], xs[j], model.expect(times[j], bj))
        bucket = buckets[i]
        seen = model.expect(t, bucket)
        pool = model.pool.sorted
        out.method[i] = method
        out.history[i] = len(pool)
        anomalous = False
        judged = ready and seen.size >= MIN_BUCKET and len(pool) >= min_history
        # Of a point whose verdict is not returned, only whether it is anomalous matters.
        quick = judged and i < quick_until and band.surely_normal(xi, seen, pool)
        if judged and not quick:
            anomalous = band.judge(i, yi, xi, seen, pool, out)
        if skipped[i]:
            continue  # labelled incidents and maintenance: judged, never learned
        # A normal point outside any incident changes nothing in the tracker.
        if (anomalous or incident.start is not None) and incident.observe(i, t, anomalous):
            # A change that outlasts new_normal_after is the new normal: restart from it.
            model.restart()
            for j in incident.members:
                model.learn(times[j], buckets[j], ys[j], xs[j], model.expect(times[j], buckets[j]))
                included[j] = True
            continue
        if anomalous and not incident.accepted:
            continue
        model.learn(t, bucket, yi, xi, seen)
        included[i] = True
    out.finish()
    if count:
        _apply_count_model(x, out, thr, 0 if tail is None else max(0, n - tail))
    return out


class _Band:
    """The expected band around a point and the verdict on it (steps 3 and 4)."""

    def __init__(self, settings: DetectorSettings, count: bool) -> None:
        self.thr = settings.effective_threshold
        self.count = count
        self.abs_floor, self.rel_floor = settings.abs_floor, settings.rel_floor
        self.q_hi, self.q_lo = settings.tail_quantile, 1.0 - settings.tail_quantile
        self.z_tail = _normal_quantile(settings.tail_quantile)

    def surely_normal(self, xi: float, seen: Expectation, ranked: list[float]) -> bool:
        """True when `judge` cannot flag the point: it lies inside the narrowest band `judge`
        could draw (the bucket's own spread as the only floor), found from the pool's median
        alone. Rounding is monotone, so this band is never wider than judge's."""
        mid = _at(ranked, 0.5 * (len(ranked) - 1))
        level = seen.centre + mid
        tiny = 1e-9 * (1.0 + abs(seen.centre))
        floor = max((seen.upper_quartile - seen.lower_quartile) / IQR_TO_SIGMA, tiny)
        expected = _inverse(level, self.count)
        change = max(self.abs_floor, self.rel_floor * abs(expected))
        high = _inverse(level + self.thr * floor, self.count)
        low = _inverse(level - self.thr * floor, self.count)
        if self.count:  # expm1 is monotone up to its last bit: keep a margin
            high, low = high - 1e-9 * abs(high), low + 1e-9 * abs(low)
        return min(low, expected - change) <= xi <= max(high, expected + change)

    def judge(
        self, i: int, yi: float, xi: float, seen: Expectation, ranked: list[float], out: _Replay
    ) -> bool:
        n = len(ranked)
        mid = _at(ranked, 0.5 * (n - 1))
        iqr = (_at(ranked, 0.75 * (n - 1)) - _at(ranked, 0.25 * (n - 1))) / IQR_TO_SIGMA
        tiny = 1e-9 * (1.0 + abs(seen.centre))
        # A tail quantile is only as good as the points beyond it: keep TAIL_POINTS there.
        q_hi = self.q_hi if n * (1.0 - self.q_hi) >= TAIL_POINTS else 1.0 - TAIL_POINTS / n
        z_tail = self.z_tail if q_hi == self.q_hi else _normal_quantile(q_hi)
        # The bucket's own spread is a floor: some hours (month-ends, edges) are noisier.
        floor = max(iqr, (seen.upper_quartile - seen.lower_quartile) / IQR_TO_SIGMA, tiny)
        up = max((_at(ranked, q_hi * (n - 1)) - mid) / z_tail, floor)
        down = max((mid - _at(ranked, (1.0 - q_hi) * (n - 1))) / z_tail, floor)
        level = seen.centre + mid
        deviation = yi - level
        z = deviation / up if deviation >= 0 else deviation / down
        z = max(-MAX_SCORE, min(MAX_SCORE, z))
        expected = _inverse(level, self.count)
        change = max(self.abs_floor, self.rel_floor * abs(expected))
        high = max(_inverse(level + self.thr * up, self.count), expected + change)
        low = min(_inverse(level - self.thr * down, self.count), expected - change)
        anomalous = xi > high or xi < low
        if self.count:
            # Poisson rate from the bucket's mean; spread from its quartiles (robust to bursts).
            rate = seen.rate * math.exp(seen.centre - seen.shape)
            spread = (
                math.expm1(seen.upper_quartile) - math.expm1(seen.lower_quartile)
            ) / IQR_TO_SIGMA
            out.rate[i], out.variance[i] = rate, spread * spread
            if anomalous:
                z_count = count_score(xi, rate, spread * spread)
                anomalous = abs(z_count) >= self.thr and z_count * z > 0
        out.expected[i], out.low[i], out.high[i], out.score[i] = expected, low, high, z
        out.anomaly[i] = anomalous
        return anomalous


def _new_model(
    season: Season, settings: DetectorSettings, step: float, level_points: int
) -> SeriesBaseline:
    horizon = settings.lookback_cycles * season.period_seconds + step
    return SeriesBaseline(
        season.n_buckets, season.neighbours, horizon, level_points, settings.pool_points
    )


def _first_detection_span(step: float) -> float:
    return THREE_WEEKS if step >= 86_400.0 else 3 * 86_400.0


def _apply_count_model(x: np.ndarray, out: _Replay, thr: float, first: int) -> None:
    """Cap count scores at their Poisson / NB tail and widen the band to the count band."""
    scored = ~np.isnan(out.rate)
    scored[:first] = False
    if not scored.any():
        return
    rate, variance = out.rate[scored], out.variance[scored]
    z_count = count_scores(x[scored], rate, variance)
    z = out.score[scored]
    out.score[scored] = np.sign(z) * np.minimum(
        np.abs(z), np.where(z * z_count > 0, np.abs(z_count), 0.0)
    )
    low, high = count_band(rate, variance, thr)
    out.low[scored] = np.minimum(out.low[scored], low)
    out.high[scored] = np.maximum(out.high[scored], high)


def _method(season: Season, kind: Kind) -> str:
    if season.name == "none":
        where = "rolling median"
    elif season.name == "period":
        where = f"seasonal median, period {_duration(season.period_seconds)}"
    else:
        where = f"seasonal median, {season.name.replace('_', ' ')}"
    return f"{where}; tail-quantile band" + ("; log scale, Poisson cap" if kind == "count" else "")


def _duration(seconds: float) -> str:
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(int(round(seconds)), size) if size > 1 else (seconds, 0)
        if amount:
            parts.append(f"{int(amount)}{unit}")
    return "".join(parts) or "0s"


def _at(ranked: list[float], position: float) -> float:
    """Linear interpolation at a fractional index of a sorted list (numpy's default quantile)."""
    low = int(position)
    if low + 1 >= len(ranked):
        return ranked[-1]
    return ranked[low] + (ranked[low + 1] - ranked[low]) * (position - low)


def _inverse(level: float, count: bool) -> float:
    return math.expm1(level) if count else level


@lru_cache(maxsize=4096)
def _normal_quantile(q: float) -> float:
    return float(NormalDist().inv_cdf(q))


def _verdict(
    timestamp: datetime, observed: float, replay: _Replay, i: int, settings: DetectorSettings
) -> Verdict:
    history = int(replay.history[i])
    value = float(observed)
    if not math.isfinite(value) or np.isnan(replay.expected[i]):
        reason = (
            "no value"
            if not math.isfinite(value)
            else (
                f"learning: {history} points of history, needs {settings.min_history} "
                "and a few per season bucket"
            )
        )
        low = high = expected = None
        score, anomalous = 0.0, False
    else:
        expected = float(replay.expected[i])
        low, high, score = float(replay.low[i]), float(replay.high[i]), float(replay.score[i])
        anomalous = bool(replay.anomaly[i])
        band = f"the expected band [{low:.4g}, {high:.4g}]"
        if anomalous:
            side = "above" if value > high else "below"
            reason = f"{value:g} is {side} {band} (score {score:+.1f}, {history} points of history)"
        else:
            reason = f"{value:g} within {band}"
    return Verdict(
        timestamp=timestamp,
        observed=value,
        expected=expected,
        expected_low=low,
        expected_high=high,
        score=score,
        is_anomaly=anomalous,
        method=replay.method[i],
        reason=reason,
        history_size=history,
    )
