"""Season of a metric: declared by the user (calendar buckets) or found in the data.

A season maps each timestamp to a bucket; a point is compared with earlier points of the same
bucket (and its direct neighbours, for detected periods, so a pattern that drifts by one sample
does not look anomalous). Timestamps are seconds since the epoch, naive times read as UTC.

Detection: scipy's periodogram proposes candidate periods (its strongest peaks plus one day and
one week); each candidate is then checked the way the detector will use it, by predicting every
cycle from the median of the previous cycles at the same phase. The candidate is kept only if
that prediction beats "the previous cycle's median" by a clear margin; a periodogram peak alone
is not evidence enough (spikes and trends put power everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage, signal

SeasonName = Literal["auto", "none", "hour_of_day", "day_of_week", "day_of_month"]

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
    lo, hi = np.quantile(grid, [0.005, 0.995])
    if hi - lo <= 0:
        return NO_SEASON
    clipped = np.clip(grid, lo, hi)
    start = max(len(clipped) - EVALUATED_POINTS, 2 * (len(clipped) // MIN_CYCLES) + POOLING[-1])
    if start >= len(clipped):
        return NO_SEASON
    flat = _flat_error(clipped, level_points, start)

    judged: dict[tuple[int, int], float] = {}

    def strength(cycle: int, neighbours: int) -> float:
        # The current season is usually among the candidates: judge each one once.
        if (cycle, neighbours) not in judged:
            judged[cycle, neighbours] = _season_strength(
                clipped, cycle, neighbours, level_points, start, lookback_cycles, flat
            )
        return judged[cycle, neighbours]

    shortest = max(MIN_CYCLE, -(-level_points // lookback_cycles))
    scored: list[tuple[float, int, int]] = []
    for cycle in _candidate_cycles(clipped, step, shortest):
        scored.append((strength(cycle, 0), cycle, 0))
    # Pooling neighbouring phases smooths noise but blurs sharp edges: the data decide, for the
    # most promising cycles only.
    leaders: list[int] = []
    for _, cycle, _ in sorted(scored, reverse=True):
        if cycle not in leaders and len(leaders) < LEADERS:
            leaders.append(cycle)
    for cycle in leaders:
        for neighbours in POOLING[1:]:
            if 2 * neighbours + 1 <= cycle // 4:
                scored.append((strength(cycle, neighbours), cycle, neighbours))
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
    freqs, power = signal.periodogram(grid, detrend="linear")
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


def _snap(cycle: int, step: float) -> int:
    """A peak within 5% of a day or a week is that calendar period (the grid is coarse)."""
    for calendar in (DAY, WEEK):
        exact = calendar / step
        if abs(cycle - exact) <= 0.05 * exact and abs(round(exact) * step - calendar) < 1:
            return int(round(exact))
    return cycle


def _flat_error(grid: np.ndarray, level_points: int, start: int) -> float:
    """Absolute error of the no-season prediction (median of the last `level_points`)."""
    width = max(1, min(level_points, start // 2))
    flat = _trailing_median(grid, width)
    return float(np.abs(grid[start:] - flat[start:]).sum())


def _season_strength(
    grid: np.ndarray,
    cycle: int,
    neighbours: int,
    level_points: int,
    start: int,
    lookback_cycles: int,
    flat_error: float,
) -> float:
    """1 - error of the seasonal prediction / error of the flat one, as the detector uses them.

    Seasonal: median of the same phase (and neighbours) over the `lookback_cycles` before, moved
    by the median of the last `level_points` seasonal residuals. Every candidate is judged on the
    same points, grid[start:], against the same flat error.
    """
    n = len(grid)
    k = min(lookback_cycles, (start - neighbours) // cycle)
    if k < MIN_CYCLES - 1 or start >= n:
        return -np.inf
    width = max(1, min(level_points, start // 2))
    first = max(k * cycle + neighbours, start - width)
    idx = np.arange(first, n)
    offsets = (
        np.arange(1, k + 1)[:, None] * cycle + np.arange(-neighbours, neighbours + 1)
    ).ravel()
    seasonal = _row_median(grid[idx[:, None] - offsets[None, :]])
    residual = grid[idx] - seasonal
    level = _trailing_median(residual, width)
    seasonal_err = float(np.abs(residual - level)[start - first :].sum())
    if flat_error <= 0:
        return 0.0
    return 1.0 - seasonal_err / flat_error


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
