"""Robust baselines kept incrementally: sorted windows per season bucket, and a residual pool.

Medians and quantiles come straight from sorted lists, so replaying a series point by point
costs a few microseconds per point instead of a sort per point.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from math import inf
from typing import NamedTuple


class SortedWindow:
    """Values that arrived within a time horizon (and a maximum count), kept sorted.

    Also sums an auxiliary value per entry (the raw count, for Poisson rates), because the sorted
    values may be on a transformed scale.
    """

    def __init__(self, horizon: float, max_size: int) -> None:
        self.horizon = horizon
        self.max_size = max_size
        self.sorted: list[float] = []
        self._arrivals: deque[tuple[float, float, float]] = deque()
        self.aux_sum = 0.0

    def __len__(self) -> int:
        return len(self.sorted)

    def add(self, time: float, value: float, aux: float = 0.0) -> None:
        arrivals = self._arrivals
        arrivals.append((time, value, aux))
        insort(self.sorted, value)
        self.aux_sum += aux
        if len(arrivals) > self.max_size:
            self._drop_oldest()

    def expire(self, now: float) -> None:
        """Forget entries older than the horizon."""
        limit = now - self.horizon
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] < limit:
            self._drop_oldest()

    def clear(self) -> None:
        self.sorted.clear()
        self._arrivals.clear()
        self.aux_sum = 0.0

    def load(self, times: list[float], values: list[float], aux: list[float]) -> None:
        """Hold exactly these entries (the last `max_size` of them), oldest first."""
        keep = slice(max(0, len(values) - self.max_size), None)
        self._arrivals = deque(zip(times[keep], values[keep], aux[keep], strict=True))
        self.sorted = sorted(values[keep])
        self.aux_sum = sum(aux[keep])

    def in_arrival_order(self) -> list[float]:
        return [value for _, value, _ in self._arrivals]

    def _drop_oldest(self) -> None:
        _, value, aux = self._arrivals.popleft()
        del self.sorted[bisect_left(self.sorted, value)]
        self.aux_sum -= aux

    def quantile(self, q: float) -> float:
        return quantile_of_sorted(self.sorted, q)


def quantile_of_sorted(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default) of an already sorted list."""
    n = len(values)
    position = q * (n - 1)
    low = int(position)
    if low >= n - 1:
        return values[-1]
    frac = position - low
    return values[low] + (values[low + 1] - values[low]) * frac


class BucketBaseline:
    """Per season bucket, the included values of the last few cycles.

    The centre of a bucket is the median of its values and those of its direct neighbours
    (when the season pools neighbours); the raw mean and the quartiles feed the count test.
    """

    def __init__(self, n_buckets: int, neighbours: int, horizon: float, max_size: int) -> None:
        self.n_buckets = n_buckets
        self.neighbours = neighbours
        self.windows = [SortedWindow(horizon, max_size) for _ in range(n_buckets)]

    def add(self, time: float, bucket: int, value: float, raw: float) -> None:
        self.windows[bucket].add(time, value, raw)

    def clear(self) -> None:
        for window in self.windows:
            window.clear()

    def centre(self, now: float, bucket: int) -> tuple[float, int, float, float, float]:
        """(median, count, raw mean, lower quartile, upper quartile) of bucket and neighbours."""
        windows = self.windows
        if self.neighbours == 0:
            window = windows[bucket]
            window.expire(now)
            ranked, total = window.sorted, window.aux_sum
        else:
            ranked, total = [], 0.0
            n_buckets = self.n_buckets
            for offset in range(-self.neighbours, self.neighbours + 1):
                window = windows[(bucket + offset) % n_buckets]
                window.expire(now)
                ranked += window.sorted
                total += window.aux_sum
            ranked.sort()
        n = len(ranked)
        if n == 0:
            return 0.0, 0, 0.0, 0.0, 0.0
        # median_of_sorted and quantile_of_sorted, inlined: this runs for every point.
        mid = n // 2
        median = ranked[mid] if n % 2 else 0.5 * (ranked[mid - 1] + ranked[mid])
        last = n - 1
        position = 0.25 * last
        low = int(position)
        q25 = (
            ranked[low] + (ranked[low + 1] - ranked[low]) * (position - low)
            if low < last
            else ranked[-1]
        )
        position = 0.75 * last
        low = int(position)
        q75 = (
            ranked[low] + (ranked[low + 1] - ranked[low]) * (position - low)
            if low < last
            else ranked[-1]
        )
        return median, n, total / n, q25, q75


def median_of_sorted(values: list[float]) -> float:
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else 0.5 * (values[mid - 1] + values[mid])


class Expectation(NamedTuple):
    """What the baseline expects of one point, on the (possibly log) scale it compares on."""

    shape: float
    centre: float
    size: int
    rate: float
    lower_quartile: float
    upper_quartile: float


class SeriesBaseline:
    """Everything the detector has learned of one series: bucket medians, level, residual pool.

    Bucket medians give the seasonal shape, the median of recent residuals from that shape gives
    the level (with a season), and residuals from shape + level form the pool whose quantiles set
    the band. Only points the detector accepts are learned.
    """

    def __init__(
        self, n_buckets: int, neighbours: int, horizon: float, level_points: int, pool_points: int
    ) -> None:
        seasonal = n_buckets > 1
        self.seasonal = seasonal
        size = 1_000_000 if seasonal else level_points
        self.buckets = BucketBaseline(n_buckets, neighbours, horizon if seasonal else inf, size)
        self.level = SortedWindow(inf, level_points)
        self.pool = SortedWindow(inf, pool_points)

    def expect(self, time: float, bucket: int) -> Expectation:
        shape, size, rate, q25, q75 = self.buckets.centre(time, bucket)
        ranked = self.level.sorted
        level = median_of_sorted(ranked) if ranked else 0.0
        return Expectation(shape, shape + level, size, rate, q25 + level, q75 + level)

    def learn(self, time: float, bucket: int, value: float, raw: float, seen: Expectation) -> None:
        """Add an accepted point (`seen` is what was expected of it before)."""
        shape, centre, size = seen[:3]
        if size > 0:
            self.pool.add(time, value - centre)
            if self.seasonal:
                self.level.add(time, value - shape)
        self.buckets.windows[bucket].add(time, value, raw)

    def restart(self) -> None:
        """Forget shape and level (a level change), keep the spread."""
        self.buckets.clear()
        self.level.clear()
