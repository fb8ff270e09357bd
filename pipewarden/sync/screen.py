"""Rows the sync cannot carry, found row by row: a bad value holds its row, never its batch.

Each problem is a failure `(row, column, check, value)` like a check's, handed to the gate with the
batch, so the row goes to the quarantine with its reason and the rest of the batch loads:

- `unreadable.*`: a value no batch can hold (PostgreSQL `infinity`, MariaDB `0000-00-00`, SQLite
  `'not a date'` or invalid JSON). The source dialect finds it in the query (`Dialect.unreadable`);
  the row arrives with that column NULL and the value's text beside it (`extract.UNREADABLE`).
- `refused.*`: a value the warehouse cannot store (`Dialect.refused`: NUL in PostgreSQL text).
- `key.null`: a NULL in a primary key column (a source without the constraint).
- `key.duplicate`: one key on several rows of a batch. The row with the newest cursor is the
  key's version, as the merge would decide across batches; older ones are skipped (counted as
  unchanged). Rows tied on the newest cursor are all held: nothing says which one is right.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipewarden.dialects import Dialect
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.sync.extract import UNREADABLE

FAILURES = {"row": pl.UInt32, "column": pl.String, "check": pl.String, "value": pl.String}
#: Reasons a replay keeps: the held row's column is NULL, its value was never read.
UNREAD = "unreadable."


@dataclass(frozen=True)
class Screened:
    """A batch without the rows it should not load as they are, and why each row fails."""

    batch: pl.DataFrame
    failures: pl.DataFrame
    #: Older versions of a key whose newest version is in the batch too.
    skipped: int = 0


def no_failures() -> pl.DataFrame:
    return pl.DataFrame(schema=FAILURES)


def screen(
    batch: pl.DataFrame,
    key: Sequence[str],
    cursor: str | None,
    target: Dialect | None = None,
    kinds: dict[str, ColumnKind] | None = None,
) -> Screened:
    """Find the values and keys of `batch` the warehouse cannot take; drop older duplicates."""
    key = list(key)
    present = pl.all_horizontal(pl.col(k).is_not_null() for k in key)
    group = pl.struct(key) if len(key) > 1 else pl.col(key[0])
    # Hashing keys once tells the usual batch, without repeats, from one that needs a window.
    repeated = batch.height > 1 and batch.select(group.n_unique()).item() < batch.height
    skipped = 0
    if repeated and cursor is not None and cursor in batch.columns:
        newest = pl.col(cursor).max().over(key)
        older = present & group.is_duplicated() & ~pl.col(cursor).eq_missing(newest)
        skip = batch.select(older.alias("skip")).to_series()
        skipped = int(skip.sum())
        if skipped:
            batch = batch.filter(~skip)
    flags = [c for c in batch.columns if c.startswith(UNREADABLE)]
    parts = [_unreadable(batch, flag) for flag in flags]
    batch = batch.drop(flags)
    if target is not None:
        parts += [
            _failing(batch, mask, column, check, pl.col(column).cast(pl.String))
            for column, check, mask in target.refused(batch, kinds or {})
        ]
    key_text = _key_text(batch, key)
    parts.append(_failing(batch, ~present, ",".join(key), "key.null", key_text))
    if repeated:
        duplicate = present & group.is_duplicated()
        parts.append(_failing(batch, duplicate, ",".join(key), "key.duplicate", key_text))
    return Screened(batch, pl.concat(parts), skipped)


def _unreadable(batch: pl.DataFrame, flag: str) -> pl.DataFrame:
    check, _, column = flag[len(UNREADABLE) :].partition(":")
    return _failing(batch, pl.col(flag).is_not_null(), column, check, pl.col(flag))


def _failing(
    batch: pl.DataFrame, mask: pl.Expr, column: str, check: str, value: pl.Expr
) -> pl.DataFrame:
    """The rows of `batch` where `mask` holds, as failures (the value turned to text only there)."""
    return (
        batch.lazy()
        .with_row_index("pipewarden:row")
        .filter(mask.fill_null(False))
        .select(
            pl.col("pipewarden:row").cast(pl.UInt32).alias("row"),
            pl.lit(column, pl.String).alias("column"),
            pl.lit(check, pl.String).alias("check"),
            value.cast(pl.String).alias("value"),
        )
        .collect()
    )


def _key_text(batch: pl.DataFrame, key: Sequence[str]) -> pl.Expr:
    texts = [pl.col(k).cast(pl.String).fill_null("null") for k in key]
    if len(texts) == 1:
        return texts[0]
    return pl.concat_str([pl.lit(f"{k}=") + t for k, t in zip(key, texts)], separator=", ")


def unread_failures(reasons: Iterable[Sequence[dict[str, Any]]]) -> pl.DataFrame:
    """The `unreadable.*` reasons of held rows (in order) as failures: a replay keeps them held,
    since the column was never read and the row would load with it NULL."""
    rows = [
        (i, r.get("column"), r.get("check"), r.get("value"))
        for i, row in enumerate(reasons)
        for r in row
        if str(r.get("check", "")).startswith(UNREAD)
    ]
    return pl.DataFrame(rows, schema=FAILURES, orient="row")
