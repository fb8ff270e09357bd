"""Column profiles of a sync run, accumulated batch by batch in bounded memory.

Per column: rows and nulls (exact), distinct values, and for numeric columns mean (exact), min,
max and quantiles. Batches arrive one at a time and the run's profile must not grow with the
table, so two statistics are sketches that merge across batches:

* Distinct values: summing `n_unique` per batch is wrong (a value seen in two batches counts
  twice), and an exact set grows with the data. Each value is hashed (polars' 64-bit hash) and
  the `k` smallest distinct hashes are kept, a K-minimum-values sketch. While fewer than `k`
  distinct hashes exist the count is exact; past that it is estimated as `(k - 1) / h_k` with
  `h_k` the k-th smallest hash scaled to [0, 1) (relative error about 1 / sqrt(k), 1.6% for
  k = 4096). Hashes are stable within one process, which is all a run needs.
* Quantiles: a uniform sample of the values without replacement, kept as the `reservoir`
  values with the smallest random keys (bottom-k sampling). Merging two samples is keeping the
  smallest keys of both, so the sample stays uniform over everything seen.

For the column monitors (`checks.monitoring.column_monitor`) a run also leaves, per column, its
exact null count and either a uniform sample of its numbers (the reservoir's smallest keys again)
or, for a text or boolean column with at most `CATEGORIES` distinct values, its exact value counts.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
import polars as pl

from pipewarden.records.column_samples import DELTA, SAMPLE_SIZE, ColumnSample
from pipewarden.records.metrics import MetricPoint
from pipewarden.records.values import utc

DISTINCT_SKETCH = 4096
RESERVOIR = 10_000
QUANTILES = {"p05": 0.05, "p50": 0.50, "p95": 0.95}
#: A text column with more distinct values than this is no category (emails, ids, JSON).
CATEGORIES = 50
_HASH_SPACE = float(2**64)


@dataclass
class ColumnProfile:
    """What is known about one column over the batches seen so far."""

    name: str
    numeric: bool = False
    rows: int = 0
    nulls: int = 0
    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    count: int = 0
    total: float = 0.0
    minimum: float = np.inf
    maximum: float = -np.inf
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    # Exact value counts of a category column; None when it is none (or has too many values).
    counts: dict[str, int] | None = None

    @property
    def null_rate(self) -> float | None:
        return self.nulls / self.rows if self.rows else None

    @property
    def distinct(self) -> float:
        """Distinct non-null values: exact below the sketch size, estimated above it."""
        if len(self.hashes) < DISTINCT_SKETCH:
            return float(len(self.hashes))
        kth = float(self.hashes[-1]) / _HASH_SPACE
        return (DISTINCT_SKETCH - 1) / kth

    @property
    def distinct_rate(self) -> float | None:
        """Distinct values per non-null value (1.0: every value is different)."""
        present = self.rows - self.nulls
        return min(1.0, self.distinct / present) if present else None

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        return float(np.quantile(self.sample, q)) if len(self.sample) else None

    def sample_values(self, size: int = SAMPLE_SIZE) -> np.ndarray:
        """A uniform sample of at most `size` numbers: the reservoir's smallest keys."""
        if len(self.keys) <= size:
            return self.sample
        return self.sample[np.argpartition(self.keys, size)[:size]]

    def merge(self, other: "ColumnProfile") -> None:
        """Fold another profile of the same column into this one."""
        self.numeric = self.numeric or other.numeric
        self.rows += other.rows
        self.nulls += other.nulls
        self.hashes = _smallest_unique(np.concatenate([self.hashes, other.hashes]))
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        self.sample, self.keys = _bottom_k(
            np.concatenate([self.sample, other.sample]), np.concatenate([self.keys, other.keys])
        )
        self.counts = _merged_counts(self.counts, other.counts)


def _merged_counts(a: dict[str, int] | None, b: dict[str, int] | None) -> dict[str, int] | None:
    if a is None or b is None:
        return None
    merged = dict(a)
    for value, n in b.items():
        merged[value] = merged.get(value, 0) + n
    return merged if len(merged) <= CATEGORIES else None


def _smallest_unique(hashes: np.ndarray) -> np.ndarray:
    """The sketch: the smallest distinct hashes, sorted (a sort beats np.unique's hashing)."""
    ordered = np.sort(hashes)
    if len(ordered) > 1:
        ordered = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
    return ordered[:DISTINCT_SKETCH]


def _bottom_k(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(keys) <= RESERVOIR:
        return values, keys
    keep = np.argpartition(keys, RESERVOIR)[:RESERVOIR]
    return values[keep], keys[keep]


def _profile_column(series: pl.Series, rng: np.random.Generator) -> ColumnProfile:
    present = series.drop_nulls()
    profile = ColumnProfile(series.name, rows=series.len(), nulls=series.null_count())
    if present.len():
        profile.hashes = _smallest_unique(present.hash(seed=0).to_numpy())
    dtype = series.dtype
    if dtype.is_numeric() and dtype != pl.Boolean:
        profile.numeric = True
        values = present.cast(pl.Float64).to_numpy()
        values = values[np.isfinite(values)]
        if len(values):
            profile.count = len(values)
            profile.total = float(values.sum())
            profile.minimum = float(values.min())
            profile.maximum = float(values.max())
            profile.sample, profile.keys = _bottom_k(values, rng.random(len(values)))
    elif dtype in (pl.String, pl.Boolean, pl.Categorical) and len(profile.hashes) <= CATEGORIES:
        # The sketch already counted the distinct values: only real categories are tallied.
        counts = present.cast(pl.String).value_counts()
        profile.counts = {str(v): int(n) for v, n in counts.iter_rows()}
    return profile


class ProfileAccumulator:
    """A run's profiles, fed one batch at a time (`add`), written as metric points (`points`).

    Also keeps the newest cursor value seen (the freshness of what was loaded) and the rows per
    cursor hour (volume by when rows changed in the source, not by when the sync ran).
    """

    def __init__(
        self,
        table_name: str = "",
        columns: Sequence[str] | None = None,
        cursor: str | None = None,
        seed: int = 0,
        key: Sequence[str] = (),
    ) -> None:
        self.table_name = table_name
        self.columns = list(columns) if columns is not None else None
        self.cursor = cursor
        self.key = list(key)
        self.rows = 0
        self.profiles: dict[str, ColumnProfile] = {}
        self.newest_cursor: Any = None
        self.rows_by_hour: dict[datetime, int] = {}
        # The rows counted per cursor hour: `(cursor, key)` after the old watermark (rows at or
        # before it were counted by the run that moved it there) and cursor before the cap.
        self.counted_after: tuple[Any, tuple[Any, ...] | None] | None = None
        self.counted_before: datetime | None = None
        self._rng = np.random.default_rng(seed)

    def count_between(
        self, after: tuple[Any, tuple[Any, ...] | None] | None, before: datetime | None
    ) -> None:
        """Count per cursor hour only the rows this run's watermark covers, each row once.

        `after` is the previous watermark `(cursor, key)`: rows at or before it were counted by
        the run that moved it there (a lookback re-reads them). `before` is the cap of this
        run's watermark (its start, or the oldest open transaction on the source): rows from
        there on are read again by the next run, which counts them once its watermark covers
        them.
        """
        self.counted_after, self.counted_before = after, before

    def add(self, batch: pl.DataFrame) -> None:
        """Profile one batch (the rows as read, or the valid rows loaded) and fold it in."""
        self.rows += batch.height
        names = self.columns if self.columns is not None else batch.columns
        for name in names:
            if name not in batch.columns:
                continue
            profile = _profile_column(batch[name], self._rng)
            if name in self.profiles:
                self.profiles[name].merge(profile)
            else:
                self.profiles[name] = profile
        if self.cursor and self.cursor in batch.columns and batch.height:
            self._add_cursor(batch)

    def merge(self, other: "ProfileAccumulator") -> None:
        """Fold another accumulator of the same table (e.g. from a parallel reader) into this."""
        self.rows += other.rows
        for name, profile in other.profiles.items():
            if name in self.profiles:
                self.profiles[name].merge(profile)
            else:
                self.profiles[name] = profile
        if other.newest_cursor is not None:
            self._newer(other.newest_cursor)
        for hour, n in other.rows_by_hour.items():
            self.rows_by_hour[hour] = self.rows_by_hour.get(hour, 0) + n

    def _add_cursor(self, batch: pl.DataFrame) -> None:
        assert self.cursor is not None
        values = batch[self.cursor]
        newest = values.max()
        if newest is not None:
            self._newer(newest)
        dtype = values.dtype
        if isinstance(dtype, (pl.Datetime, pl.Date)):
            if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
                values = values.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            keys = [k for k in self.key if k in batch.columns]
            frame = pl.DataFrame(
                [values.cast(pl.Datetime("us")).alias(_AT), *map(batch.get_column, keys)]
            )
            present = frame.filter(_counted(frame, keys, self.counted_after, self.counted_before))
            hours = present[_AT].dt.truncate("1h").value_counts()
            for hour, n in hours.iter_rows():
                key = utc(hour)
                self.rows_by_hour[key] = self.rows_by_hour.get(key, 0) + int(n)

    def _newer(self, value: Any) -> None:
        if isinstance(value, datetime):
            value = utc(value)
        try:
            if self.newest_cursor is None or value > self.newest_cursor:
                self.newest_cursor = value
        except TypeError:
            self.newest_cursor = value  # a cursor of another type than before: keep the latest

    def points(
        self, measured_at: datetime | None = None, volume_labels: dict[str, Any] | None = None
    ) -> list[MetricPoint]:
        """The profiles as metric points, labelled by column; rows per cursor hour at the hour
        (with `volume_labels`: a full load's hours are no delta's and stay out of volume checks)."""
        at = measured_at or datetime.now(UTC)
        out: list[MetricPoint] = []
        for name, p in self.profiles.items():
            labels = {"column": name}
            values: dict[str, float | None] = {
                "null_rate": p.null_rate,
                "distinct_rate": p.distinct_rate,
                "distinct_count": p.distinct if p.rows else None,
            }
            if p.numeric and p.count:
                values["mean"] = p.mean
                values["min"] = p.minimum
                values["max"] = p.maximum
                for metric, q in QUANTILES.items():
                    values[metric] = p.quantile(q)
            out += [
                MetricPoint(at, self.table_name, metric, v, labels)
                for metric, v in values.items()
                if v is not None
            ]
        out += [
            MetricPoint(hour, self.table_name, "rows_by_cursor_hour", float(n), volume_labels)
            for hour, n in sorted(self.rows_by_hour.items())
        ]
        return out

    def samples(self, measured_at: datetime, run_id: str, load: str = DELTA) -> list[ColumnSample]:
        """Per column: rows, nulls and a bounded sample or category counts (none for no rows)."""
        return [
            ColumnSample(
                measured_at=measured_at,
                table_name=self.table_name,
                run_id=run_id,
                column=name,
                rows=p.rows,
                nulls=p.nulls,
                values=p.sample_values() if p.numeric and p.count else None,
                counts=p.counts,
                load=load,
            )
            for name, p in self.profiles.items()
            if p.rows
        ]


def profile_batch(
    df: pl.DataFrame, columns: Sequence[str] | None = None, table_name: str = ""
) -> ProfileAccumulator:
    """One batch's profile: an accumulator that `merge`s with the other batches' ones."""
    accumulator = ProfileAccumulator(table_name, columns)
    accumulator.add(df)
    return accumulator


#: The cursor's column while rows are counted per hour (not a SQL name: no clash with a table's).
_AT = "pipewarden:cursor"


def _counted(
    frame: pl.DataFrame,
    key: Sequence[str],
    after: tuple[Any, tuple[Any, ...] | None] | None,
    before: datetime | None,
) -> pl.Expr:
    """Rows of `frame` (cursor in `_AT`, naive UTC) with `after < (cursor, key)`, cursor < `before`.

    The order is the sync's keyset order. A watermark without a key (capped at a moment) is
    before every row of its instant; one written before keys were kept, after all of them.
    """
    keep = pl.col(_AT).is_not_null()
    if before is not None:
        keep &= pl.col(_AT) < pl.lit(_naive_utc(before), pl.Datetime("us"))
    start = None if after is None else _naive_utc(after[0])
    if after is None or start is None:
        return keep
    at = pl.lit(start, pl.Datetime("us"))
    later = after[1]
    if later is None or len(later) != len(key):
        return keep & (pl.col(_AT) >= at if later == () else pl.col(_AT) > at)
    tie = pl.any_horizontal(
        pl.all_horizontal(
            *(pl.col(key[j]) == pl.lit(later[j]) for j in range(i)), pl.col(key[i]) > pl.lit(v)
        )
        for i, v in enumerate(later)
    )
    try:
        frame.head(1).select(tie)  # a key the watermark keeps in another type: compare cursors
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        return keep & (pl.col(_AT) > at)
    return keep & ((pl.col(_AT) > at) | ((pl.col(_AT) == at) & tie))


def _naive_utc(value: Any) -> datetime | None:
    """A cursor value as naive UTC wall-clock time, or None when it is no instant."""
    if isinstance(value, datetime):
        return utc(value).replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, time())
    return None
