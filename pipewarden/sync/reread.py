"""Rows the lookback re-reads that the warehouse already holds: dropped before staging.

Why: every run re-reads the rows within its lookback of the watermark. Staging and merging them
costs what new rows cost, yet the merge leaves a row it holds as read as it is.

How: a run that moved the watermark keeps a ledger (`records.sync_ledgers`): for each row it
loaded whose cursor lies where the next run will read again (at or after `cursor.read_from` of
the new watermark), a 64-bit hash of its key and a 128-bit hash of all its values as loaded (the
batch after the gate; floats by their bits, so -0.0 and 0.0 differ). The next run drops a valid
row from staging when both hashes are in the ledger: merging a row again that was merged last
for its key is a no-op, whether it landed or the cursor guard kept a newer version. The key and
the cursor alone would not do: a MariaDB `DATETIME` row changed twice in one second keeps its
cursor. Dropped rows still reach the gate's quarantine step (they supersede held rows as before)
and count as unchanged.

Never a lost change: the ledger is used only if the run that wrote it is the one that last moved
the watermark (a run that failed after loading a batch leaves an older ledger), over the same
columns and types under the same polars version (`hash_rows` is stable within a version only);
not by a full refresh nor a backfill. A repair or a quarantine replay forgets it, and a run
writes its ledger only if nothing forgot it since the run began. Rows with floats inside lists
or structs disable it. A warehouse row changed by hand inside the lookback is no longer put back
by the next run: reconciliation finds it.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from pipewarden.records.sync_ledgers import StoredLedger
from pipewarden.sync.cursor import Lookback, Tick, read_from
from pipewarden.sync.extract import Position

#: Bumped when what a ledger entry hashes changes: older ledgers then skip nothing.
FORMAT = "1"
#: Entries kept, the newest in keyset order (24 bytes each): rows beyond are merged as before.
LIMIT = 250_000
_KEY_SEED, _SEEDS = 7, (11, 13)
_ENTRY = ["k", "h1", "h2"]


def shape_of(schema: pl.Schema, key: Sequence[str]) -> str | None:
    """What a ledger's hashes were taken over; None when a column cannot be hashed exactly."""
    if any(dtype.is_nested() and _holds_float(dtype) for dtype in schema.values()):
        return None
    if any(dtype == pl.Object for dtype in schema.values()):
        return None
    text = "|".join([FORMAT, pl.__version__, *key, *(f"{n}:{d}" for n, d in schema.items())])
    return hashlib.sha1(text.encode()).hexdigest()


def entries_of(batch: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Each row's key hash and content hashes (`k`, `h1`, `h2`)."""
    exact = batch.with_columns(
        _float_bits(batch[name]) for name, dtype in batch.schema.items() if dtype.is_float()
    )
    return pl.DataFrame(
        {
            "k": exact.select(key).hash_rows(_KEY_SEED),
            "h1": exact.hash_rows(_SEEDS[0]),
            "h2": exact.hash_rows(_SEEDS[1]),
        }
    )


class RereadLedger:
    """One run's use of the ledger: which re-read rows to drop, and the ledger it leaves."""

    def __init__(
        self,
        key: Sequence[str],
        cursor: str,
        lookback: Lookback,
        tick: Tick,
        previous: StoredLedger | None,
    ) -> None:
        self.key, self.cursor, self.lookback, self.tick = list(key), cursor, lookback, tick
        self.previous = previous
        self._known: pl.DataFrame | None = None
        self._shape: str | None = None
        self._usable = True
        self._kept: list[pl.DataFrame] = []
        self._threshold: Any = None

    def changed(self, batch: pl.DataFrame, position: Position | None) -> pl.DataFrame:
        """The rows of a batch (as it will load) that the warehouse may not hold as they are.

        Remembers the batch's rows the next run will read again; `position` is the watermark
        the batch moves to (None: rows without a cursor, which no delta reads again). Skipping
        is only a saving: a cursor polars cannot compare with its watermark value turns the
        ledger off for the run (every row merged, none left for the next) instead of failing.
        """
        try:
            return self._changed(batch, position)
        except pl.exceptions.PolarsError:
            self._usable, self._known, self._kept = False, None, []
            return batch

    def _changed(self, batch: pl.DataFrame, position: Position | None) -> pl.DataFrame:
        if not batch.height or not self._check_shape(batch.schema):
            return batch
        if position is None:
            self._forget_keys(batch)
            return batch
        self._threshold = read_from(position.cursor, self.lookback, self.tick)
        near = self._is_near(batch)
        if self._known is None:
            # Nothing to compare with: hash only the rows the next run may read again.
            near_rows = batch.filter(near)
            self._remember(near_rows, entries_of(near_rows, self.key))
            return batch
        entries = entries_of(batch, self.key)
        self._remember(batch.filter(near), entries.filter(near))
        known = entries.with_row_index("row").join(self._known, on=_ENTRY, how="semi")["row"]
        if not known.len():
            return batch
        return batch.filter(~pl.int_range(0, pl.len(), dtype=pl.UInt32).is_in(known.implode()))

    def stored(self, run_id: str) -> StoredLedger | None:
        """The ledger this run leaves, or None when it cannot leave one."""
        if not self._usable or self._shape is None:
            return None
        kept = [piece.filter(pl.col("c") >= self._threshold) for piece in self._kept]
        frame = pl.concat(kept) if kept else pl.DataFrame(schema=dict.fromkeys(_ENTRY, pl.UInt64))
        frame = frame.unique(subset="k", keep="last", maintain_order=True).tail(LIMIT)
        packed = frame.select(_ENTRY).to_numpy().astype(np.uint64, copy=False)
        return StoredLedger(run_id, self._shape, np.ascontiguousarray(packed).tobytes())

    def _check_shape(self, schema: pl.Schema) -> bool:
        """Whether this batch can be compared and remembered; the first batch sets the shape
        and decides whether the previous ledger applies."""
        if not self._usable:
            return False
        shape = shape_of(schema, self.key)
        if self._shape is None:
            self._shape = shape
            if shape is None:
                self._usable = False
                return False
            previous = self.previous
            if previous is not None and previous.shape == shape and previous.entries:
                rows = np.frombuffer(previous.entries, dtype=np.uint64).reshape(-1, 3)
                self._known = pl.DataFrame(
                    rows, schema=dict.fromkeys(_ENTRY, pl.UInt64), orient="row"
                )
        elif shape != self._shape:  # cannot happen within one run; never compare if it does
            self._usable, self._known = False, None
            return False
        return True

    def _is_near(self, batch: pl.DataFrame) -> pl.Series:
        """Which rows of the batch the next run reads again (evaluated once per batch)."""
        near = pl.col(self.cursor) >= self._threshold
        return batch.select(near.fill_null(False)).to_series()

    def _remember(self, near: pl.DataFrame, entries: pl.DataFrame) -> None:
        self._kept = [p.filter(pl.col("c") >= self._threshold) for p in self._kept]
        if near.height:
            self._kept.append(entries.with_columns(near[self.cursor].alias("c")))

    def _forget_keys(self, batch: pl.DataFrame) -> None:
        """Keys loaded again without a cursor are no longer what the ledger says."""
        keys = entries_of(batch, self.key)["k"].implode()
        self._kept = [p.filter(~pl.col("k").is_in(keys)) for p in self._kept]


def _holds_float(dtype: pl.DataType) -> bool:
    if dtype.is_float():
        return True
    inner = getattr(dtype, "inner", None)
    if inner is not None:
        return _holds_float(inner)
    fields = getattr(dtype, "fields", None) or []
    return any(_holds_float(f.dtype) for f in fields)


def _float_bits(values: pl.Series) -> pl.Series:
    """A float column as its 64 bits, NULL kept: hashing floats equates -0.0 with 0.0."""
    bits = values.cast(pl.Float64).fill_null(0.0).to_numpy().view(np.uint64)
    nulls = pl.Series(values.name, [None] * values.len(), dtype=pl.UInt64)
    return pl.Series(values.name, bits, dtype=pl.UInt64).zip_with(values.is_not_null(), nulls)
