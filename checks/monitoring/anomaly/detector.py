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

How it runs: between anomalies the replay only learns, so a calm stretch is replayed at once
(`checks.monitoring.anomaly.expectations`: the baseline's windows as array statistics), a lone
anomaly just stays out of the learned points, and only an incident with several anomalies goes point
by point (from a baseline restored as of its second anomaly) until it closes; series whose level
window holds hundreds of points (minutely data) go point by point throughout. The point-by-point
loop over the whole series is kept as the reference (`_replay(..., pointwise=True)`); the tests hold
both to the same verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipewarden.checks.monitoring.anomaly.baseline import Expectation, SeriesBaseline
from pipewarden.checks.monitoring.anomaly.counts import (
    MAX_SCORE,
    count_band,
    count_score,
    count_scores,
)
from pipewarden.checks.monitoring.anomaly.episodes import EpisodeTracker
from pipewarden.checks.monitoring.anomaly.expectations import (
    Expectations,
    Layout,
    TrailingSorted,
    expectations,
    median_bounds,
)
from pipewarden.checks.monitoring.anomaly.history import tidy
from pipewarden.checks.monitoring.anomaly.season import (
    NO_SEASON,
    Season,
    SeasonName,
    declared_season,
    detect_season,
)

Kind = Literal["gauge", "count"]
THRESHOLDS = {"low": 4.5, "medium": 3.5, "high": 3.0}
# A bucket needs this many values before its median means anything.
MIN_BUCKET = 3
IQR_TO_SIGMA = 1.349
THREE_WEEKS = 21 * 86_400.0
# Level windows (points) up to which calm stretches are replayed at once.
WIDEST_FAST_WINDOW = 200
# Points replayed at once right after an anomaly (the stretch doubles while it stays calm).
FIRST_STRETCH = 64
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
    sustained_for: timedelta = Field(
        default=timedelta(hours=1),
        description="A change this long (and sustained_points long) fires at a lower score.",
    )
    sustained_points: int = Field(
        default=4, ge=1, description="Fewest points of a sustained change; 1 turns it off."
    )
    sustained_ratio: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="The lower score of a sustained change, as a fraction of the threshold.",
    )
    keep_firing_for: timedelta = Field(
        default=timedelta(hours=1),
        description="An anomaly keeps firing this long after its last anomalous point.",
    )

    @property
    def effective_threshold(self) -> float:
        return self.threshold if self.threshold is not None else THRESHOLDS[self.sensitivity]


def sensitivity_settings(sensitivity: str | float | None) -> dict[str, Any]:
    """The settings a sensitivity means: "low", "medium", "high" or a threshold (a number).

    The threshold is how many robust standard deviations a point must leave its expected value
    by to fire (the spread is read from the tails of recent residuals, so normal bursts widen
    it). On Gaussian noise a threshold t fires on 2 (1 - Phi(t)) of normal points: 3.0 on 2.7
    per 1,000, 3.5 (medium) on 0.47 per 1,000, 4.5 (low) on 0.007 per 1,000; heavier tails are
    absorbed by the band. Lower is more sensitive.
    """
    if sensitivity is None:
        return {}
    if isinstance(sensitivity, str) and sensitivity.strip().lower() in THRESHOLDS:
        return {"sensitivity": sensitivity.strip().lower(), "threshold": None}
    try:
        threshold = float(sensitivity)
    except ValueError:
        raise ValueError(
            f"sensitivity {sensitivity!r}: expected low, medium, high or a threshold such as 3.5"
        ) from None
    if not 0 < threshold < MAX_SCORE:
        raise ValueError(f"sensitivity {sensitivity!r}: a threshold must lie in (0, {MAX_SCORE:g})")
    return {"threshold": threshold}


def table_settings(
    base: DetectorSettings,
    sensitivity: str | float | None = None,
    min_change: float | None = None,
    season: str | None = None,
) -> DetectorSettings:
    """`base` with a table's own choices (`tables.<name>.anomaly` in the configuration).

    A declared day-of-month season needs months of history: the replayed window grows to
    `MIN_BUCKET` + 1 months so that every day of the month has values.
    """
    update = sensitivity_settings(sensitivity)
    if min_change is not None:
        update["abs_floor"] = min_change
    if season is not None:
        update["season"] = season
        if season == "day_of_month":
            months = timedelta(days=31 * (MIN_BUCKET + 1))
            update["history_window"] = max(base.history_window, months)
    return DetectorSettings.model_validate({**base.model_dump(), **update}) if update else base


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
        self.sustained: Any = [False] * n
        self.held_from: Any = [-1] * n

    def finish(self) -> None:
        for name in ("expected", "low", "high", "score", "rate", "variance"):
            setattr(self, name, np.array(getattr(self, name), dtype=np.float64))
        self.anomaly = np.array(self.anomaly, dtype=bool)
        self.sustained = np.zeros(len(self.anomaly), dtype=bool)
        self.held_from = np.full(len(self.anomaly), -1, dtype=np.int64)
        self.history = np.array(self.history, dtype=np.int64)


def detect_series(
    timestamps: Sequence[datetime],
    values: Sequence[float] | np.ndarray,
    settings: DetectorSettings | None = None,
    kind: Kind = "gauge",
    excluded: Sequence[tuple[datetime, datetime]] = (),
) -> list[Verdict]:
    """Verdicts for every point, each decided from the points before it.

    Points may come in any order and share timestamps (`history.tidy`: sorted, repeats merged
    into their median); each gets the verdict of its instant, in the order given.
    """
    settings = settings or DetectorSettings()
    history = tidy(_seconds(timestamps), np.asarray(values, dtype=np.float64))
    seconds, x = history.instants, history.values
    replay = _replay(seconds, x, settings, kind, _excluded_mask(seconds, excluded))
    point = history.point_of_row.tolist()
    return [_verdict(timestamps[i], x[p], replay, p, settings) for i, p in enumerate(point)]


def score_latest(
    timestamps: Sequence[datetime],
    values: Sequence[float] | np.ndarray,
    settings: DetectorSettings | None = None,
    kind: Kind = "gauge",
    excluded: Sequence[tuple[datetime, datetime]] = (),
) -> Verdict:
    """Verdict for the newest point, replaying the trailing `history_window` of its history."""
    if len(values) == 0:
        raise ValueError("score_latest needs at least one point")
    micros = _seconds(timestamps, _MICROSECOND)
    verdict = score_tail(micros, values, settings, kind, excluded=excluded)[-1]
    return verdict.model_copy(update={"timestamp": timestamps[int(np.argmax(micros))]})


def score_tail(
    micros: np.ndarray,
    values: Sequence[float] | np.ndarray,
    settings: DetectorSettings | None = None,
    kind: Kind = "gauge",
    points: int = 1,
    excluded: Sequence[tuple[datetime, datetime]] = (),
) -> list[Verdict]:
    """Verdicts of the newest `points` points, oldest first, from one replay of the trailing
    `history_window` before the newest point; each is decided from the points before it.

    Instants are microseconds since the epoch (int64, UTC): a check run reads its histories as
    arrays and needs no datetime per point. Unsorted instants are sorted and repeated ones merged
    (`history.tidy`); the newest `points` are then the newest distinct instants.
    """
    settings = settings or DetectorSettings()
    if len(values) == 0:
        raise ValueError("score_tail needs at least one point")
    history = tidy(micros, np.asarray(values))
    micros, values = history.instants, history.values
    # Only the trailing history_window can reach the newest verdicts: replay that.
    horizon = int(micros[-1]) - settings.history_window // _MICROSECOND
    points = min(points, len(micros))
    # The replay holds the points asked for, even where the window is shorter than their span.
    start = min(int(np.searchsorted(micros, horizon, side="left")), len(micros) - points)
    seconds = micros[start:] // 1_000_000
    x = np.asarray(values, dtype=np.float64)[start:]
    mask = _excluded_mask(seconds, excluded)
    # The sustained and keep-firing rules read the verdicts of the points before the newest.
    # Without keep_firing_for (the checks) only a point beyond the sustained score needs them:
    # most replays judge the newest points alone, and only those points replay again.
    extra = _lookbehind(seconds, points, settings)
    hold = settings.keep_firing_for.total_seconds() > 0
    replay = _replay(seconds, x, settings, kind, mask, tail=min(len(x), points + extra * hold))
    if extra and not hold and _maybe_sustained(replay, points, settings):
        replay = _replay(seconds, x, settings, kind, mask, tail=min(len(x), points + extra))
    return [
        _verdict(_instant(micros[start + i]), x[i], replay, i, settings)
        for i in range(len(x) - points, len(x))
    ]


def _sustained_points(step: float, settings: DetectorSettings) -> int:
    """Points in a row a sustained change needs: `sustained_for` at the series' typical step,
    and never fewer than `sustained_points` (1: the rule is off)."""
    if settings.sustained_points <= 1:
        return 1
    span = settings.sustained_for.total_seconds()
    return max(settings.sustained_points, math.ceil(span / step - 1e-9))


def _step(seconds: np.ndarray) -> float:
    """The typical interval between points (the median), as the replay reads it."""
    step = float(np.median(np.diff(seconds))) if len(seconds) > 1 else 1.0
    return step if step > 0 else 1.0


def _lookbehind(seconds: np.ndarray, points: int, settings: DetectorSettings) -> int:
    """Points before the newest `points` whose verdicts the rules over several points read:
    those within keep_firing_for of the first one wanted, and a sustained run before each."""
    if len(seconds) == 0:
        return 0
    since = int(seconds[-points]) - settings.keep_firing_for.total_seconds()
    held = len(seconds) - points - int(np.searchsorted(seconds, since, side="left"))
    return max(0, held) + _sustained_points(_step(seconds), settings) - 1


def _maybe_sustained(replay: _Replay, points: int, settings: DetectorSettings) -> bool:
    """Whether one of the newest `points` could end a sustained change (its score is beyond
    the sustained score and it is no anomaly by itself)."""
    lower = settings.sustained_ratio * settings.effective_threshold
    newest = slice(len(replay.score) - points, None)
    return bool(np.any((np.abs(replay.score[newest]) >= lower) & ~replay.anomaly[newest]))


def _seconds(timestamps: Sequence[datetime], unit: timedelta = timedelta(seconds=1)) -> np.ndarray:
    """Whole `unit`s since the epoch; aware timestamps are converted to UTC, naive ones read as
    UTC."""
    return np.fromiter(
        ((t - (_EPOCH_UTC if t.tzinfo else _EPOCH)) // unit for t in timestamps),
        dtype=np.int64,
        count=len(timestamps),
    )


def _instant(micros: np.integer) -> datetime:
    return _EPOCH_UTC + timedelta(microseconds=int(micros))


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


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
    pointwise: bool = False,
) -> _Replay:
    """The detection loop (see the module docstring); `tail` verdicts are needed, None: all.

    Stretches where nothing is anomalous are replayed at once (`_calm`): there the baseline
    learns every usable point, so its expectations are window statistics over arrays. A lone
    anomaly only stays out of the learned points; a second one within the same incident hands
    over to the point-by-point loop (`_pointwise`, from a baseline restored as of that point)
    until the incident closes. `pointwise` replays everything point by point: the reference the
    fast path is tested against.
    """
    s = _Series(seconds, x, settings, kind, excluded, tail)
    # Windows of hundreds of points (minutely data) make the array statistics dearer than the
    # sorted lists of the point-by-point loop.
    pointwise = pointwise or s.level_points > WIDEST_FAST_WINDOW
    if pointwise:
        _pointwise(s, 0, s.new_model(), until_calm=False)
    i = s.n if pointwise else 0
    opened = -1  # the last anomaly left to the fast path, whose incident may still be open
    # What a stretch computes beyond its first anomaly is lost, and anomalies come in clusters:
    # after one, stretches start short and double while they stay calm.
    span = s.n
    while i < s.n:
        if s.due(i):
            _detect(s)
        end = min(s.next_due(i + 1), i + span)
        stop = _calm(s, i, end)
        if stop == end:
            i, span = end, 2 * span
            continue
        span = FIRST_STRETCH
        quiet = int(s.learnable[opened + 1 : stop].sum()) if opened >= 0 else -1
        if opened < 0 or quiet > settings.quiet_points:
            # A lone anomaly changes nothing but its own absence from the baseline.
            i, opened = stop + 1, stop
            continue
        # A second anomaly within the same incident: the tracker decides, point by point.
        incident = _open_incident(s, opened, quiet)
        i = _pointwise(s, stop, _restored(s, stop), until_calm=True, incident=incident)
        opened = -1
    out = s.out
    out.finish()
    if s.count:
        _apply_count_model(x, out, s.band.thr, 0 if tail is None else max(0, s.n - tail))
    # Rules over several points, for the points whose verdicts are wanted (`score_tail` asks
    # for enough points before them); earlier points keep their own flags.
    first = 0 if tail is None else max(0, s.n - tail)
    _mark_sustained(out, settings, x, s.skipped, _sustained_points(s.step, settings), first)
    _keep_firing(out, s.times, settings, first, s.skipped)
    return out


def _mark_sustained(
    out: _Replay,
    settings: DetectorSettings,
    x: np.ndarray,
    skipped: np.ndarray,
    k: int,
    first: int,
) -> None:
    """Flags the points that end `k` scores in a row (`sustained_for`, at least
    `sustained_points`) beyond `sustained_ratio * threshold` on the same side, each by at least
    the smallest change (abs_floor, rel_floor): a shift or a ramp that stays inside the band
    point by point, but lasts too long to be noise. It only adds flags: what the baseline
    learned is unchanged (the level follows a lasting change by itself)."""
    if k <= 1 or len(out.score) < k:
        return
    lower = settings.sustained_ratio * settings.effective_threshold
    with np.errstate(invalid="ignore"):
        change = np.abs(x - out.expected)
        floor = np.maximum(settings.abs_floor, settings.rel_floor * np.abs(out.expected))
        judged = ~np.isnan(out.expected) & ~skipped & (change >= floor)
    judged[:first] = False
    for side in (out.score >= lower, out.score <= -lower):
        beyond = (side & judged).astype(np.int64)
        runs = np.convolve(beyond, np.ones(k, dtype=np.int64))[: len(beyond)] == k
        out.sustained |= runs & ~out.anomaly
    out.anomaly |= out.sustained


def _keep_firing(
    out: _Replay, times: np.ndarray, settings: DetectorSettings, first: int, skipped: np.ndarray
) -> None:
    """An anomaly keeps firing for `keep_firing_for` after its last anomalous point (as
    Prometheus' keep_firing_for): an incident that dips into the band for a point or two is
    one alert, not a new one each time it comes back. Decided from the past only; a held point
    carries the score of the anomaly it holds, and no point is learned for it. Anomalies inside
    `excluded` windows (maintenance) hold nothing."""
    hold = settings.keep_firing_for.total_seconds()
    fired = np.flatnonzero(out.anomaly & ~skipped)
    if hold <= 0 or len(fired) == 0:
        return
    last = np.full(len(out.anomaly), -1, dtype=np.int64)
    last[fired] = fired
    last = np.maximum.accumulate(last)
    previous = np.concatenate(([-1], last[:-1]))  # the last anomaly strictly before each point
    judged = ~np.isnan(out.expected)
    held = ~out.anomaly & judged & (previous >= 0)
    held[:first] = False
    held &= times - times[np.maximum(previous, 0)] <= hold
    rows = np.flatnonzero(held)
    out.held_from[rows] = previous[rows]
    out.score[rows] = out.score[previous[rows]]
    out.anomaly[rows] = True


class _Series:
    """A series being replayed, and what the replay has decided about it so far."""

    def __init__(
        self,
        seconds: np.ndarray,
        x: np.ndarray,
        settings: DetectorSettings,
        kind: Kind,
        excluded: np.ndarray,
        tail: int | None,
    ) -> None:
        n = self.n = len(x)
        self.settings, self.kind, self.count = settings, kind, kind == "count"
        self.seconds, self.x = seconds, x
        self.y = np.log1p(np.maximum(x, 0.0)) if self.count else x
        self.step = _step(seconds)
        window = int(settings.level_window.total_seconds() / self.step)
        self.level_points = max(settings.level_points, window)
        self.times = seconds.astype(np.float64)
        self.first_time = float(self.times[0]) if n else 0.0
        self.finite = np.isfinite(x)
        self.skipped = excluded
        self.learnable = self.finite & ~excluded
        self.quick_until = 0 if tail is None else n - tail
        self.out = _Replay(n)
        self.band = _Band(settings, self.count)
        declared = declared_season(settings.season)
        self.set_season(declared or NO_SEASON)
        # Auto: look for a season once three days exist (a daily pattern can show), again at
        # three weeks (a weekly one can), then whenever the history has doubled.
        self.next_detection = _first_detection_span(self.step) if declared is None else math.inf
        self.ready = declared is not None
        self.included = np.zeros(n, dtype=bool)  # ever learned: what season detection reads
        self.held = np.zeros(n, dtype=bool)  # what the baseline holds now
        self.pool_base: list[float] = []  # residual pool entries from before the last restart
        self.known = Expectations.empty(n)  # expectations of the held points, rows < valid
        self.valid = 0

    def set_season(self, season: Season) -> None:
        self.season, self.method = season, _method(season, self.kind)
        self.buckets = season.buckets(self.seconds)
        self.layout = Layout(
            self.buckets,
            season.n_buckets,
            season.neighbours,
            self.settings.lookback_cycles * season.period_seconds + self.step,
            self.level_points,
            raw_means=self.count,
        )

    def new_model(self) -> SeriesBaseline:
        return _new_model(self.season, self.settings, self.step, self.level_points)

    def due(self, i: int) -> bool:
        """Whether a season detection runs before point i is judged."""
        late = self.times[i] - self.first_time >= self.next_detection
        return bool(self.finite[i] and late and i >= self.settings.min_history)

    def next_due(self, start: int) -> int:
        late = self.times[start:] - self.first_time >= self.next_detection
        late &= self.finite[start:]
        late[: max(0, self.settings.min_history - start)] = False
        found = np.flatnonzero(late)
        return start + int(found[0]) if len(found) else self.n


def _detect(s: _Series) -> bool:
    """Step 1 at the current point: True when the season changed (the baseline is rebuilt)."""
    s.next_detection = max(2 * s.next_detection, THREE_WEEKS)
    s.ready = True
    # Nothing is flagged before the first detection, so it sees every point; later ones see the
    # baseline's points only, so an incident cannot pose as a season.
    found = detect_season(
        s.seconds[s.included],
        s.y[s.included],
        s.step,
        s.level_points,
        s.season,
        s.settings.lookback_cycles,
    )
    if found == s.season:
        return False
    s.set_season(found)
    s.held, s.pool_base, s.valid = s.included.copy(), [], 0
    return True


def _pointwise(
    s: _Series,
    start: int,
    model: SeriesBaseline,
    until_calm: bool,
    incident: EpisodeTracker | None = None,
) -> int:
    """Steps 1-5 point by point from `start`. With `until_calm`, stops before the first point
    that finds no incident open and returns its index; else replays to the end."""
    out, band, settings = s.out, s.band, s.settings
    times, ys, xs = s.times.tolist(), s.y.tolist(), s.x.tolist()
    buckets = s.buckets.tolist()
    incident = incident or _tracker(settings)
    min_history, quick_until = settings.min_history, s.quick_until
    finite, skipped = s.finite.tolist(), s.skipped.tolist()
    for i in range(start, s.n):
        if until_calm and i > start and incident.start is None:
            return i
        t, yi, xi = times[i], ys[i], xs[i]
        if not finite[i]:
            out.method[i] = "no value"
            continue  # a missing value is neither judged nor learned
        if i > start and s.due(i) and _detect(s):
            buckets = s.buckets.tolist()
            model = s.new_model()
            for j in np.nonzero(s.included)[0].tolist():
                bj = buckets[j]
                model.learn(times[j], bj, ys[j], xs[j], model.expect(times[j], bj))
        bucket = buckets[i]
        seen = model.expect(t, bucket)
        pool = model.pool.sorted
        out.method[i] = s.method
        out.history[i] = len(pool)
        anomalous = False
        judged = s.ready and seen.size >= MIN_BUCKET and len(pool) >= min_history
        # Of a point whose verdict is not returned, only whether it is anomalous matters.
        quick = judged and i < quick_until and band.surely_normal(xi, seen, pool)
        if judged and not quick:
            anomalous = band.judge(i, yi, xi, seen, pool, out)
        if skipped[i]:
            continue  # labelled incidents and maintenance: judged, never learned
        # A normal point outside any incident changes nothing in the tracker.
        if (anomalous or incident.start is not None) and incident.observe(i, t, anomalous):
            # A change that outlasts new_normal_after is the new normal: restart from it.
            s.pool_base = model.pool.in_arrival_order()
            model.restart()
            s.held[:] = False
            s.valid = min(s.valid, incident.members[0])
            for j in incident.members:
                model.learn(times[j], buckets[j], ys[j], xs[j], model.expect(times[j], buckets[j]))
                s.included[j] = s.held[j] = True
            continue
        if anomalous and not incident.accepted:
            continue
        model.learn(t, bucket, yi, xi, seen)
        s.included[i] = s.held[i] = True
    return s.n


def _tracker(settings: DetectorSettings) -> EpisodeTracker:
    return EpisodeTracker(settings.quiet_points, settings.new_normal_after.total_seconds())


def _open_incident(s: _Series, first: int, quiet: int) -> EpisodeTracker:
    """The tracker as the point-by-point replay has it after the anomaly at `first` and
    `quiet` normal points."""
    incident = _tracker(s.settings)
    incident.observe(first, float(s.times[first]), True)
    for _ in range(quiet):
        incident.observe(first, float(s.times[first]), False)
    return incident


def _calm(s: _Series, start: int, end: int) -> int:
    """Replays points start..end-1 at once as long as none is anomalous; returns the index of
    the first anomalous point (not replayed: `_pointwise` takes it from there), else `end`."""
    settings, out, known = s.settings, s.out, s.known
    if not s.ready:
        return _learn_only(s, start, end)
    held = s.held.copy()
    held[start:end] = s.learnable[start:end]  # optimistic: every usable point is learned
    expectations(s.times, s.y, s.x, held, s.layout, range(s.valid, end), known)
    pooled = np.flatnonzero(held[:end] & (known.size[:end] > 0))
    sequence = np.concatenate(
        (np.asarray(s.pool_base, dtype=np.float64), known.pool_residual[pooled])
    )
    rows = np.arange(start, end)
    before = len(s.pool_base) + np.searchsorted(pooled, rows)  # pool entries before each row
    history = np.minimum(before, settings.pool_points)
    size = known.size[start:end]
    judged = (
        s.ready & s.finite[start:end] & (size >= MIN_BUCKET) & (history >= s.settings.min_history)
    )
    lengths = before.tolist()
    mid_low, mid_high = np.full(end - start, -np.inf), np.full(end - start, np.inf)
    wanted = np.flatnonzero(judged)
    mid_low[wanted], mid_high[wanted] = median_bounds(
        sequence, before[wanted], settings.pool_points
    )
    centre, lower, upper = known.centre[start:end], known.lower[start:end], known.upper[start:end]
    surely = s.band.surely_normal_many(s.x[start:end], centre, lower, upper, mid_low, mid_high)
    full = judged & ~((rows < s.quick_until) & surely)
    stop = end
    checked = np.flatnonzero(full).tolist()
    pool = TrailingSorted(sequence.tolist() if checked else [], settings.pool_points)
    ys, xs = s.y, s.x
    for k in checked:
        i = start + k
        seen = Expectation(
            float(known.shape[i]),
            float(centre[k]),
            int(size[k]),
            float(known.rate[i]),
            float(lower[k]),
            float(upper[k]),
        )
        ranked = pool.at(lengths[k])
        if s.band.judge(i, float(ys[i]), float(xs[i]), seen, ranked, out) and not s.skipped[i]:
            stop = i
            break
    _record(s, start, stop, history)
    if stop < end:  # judged above; it stays out of the baseline
        out.method[stop], out.history[stop] = s.method, history[stop - start]
    return stop


def _learn_only(s: _Series, start: int, end: int) -> int:
    """A stretch before the first season detection: nothing is judged, every usable point is
    learned. Without a season the pool gains a residual from every learned point but the first."""
    held = np.cumsum(s.held[:end] | (s.learnable[:end] & (np.arange(end) >= start)))
    before = np.concatenate(([0], held[:-1]))[start:end]
    pooled = len(s.pool_base) + np.maximum(before - 1, 0)
    _record(s, start, end, np.minimum(pooled, s.settings.pool_points))
    return end


def _record(s: _Series, start: int, stop: int, history: np.ndarray) -> None:
    """Points start..stop-1 were replayed at once: note their method and history, learn them."""
    out, done = s.out, slice(start, stop)
    out.method[start:stop] = [s.method] * (stop - start)
    for i in np.flatnonzero(~s.finite[done]).tolist():
        out.method[start + i] = "no value"
    out.history[done] = np.where(s.finite[done], history[: stop - start], 0).tolist()
    s.held[done] = s.learnable[done]
    s.included[done] |= s.learnable[done]
    s.valid = max(s.valid, stop) if s.ready else s.valid


def _restored(s: _Series, stop: int) -> SeriesBaseline:
    """The baseline as the point-by-point replay has it before point `stop`."""
    model, known = s.new_model(), s.known
    held = np.flatnonzero(s.held[:stop])
    buckets = s.buckets[held]
    order = np.argsort(buckets, kind="stable")
    cuts = np.flatnonzero(np.diff(buckets[order])) + 1
    for members in np.split(held[order], cuts):
        if len(members):
            window = model.buckets.windows[int(s.buckets[members[0]])]
            window.load(s.times[members].tolist(), s.y[members].tolist(), s.x[members].tolist())
    pooled = held[known.size[held] > 0]
    if model.seasonal:
        level = known.level_residual[pooled].tolist()
        model.level.load([0.0] * len(level), level, [0.0] * len(level))
    sequence = s.pool_base + known.pool_residual[pooled].tolist()
    model.pool.load([0.0] * len(sequence), sequence, [0.0] * len(sequence))
    return model


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

    def surely_normal_many(
        self,
        x: np.ndarray,
        centre: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        mid_low: np.ndarray,
        mid_high: np.ndarray,
    ) -> np.ndarray:
        """`surely_normal` of many points whose pool median is only known to lie in
        [mid_low, mid_high]: True when the point is inside the narrow band for every median in
        that range. Both band edges rise with the median (while rel_floor <= 1), so the lower
        edge is taken at mid_high and the upper one at mid_low."""
        if self.rel_floor > 1.0:
            return np.zeros(len(x), dtype=bool)
        tiny = 1e-9 * (1.0 + np.abs(centre))
        floor = np.maximum((upper - lower) / IQR_TO_SIGMA, tiny)
        with np.errstate(invalid="ignore", over="ignore"):
            lowest, _ = self._narrow_band(centre + mid_high, floor)
            _, highest = self._narrow_band(centre + mid_low, floor)
            return (lowest <= x) & (x <= highest)

    def _narrow_band(self, level: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        expected = np.expm1(level) if self.count else level
        change = np.maximum(self.abs_floor, self.rel_floor * np.abs(expected))
        high, low = level + self.thr * floor, level - self.thr * floor
        if self.count:
            high, low = np.expm1(high), np.expm1(low)
            high, low = high - 1e-9 * np.abs(high), low + 1e-9 * np.abs(low)
        return np.minimum(low, expected - change), np.maximum(high, expected + change)

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
        if replay.held_from[i] >= 0:
            ago = i - int(replay.held_from[i])
            reason = (
                f"{value:g} within {band}; the anomaly {ago} points earlier (score {score:+.1f}) "
                f"keeps firing for {_duration(settings.keep_firing_for.total_seconds())} after "
                "its last anomalous point"
            )
        elif replay.sustained[i]:
            side = "above" if score > 0 else "below"
            lower = settings.sustained_ratio * settings.effective_threshold
            reason = (
                f"{value:g} within {band}, but the points of the last "
                f"{_duration(settings.sustained_for.total_seconds())} (at least "
                f"{settings.sustained_points}) all lie {side} the expected value by a score of "
                f"{lower:.2g} or more (score {score:+.1f}, {history} points of history): "
                "a lasting change"
            )
        elif anomalous:
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
