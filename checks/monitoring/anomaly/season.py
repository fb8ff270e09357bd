"""Season of a metric: declared by the user (calendar buckets) or found in the data.

A season maps each timestamp to a bucket; a point is compared with earlier points of the same
bucket (and its direct neighbours, for detected periods, so a pattern that drifts by one sample
does not look anomalous). Timestamps are seconds since the epoch, naive times read as UTC.

Detection: the periodogram (scipy's, written out) proposes candidate periods (its strongest
peaks plus one day and one week); each candidate is then checked the way the detector will use
it, by predicting every cycle from the median of the previous cycles at the same phase. The
candidate is kept only if that prediction beats "the previous cycle's median" by a clear margin;
a periodogram peak alone is not evidence enough (spikes and trends put power everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

SeasonName = Literal["auto", "none", "hour_of_day", "hour_of_week", "day_of_week", "day_of_month"]

DAY = 86_400.0
WEEK = 7 * DAY
# A season must cut the error of the flat baseline by this fraction to be kept.
MIN_STRENGTH = 0.2
# Cycles of history needed before a period can be proposed.
MIN_CYCLES = 3
# Peaks taken from the periodogram as candidates.
CANDIDATE_PEAKS = 3
# Best cycles whose wider pooling is tried.
LEADERS = 1
# Shortest cycle considered, in sampling steps.
MIN_CYCLE = 3
# Neighbouring phases (either side) a bucket may pool.
POOLING = (0, 1, 2, 4, 8)
# Candidates are judged on at most this many of the latest points.
EVALUATED_POINTS = 4000


@dataclass(frozen=True)
class Season:
    """How timestamps map to buckets, and how long one cycle is (for the lookback)."""

    name: str
    period_seconds: float
    n_buckets: int
    neighbours: int

    def buckets(self, seconds: np.ndarray) -> np.ndarray:
        """Bucket index of each timestamp (int64 seconds since the epoch)."""
        s = np.asarray(seconds, dtype=np.int64)
        if self.name == "none":
            return np.zeros(len(s), dtype=np.int64)
        if self.name == "hour_of_day":
            return (s // 3600) % 24
        if self.name == "day_of_week":
            return (s // 86_400 + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
        if self.name == "hour_of_week":
            return (s // 3600 + 3 * 24) % 168  # Monday 00:00 is hour 0
        if self.name == "day_of_month":
            return _day_of_month_buckets(s)
        width = self.period_seconds / self.n_buckets
        phase = np.mod(s.astype(np.float64), self.period_seconds) / width
        return np.floor(phase + 0.5).astype(np.int64) % self.n_buckets


NO_SEASON = Season("none", 0.0, 1, 0)


def declared_season(name: SeasonName) -> Season | None:
    """The calendar season for a declared name; None for "auto"."""
    if name == "none":
        return NO_SEASON
    if name == "hour_of_day":
        return Season(name, DAY, 24, 0)
    if name == "day_of_week":
        return Season(name, WEEK, 7, 0)
    if name == "hour_of_week":
        return Season(name, WEEK, 168, 0)
    if name == "day_of_month":
        return Season(name, 31 * DAY, 31, 0)
    return None


def _day_of_month_buckets(seconds: np.ndarray) -> np.ndarray:
    """Days 1-15 count from the start of the month, later days from its end.

    So the last day of every month shares one bucket (month-end jobs), whatever the month's length.
    """
    days = (seconds // 86_400).astype("datetime64[D]")
    month = days.astype("datetime64[M]")
    from_start = (days - month.astype("datetime64[D]")).astype(np.int64)
    to_end = ((month + 1).astype("datetime64[D]") - days).astype(np.int64) - 1
    return np.where(from_start < 15, from_start, 30 - to_end)


def detect_season(
    seconds: np.ndarray,
    values: np.ndarray,
    step: float,
    level_points: int = 48,
    current: Season | None = None,
    lookback_cycles: int = 8,
) -> Season:
    """The period found in the history, or no season if none is clear.

    A `current` season found earlier is kept while it stays nearly as good as the best candidate,
    so one odd week does not flip the baseline back and forth. A cycle whose `lookback_cycles`
    span less than the level window is no season: it would only be a shorter, jumpier median.
    """
    grid = _regular_grid(np.asarray(seconds, dtype=np.float64), values, step)
    if grid is None or len(grid) < 4 * MIN_CYCLES:
        return NO_SEASON
    lo, hi = _clip_bounds(grid)
    if hi - lo <= 0:
        return NO_SEASON
    clipped = np.clip(grid, lo, hi)
    start = max(len(clipped) - EVALUATED_POINTS, 2 * (len(clipped) // MIN_CYCLES) + POOLING[-1])
    if start >= len(clipped):
        return NO_SEASON
    judged = _Strengths(clipped, level_points, start, lookback_cycles)

    def strength(cycle: int, neighbours: int) -> float:
        return judged.of([(cycle, neighbours)])[0]

    shortest = max(MIN_CYCLE, -(-level_points // lookback_cycles))
    cycles = _candidate_cycles(clipped, step, shortest)
    pairs = [(cycle, 0) for cycle in cycles]
    if current is not None and current.name == "period":  # judged below: in the same batch
        pairs.append((int(round(current.period_seconds / step)), current.neighbours))
    judged.of(pairs)
    scored = [(strength(cycle, 0), cycle, 0) for cycle in cycles]
    # Pooling neighbouring phases smooths noise but blurs sharp edges: the data decide, for the
    # most promising cycles only.
    leaders: list[int] = []
    for _, cycle, _ in sorted(scored, reverse=True):
        if cycle not in leaders and len(leaders) < LEADERS:
            leaders.append(cycle)
    pooled = [(c, n) for c in leaders for n in POOLING[1:] if 2 * n + 1 <= c // 4]
    scored += [(s, c, n) for s, (c, n) in zip(judged.of(pooled), pooled, strict=True)]
    if not scored:
        return NO_SEASON
    best = max(s for s, _, _ in scored)
    if best < MIN_STRENGTH:
        return NO_SEASON
    if current is not None and current.name == "period":
        cycle = int(round(current.period_seconds / step))
        kept = strength(cycle, current.neighbours)
        if kept >= 0.9 * best:
            return current
    # Multiples of the true period score about as well: prefer the shortest that is nearly as good.
    _, cycle, neighbours = min(
        (s for s in scored if s[0] >= 0.9 * best), key=lambda s: (s[1], -s[0])
    )
    return Season("period", float(cycle * step), cycle, neighbours)


def detect_period(
    seconds: np.ndarray, values: np.ndarray, step: float, level_points: int = 48
) -> float | None:
    """Period in seconds (a whole number of sampling steps), or None."""
    season = detect_season(seconds, values, step, level_points)
    return season.period_seconds if season.name == "period" else None


_CLIP_QUANTILES = np.array([0.005, 0.995])


def _clip_bounds(grid: np.ndarray) -> tuple[float, float]:
    """`np.quantile(grid, [0.005, 0.995])`, written out for finite grids of two or more points:
    numpy's wrapper cost several times its partition (two detections per series and check run).
    The same order statistics and numpy's interpolation step for step, so the same values (a
    test pins it to numpy's; only the sign of a zero may differ where the grid holds both
    zeros, as between numpy's own partitions)."""
    n = len(grid)
    if n < 2 or not np.isfinite(grid).all():
        lo, hi = np.quantile(grid, _CLIP_QUANTILES)
        return float(lo), float(hi)
    virtual = (n - 1) * _CLIP_QUANTILES
    previous = np.floor(virtual)
    gamma = virtual - previous
    below = previous.astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    ranked = np.partition(grid, np.unique(np.concatenate((below, above))))
    a, b = ranked[below], ranked[above]
    diff = b - a
    # numpy's _lerp: from the nearer end, so that gamma 1 gives b exactly.
    bounds = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return float(bounds[0]), float(bounds[1])


def _regular_grid(seconds: np.ndarray, values: np.ndarray, step: float) -> np.ndarray | None:
    """Values on an evenly spaced grid, gaps filled by linear interpolation."""
    if len(seconds) < 2 or step <= 0:
        return None
    position = np.round((seconds - seconds[0]) / step)
    grid_positions = np.arange(position[-1] + 1)
    if len(grid_positions) > 50 * len(seconds):
        return None
    return np.interp(grid_positions, position, np.asarray(values, dtype=np.float64))


def _candidate_cycles(grid: np.ndarray, step: float, shortest: int) -> list[int]:
    """Cycle lengths (in steps) worth checking: periodogram and autocorrelation peaks, calendar.

    The autocorrelation is the inverse transform of the periodogram (Wiener-Khinchin); it finds
    the period of spike trains, whose power is spread over many harmonics.
    """
    n = len(grid)
    max_cycle = n // MIN_CYCLES
    candidates: set[int] = set()
    freqs, power = _periodogram(grid)
    if len(power) > 2:
        order = np.argsort(power[1:])[::-1] + 1
        for k in order[: CANDIDATE_PEAKS * 4]:
            cycle = int(round(1.0 / freqs[k]))
            if shortest <= cycle <= max_cycle:
                candidates.add(_snap(cycle, step))
            if len(candidates) >= CANDIDATE_PEAKS:
                break
    centred = grid - grid.mean()
    padded_power = np.abs(np.fft.rfft(centred, 2 * n)) ** 2  # zero-padded: no wrap-around
    acf = np.fft.irfft(padded_power)[: max_cycle + 2]
    if len(acf) > shortest + 1 and acf[0] > 0:
        inner = acf[1:-1]
        peaks = np.nonzero((inner > acf[:-2]) & (inner >= acf[2:]))[0] + 1
        peaks = peaks[peaks >= shortest]
        for lag in peaks[np.argsort(acf[peaks])[::-1][:CANDIDATE_PEAKS]]:
            candidates.add(_snap(int(lag), step))
    for calendar in (DAY, WEEK):
        cycle = int(round(calendar / step))
        if shortest <= cycle <= max_cycle and abs(cycle * step - calendar) < 1:
            candidates.add(cycle)
    return sorted(c for c in candidates if shortest <= c <= max_cycle)


def _periodogram(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`scipy.signal.periodogram(grid, detrend="linear")`, written out: scipy's wrapper cost
    several times these lines (two detections per series and check run). A test pins it to
    scipy's."""
    n = len(grid)
    t = np.arange(n, dtype=np.float64)
    t -= t.mean()
    slope = (t * (grid - grid.mean())).sum() / (t * t).sum()
    detrended = grid - grid.mean() - slope * t
    power = np.abs(np.fft.rfft(detrended)) ** 2 / n
    power[1 : n // 2 + n % 2] *= 2.0  # one-sided: every bin but 0 Hz and Nyquist counts twice
    return np.fft.rfftfreq(n), power


def _snap(cycle: int, step: float) -> int:
    """A peak within 5% of a day or a week is that calendar period (the grid is coarse)."""
    for calendar in (DAY, WEEK):
        exact = calendar / step
        if abs(cycle - exact) <= 0.05 * exact and abs(round(exact) * step - calendar) < 1:
            return int(round(exact))
    return cycle


class _Strengths:
    """`1 - error of the seasonal prediction / error of the flat one` of (cycle, neighbours)
    pairs, as the detector uses them; each pair judged once, many at a time.

    Seasonal: median of the same phase (and neighbours) over the `lookback_cycles` before, moved
    by the median of the last `level_points` seasonal residuals. Flat: the median of the last
    `level_points` values. Every pair is judged on the same points, grid[start:]. The trailing
    medians of a batch are one filter over the rows laid end to end (one call instead of one per
    pair: the filter's own overhead was most of its cost); a pair's residuals are padded on the
    left with their first value, which is what the filter's `nearest` edge did for each alone.
    """

    def __init__(self, grid: np.ndarray, level_points: int, start: int, lookback: int) -> None:
        self.grid, self.start, self.lookback = grid, start, lookback
        self.width = max(1, min(level_points, start // 2))
        self.judged: dict[tuple[int, int], float] = {}
        self.flat: float | None = None

    def of(self, pairs: list[tuple[int, int]]) -> list[float]:
        todo = [p for p in dict.fromkeys(pairs) if p not in self.judged]
        if todo or self.flat is None:
            self._judge(todo)
        return [self.judged[p] for p in pairs]

    def _judge(self, pairs: list[tuple[int, int]]) -> None:
        grid, start, width = self.grid, self.start, self.width
        n, first_row = len(grid), start - width
        rows: list[np.ndarray] = [] if self.flat is not None else [grid[first_row:]]
        judged: list[tuple[int, int]] = []
        for cycle, neighbours in pairs:
            k = min(self.lookback, (start - neighbours) // cycle)
            if k < MIN_CYCLES - 1 or start >= n:
                self.judged[cycle, neighbours] = -np.inf
                continue
            first = max(k * cycle + neighbours, first_row)
            idx = np.arange(first, n)
            offsets = (
                np.arange(1, k + 1)[:, None] * cycle + np.arange(-neighbours, neighbours + 1)
            ).ravel()
            residual = grid[idx] - _row_median(grid[idx[:, None] - offsets[None, :]])
            rows.append(np.concatenate((np.full(first - first_row, residual[0]), residual)))
            judged.append((cycle, neighbours))
        if not rows:
            return
        # Rows end to end: from its `width`-th column on, a row's windows hold only its own values.
        table = np.stack(rows)
        levels = _trailing_median(table.ravel(), width).reshape(table.shape)
        errors = [float(np.abs(r - level)[width:].sum()) for r, level in zip(table, levels)]
        if self.flat is None:
            self.flat = errors.pop(0)
        for pair, error in zip(judged, errors, strict=True):
            self.judged[pair] = 0.0 if self.flat <= 0 else 1.0 - error / self.flat


def _row_median(table: np.ndarray) -> np.ndarray:
    """Median of each row (np.median with an axis is several times slower on small rows)."""
    k = table.shape[1]
    if k % 2:
        return np.partition(table, k // 2, axis=1)[:, k // 2]
    both = np.partition(table, [k // 2 - 1, k // 2], axis=1)
    return 0.5 * (both[:, k // 2 - 1] + both[:, k // 2])


def _trailing_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median of the `width` values before each position (the first ones see fewer)."""
    centred = ndimage.median_filter(values, size=width, mode="nearest")
    shift = min(width - width // 2, len(values))
    out = np.empty_like(values)
    out[:shift] = values[0]
    out[shift:] = centred[: len(values) - shift]
    return out
