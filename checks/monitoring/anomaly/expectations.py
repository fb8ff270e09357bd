"""What `SeriesBaseline.expect` says at many points at once, for a known set of learned points.

Between anomalies the replay only learns: every usable point enters the baseline. The baseline
at point i is then a function of the learned points before i alone, so the expectations of a
whole stretch are window statistics over arrays (`expectations`), not a loop. The arithmetic is
that of `baseline.py` (same medians, same interpolation), so the values match the point-by-point
replay; only the raw means (Poisson rates) are summed in another order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Cells of a window matrix sorted at once, and rows whose bucket windows are gathered at once:
# both bound the memory of long series.
CHUNK_CELLS = 1_000_000
ROWS_AT_ONCE = 2048


@dataclass
class Expectations:
    """Per point: the fields of `Expectation` and the residuals the point leaves when learned."""

    shape: np.ndarray
    centre: np.ndarray
    size: np.ndarray
    rate: np.ndarray  # raw means; zeros where the layout wants none (`Layout.raw_means`)
    lower: np.ndarray
    upper: np.ndarray
    level_residual: np.ndarray  # value - shape: what the level window learns
    pool_residual: np.ndarray  # value - centre: what the residual pool learns

    @classmethod
    def empty(cls, n: int) -> Expectations:
        return cls(*(np.full(n, np.nan) for _ in range(8)))


@dataclass(frozen=True)
class Layout:
    """How the baseline is shaped: the season's buckets and the window sizes."""

    buckets: np.ndarray
    n_buckets: int
    neighbours: int
    horizon: float
    level_points: int
    raw_means: bool = True  # the raw means are read by the count test only: gauges skip them

    @property
    def seasonal(self) -> bool:
        return self.n_buckets > 1


def expectations(
    times: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    held: np.ndarray,
    layout: Layout,
    rows: range,
    out: Expectations,
) -> None:
    """Writes into `out` the expectations at `rows` of a baseline that learned the `held` points
    before each row, in order; `out` already holds the rows before (their level residuals)."""
    start, end = rows.start, rows.stop
    for a in range(start, end, ROWS_AT_ONCE):  # bounds the window matrices of long series
        b = min(end, a + ROWS_AT_ONCE)
        stats = _bucket_stats(times, y, x, held, layout, a, b)
        out.shape[a:b], out.size[a:b], out.rate[a:b], out.lower[a:b], out.upper[a:b] = stats
    shape = out.shape[start:end]
    out.level_residual[start:end] = y[start:end] - shape
    level = np.zeros(end - start)
    if layout.seasonal:
        learned = np.nonzero(held[:end] & (out.size[:end] > 0))[0]
        level = _trailing_medians(
            out.level_residual[learned],
            np.searchsorted(learned, np.arange(start, end)),
            layout.level_points,
        )
    out.centre[start:end] = shape + level
    out.lower[start:end] += level  # the quartiles, moved by the level
    out.upper[start:end] += level
    out.pool_residual[start:end] = y[start:end] - out.centre[start:end]


def _bucket_stats(
    times: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    held: np.ndarray,
    layout: Layout,
    start: int,
    end: int,
) -> tuple[np.ndarray, ...]:
    """(median, count, raw mean, lower quartile, upper quartile) of each row's bucket windows."""
    rows = np.arange(start, end)
    zeros = np.zeros(end - start)
    learned = np.nonzero(held[:end])[0]
    if len(learned) == 0 or end <= start:
        return zeros, zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    if not layout.seasonal:
        raw = x if layout.raw_means else None
        return _rolling_stats(y, raw, learned, rows, layout.level_points)
    buckets = layout.buckets
    # Learned points ordered by (bucket, index): a bucket's window before row i is a slice.
    order = np.lexsort((learned, buckets[learned]))
    index = learned[order]
    keys = buckets[index] * len(times) + index
    ys, xs = y[index], x[index]
    if layout.seasonal:
        first = np.searchsorted(times, times[start:end] - layout.horizon, side="left")
    else:
        first = np.zeros(end - start, dtype=np.int64)
    # One column per neighbouring bucket (wrapping around the cycle), as BucketBaseline.centre.
    offsets = np.arange(-layout.neighbours, layout.neighbours + 1)
    bucket = (buckets[start:end, None] + offsets[None, :]) % layout.n_buckets * len(times)
    hi = np.searchsorted(keys, bucket + rows[:, None])
    lo = np.searchsorted(keys, bucket + first[:, None])
    if not layout.seasonal:
        lo = np.maximum(lo, hi - layout.level_points)
    count = hi - lo
    width = int(count.max())
    if width == 0:
        return zeros, zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    back = np.arange(width)
    # Cells beyond a window's count point at one extra entry past the end: NaN for the sorted
    # values (sorted last), 0.0 for the sums; one gather each instead of a gather and a where.
    where = np.where(back < count[:, :, None], hi[:, :, None] - 1 - back, len(index))
    where = where.reshape(end - start, -1)
    ranked = np.sort(np.append(ys, np.nan)[where], axis=1)
    total = np.append(xs, 0.0)[where].sum(axis=1) if layout.raw_means else zeros
    counts = count.sum(axis=1)
    some = counts > 0
    n = np.maximum(counts, 1)
    median, q25, q75 = _order_stats(ranked, n)
    median, q25, q75 = (np.where(some, v, 0.0) for v in (median, q25, q75))
    return median, counts.astype(np.float64), np.where(some, total / n, 0.0), q25, q75


def _rolling_stats(
    y: np.ndarray, x: np.ndarray | None, learned: np.ndarray, rows: np.ndarray, width: int
) -> tuple[np.ndarray, ...]:
    """`_bucket_stats` without a season (most series): one bucket whose window before row i is
    the last `width` learned points, so each row's cells are a run of the learned values,
    newest first, padded with NaN (0.0 for the sums) where fewer were learned; the same cells
    in the same order as the general gather, without its bucket keys and masks. Without `x`
    (a gauge) the raw means are zeros."""
    hi = np.searchsorted(learned, rows)
    counts = np.minimum(hi, width)
    wide = int(counts.max())
    zeros = np.zeros(len(rows))
    if wide == 0:
        return zeros, zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    # Learned values after `wide` pads, so that row i's cells are padded[hi_i + wide - 1 - back].
    where = (hi + (wide - 1))[:, None] - np.arange(wide)
    ranked = np.sort(np.concatenate((np.full(wide, np.nan), y[learned]))[where], axis=1)
    total = zeros if x is None else np.concatenate((np.zeros(wide), x[learned]))[where].sum(axis=1)
    some = counts > 0
    n = np.maximum(counts, 1)
    median, q25, q75 = _order_stats(ranked, n)
    median, q25, q75 = (np.where(some, v, 0.0) for v in (median, q25, q75))
    return median, counts.astype(np.float64), np.where(some, total / n, 0.0), q25, q75


def _order_stats(ranked: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, ...]:
    """Median, lower and upper quartile of the first n of each sorted row, as baseline.py has
    them (`median_of_sorted`, `quantile_of_sorted`), from one gather."""
    if len(n) and n[0] == n.min() == n.max():
        return _equal_order_stats(ranked, n[:1])
    last = n - 1
    quarter, three_quarters = 0.25 * last, 0.75 * last
    low25, low75 = quarter.astype(np.int64), three_quarters.astype(np.int64)
    mid = n // 2
    columns = np.stack(
        [
            np.maximum(mid - 1, 0),
            mid,
            low25,
            np.minimum(low25 + 1, last),
            low75,
            np.minimum(low75 + 1, last),
        ],
        axis=1,
    )
    v = ranked[np.arange(len(n))[:, None], columns]
    median = np.where(n % 2 == 1, v[:, 1], 0.5 * (v[:, 0] + v[:, 1]))
    q25 = np.where(low25 < last, v[:, 2] + (v[:, 3] - v[:, 2]) * (quarter - low25), v[:, 2])
    q75 = np.where(low75 < last, v[:, 4] + (v[:, 5] - v[:, 4]) * (three_quarters - low75), v[:, 4])
    return median, q25, q75


def _equal_order_stats(ranked: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, ...]:
    """`_order_stats` where every row holds the same count (`n`, one entry): most rows of most
    calls. Columns instead of a gather per cell; the same arithmetic, broadcast from one row."""
    size = int(n[0])
    last = n - 1
    quarter, three_quarters = 0.25 * last, 0.75 * last
    mid = size // 2
    upper = ranked[:, mid]
    median = upper if size % 2 else 0.5 * (ranked[:, max(mid - 1, 0)] + upper)
    return median, _between(ranked, quarter, size - 1), _between(ranked, three_quarters, size - 1)


def _between(ranked: np.ndarray, position: np.ndarray, last: int) -> np.ndarray:
    """Columns interpolated at a fractional `position` (one entry) of the first `last` + 1, as
    `quantile_of_sorted`."""
    low = int(position[0])
    if low >= last:
        return ranked[:, low]
    return ranked[:, low] + (ranked[:, low + 1] - ranked[:, low]) * (position - low)


def _median(ranked: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of the first n of each sorted row (`median_of_sorted`)."""
    rows, mid = np.arange(len(n)), n // 2
    upper, lower = ranked[rows, mid], ranked[rows, np.maximum(mid - 1, 0)]
    return np.where(n % 2 == 1, upper, 0.5 * (lower + upper))


def _trailing_medians(sequence: np.ndarray, counts: np.ndarray, width: int) -> np.ndarray:
    """Per count c, the median of the last `width` of sequence[:c]; 0.0 when c is 0."""
    if len(counts) == 0:
        return np.zeros(0)
    # Row c of the view over the NaN-padded sequence is the window just before sequence[c].
    windows = sliding_window_view(np.concatenate([np.full(width, np.nan), sequence]), width)
    first, last = int(counts.min()), int(counts.max())
    medians = np.zeros(last - first + 1)
    step = max(1, CHUNK_CELLS // width)
    for begin in range(first, last + 1, step):
        stop = min(begin + step, last + 1)
        ranked = np.sort(windows[begin:stop], axis=1)  # the NaN padding sorts last
        n = np.minimum(np.arange(begin, stop), width)
        medians[begin - first : stop - first] = np.where(
            n > 0, _median(ranked, np.maximum(n, 1)), 0.0
        )
    return medians[counts - first]


def median_bounds(
    sequence: np.ndarray, lengths: np.ndarray, cap: int, block: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the median of the last `cap` of sequence[:L] for each L of ascending `lengths`.

    One sort per `block` lengths: from a window W0 (sorted S0) to W, `a` entries were added and
    `r` dropped, so the k-th smallest of W lies in [S0[k - a], S0[k + r]]. Exact medians would
    take a loop over every point; these bounds settle most points at once.
    """
    low, high = np.full(len(lengths), -np.inf), np.full(len(lengths), np.inf)
    if len(lengths) == 0 or lengths[-1] == 0:
        return low, high
    # The windows of all blocks side by side, +inf after their ends, sorted in one call.
    # np.unique(..., return_inverse=True) of a non-decreasing array, without its sort.
    starts = lengths[0] + (lengths - lengths[0]) // block * block
    new_block = np.concatenate(([True], starts[1:] != starts[:-1]))
    bases, block_of = starts[new_block], np.cumsum(new_block) - 1
    firsts = np.maximum(0, bases - cap)
    sizes = bases - firsts
    columns = np.arange(max(1, int(sizes.max())))
    where = np.minimum(firsts[:, None] + columns, max(0, len(sequence) - 1))
    inside = columns < sizes[:, None]
    ranked = np.sort(np.where(inside, sequence[where] if len(sequence) else 0.0, np.inf), axis=1)
    base, available = bases[block_of], sizes[block_of]
    added = lengths - base
    dropped = np.maximum(0, lengths - cap) - np.maximum(0, base - cap)
    position = 0.5 * (np.minimum(lengths, cap) - 1)
    below = np.floor(position).astype(np.int64) - added
    above = np.ceil(position).astype(np.int64) + dropped
    ok = below >= 0
    low[ok] = ranked[block_of[ok], below[ok]]
    ok = (above < available) & (above >= 0)
    high[ok] = ranked[block_of[ok], above[ok]]
    # Interpolating between neighbours may round a hair outside them.
    margin = 1e-12 * (1.0 + np.abs(low)), 1e-12 * (1.0 + np.abs(high))
    with np.errstate(invalid="ignore"):
        return low - margin[0], high + margin[1]


class TrailingSorted:
    """The last `cap` entries of a growing sequence, kept sorted while it is walked forwards."""

    def __init__(self, sequence: list[float], cap: int) -> None:
        self.sequence = sequence
        self.cap = cap
        self.ranked: list[float] = []
        self.length = 0

    def at(self, length: int) -> list[float]:
        """The sorted last `cap` of sequence[:length]; lengths must not decrease."""
        if self.length == 0 or length - self.length > self.cap:
            self.ranked = sorted(self.sequence[max(0, length - self.cap) : length])
            self.length = length
        ranked, sequence, cap = self.ranked, self.sequence, self.cap
        for k in range(self.length, length):
            insort(ranked, sequence[k])
            if k >= cap:
                del ranked[bisect_left(ranked, sequence[k - cap])]
        self.length = length
        return ranked
