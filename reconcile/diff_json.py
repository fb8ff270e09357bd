"""The differing keys of a `--json` report as JSON text, many keys a piece.

A `DiffList` whose key is one integer column is formatted an array at a time (100,000 keys:
0.16 s one key at a time); any other list key by key with `json_key_text`, whose text the
array path writes exactly.
"""

import json
from collections.abc import Iterator, Sequence
from itertools import islice

import numpy as np
import polars as pl

from pipewarden.reconcile.diff_list import DiffList
from pipewarden.reconcile.keys import json_key_text
from pipewarden.reconcile.row_diff import RowDiff

#: Keys a piece of text.
PIECE = 10_000


def key_pieces(diffs: Sequence[RowDiff]) -> Iterator[str]:
    """The keys as JSON lists (`[1]`), joined by `, ` within a piece."""
    if isinstance(diffs, DiffList) and diffs.int_columns() is not None:
        for _, keys in _int_keys(diffs):
            yield _bracketed(keys).str.join(", ").item()
        return
    keys_of = diffs.keys() if isinstance(diffs, DiffList) else (d.key for d in diffs)
    yield from _joined(map(json_key_text, keys_of))


def changed_pieces(diffs: Sequence[RowDiff]) -> Iterator[str]:
    """Each changed row as `{"key": [1], "columns": ["name"]}`, joined by `, ` within a piece."""
    arrays = diffs.int_columns() if isinstance(diffs, DiffList) else None
    if arrays is None:
        rows = (
            f'{{"key": {json_key_text(r.key)}, "columns": {json.dumps(list(r.columns))}}}'
            for r in diffs
        )
        yield from _joined(rows)
        return
    named = pl.Series([json.dumps(list(c)) for c in arrays.named], dtype=pl.String)
    picked = np.frombuffer(arrays.columns, dtype=np.dtype(f"i{arrays.columns.itemsize}"))
    for start, keys in _int_keys(diffs):
        columns = named.gather(picked[start : start + len(keys)])
        text = '{"key": ' + _bracketed(keys) + ', "columns": ' + columns + "}"
        yield text.str.join(", ").item()


def _int_keys(diffs: Sequence[RowDiff]) -> Iterator[tuple[int, pl.Series]]:
    """A `DiffList`'s integer keys a piece at a time (nothing for any other list)."""
    arrays = diffs.int_columns() if isinstance(diffs, DiffList) else None
    if arrays is None:
        return
    keys = np.frombuffer(arrays.keys, dtype=np.int64)
    for start in range(0, len(keys), PIECE):
        yield start, pl.Series(keys[start : start + PIECE])


def _bracketed(keys: pl.Series) -> pl.Series:
    """`json_key_text` of one-integer keys: the decimal digits in brackets."""
    return "[" + keys.cast(pl.String) + "]"


def _joined(texts: Iterator[str]) -> Iterator[str]:
    while piece := list(islice(texts, PIECE)):
        yield ", ".join(piece)
