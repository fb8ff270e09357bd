"""The differences a run records, as frames of text (`records.reconcile_runs`).

A `DiffList` whose key is one integer column and whose hashes are 64-bit integers (the common
case, and the one with a million differences) is formatted an array at a time: 100,000
differences took 0.40 s one `RowDiff` at a time and take 0.04 s so. Other lists are formatted
row by row by `json_key_text` and `hash_text`, whose text the array path writes exactly.
"""

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

import numpy as np
import polars as pl

from pipewarden.reconcile.diff_list import DiffList, IntColumns
from pipewarden.reconcile.keys import json_key_text
from pipewarden.reconcile.repair import hash_text
from pipewarden.reconcile.row_diff import RowDiff
from pipewarden.records.reconcile_runs import (
    DIFF_BATCH,
    DIFF_FRAME_COLUMNS,
    DiffRecord,
    columns_text,
    diff_frame,
)


def diff_frames(
    groups: Iterable[Sequence[RowDiff]], others: Iterable[DiffRecord] = ()
) -> Iterator[pl.DataFrame]:
    """Every difference of `groups`, in order, then `others`, `DIFF_BATCH` rows a frame."""
    for group in groups:
        if isinstance(group, DiffList) and (arrays := group.int_columns()) is not None:
            for start in range(0, len(group), DIFF_BATCH):
                yield _array_frame(group.kind, arrays, start, min(start + DIFF_BATCH, len(group)))
        else:
            yield from _row_frames(_records(group))
    yield from _row_frames(iter(others))


def _records(diffs: Iterable[RowDiff]) -> Iterator[DiffRecord]:
    for d in diffs:
        source, target = hash_text(d.source_hash), hash_text(d.target_hash)
        yield DiffRecord(d.kind, json_key_text(d.key), d.columns, source, target)


def _row_frames(records: Iterator[DiffRecord]) -> Iterator[pl.DataFrame]:
    while chunk := list(islice(records, DIFF_BATCH)):
        yield diff_frame(chunk)


def _array_frame(kind: str, arrays: IntColumns, start: int, stop: int) -> pl.DataFrame:
    """Rows `start` to `stop` as `_records` would write them."""
    size = stop - start
    keys = pl.Series(np.frombuffer(arrays.keys, dtype=np.int64)[start:stop])
    named = [columns_text(c) for c in arrays.named]
    picked = np.frombuffer(arrays.columns, dtype=np.dtype(f"i{arrays.columns.itemsize}"))
    frame = pl.DataFrame(
        {
            "diff": pl.repeat(kind, size, dtype=pl.String, eager=True),
            # `json_key_text` of a one-integer key: its decimal digits in brackets.
            "key_value": "[" + keys.cast(pl.String) + "]",
            "columns": pl.Series(named, dtype=pl.String).gather(picked[start:stop]),
            "source_hash": _hash_texts(arrays.source_hashes, start, stop),
            "target_hash": _hash_texts(arrays.target_hashes, start, stop),
        }
    )
    return frame.select(DIFF_FRAME_COLUMNS)


def _hash_texts(hashes: "array[int] | None", start: int, stop: int) -> pl.Series:
    """`hash_text` of each hash: its 64 bits as 16 hex digits (a negative one as unsigned)."""
    if hashes is None:
        return pl.repeat(None, stop - start, dtype=pl.String, eager=True)
    dtype = np.int64 if hashes.typecode == "q" else np.uint64
    bits = np.frombuffer(hashes, dtype=dtype)[start:stop].view(np.uint64)
    digits = bits.astype(">u8").tobytes().hex()
    return pl.Series([digits[i : i + 16] for i in range(0, len(digits), 16)], dtype=pl.String)
