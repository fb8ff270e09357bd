"""The differences' records written an array at a time are the text written row by row."""

import polars as pl
import pytest

from pipewarden.reconcile.diff_list import DiffList
from pipewarden.reconcile.diff_records import diff_frames
from pipewarden.reconcile.row_diff import RowDiff
from pipewarden.records.reconcile_runs import DiffRecord

EDGES = [0, 1, -1, 2**63 - 1, -(2**63), 12345678901234]


def _row_by_row(groups: list[list[RowDiff]], others: list[DiffRecord]) -> pl.DataFrame:
    """The same groups as plain lists: always the row-by-row path."""
    return pl.concat(diff_frames(groups, others))


@pytest.mark.parametrize("unsigned", [False, True])
def test_array_path_writes_what_rows_write(unsigned: bool) -> None:
    # Hashes past 2**63, all others not negative, are held in an unsigned array.
    hashes = [0, 1, 2**63, 2**64 - 1, 5, 2**63 + 7] if unsigned else [*EDGES[1:], -7]
    rows = {
        "missing": [RowDiff("missing", (k,), h, None) for k, h in zip(EDGES, hashes)],
        "extra": [RowDiff("extra", (k,), None, h) for k, h in zip(EDGES, reversed(EDGES))],
        "changed": [
            RowDiff("changed", (k,), h, -h if h != -(2**63) else 5, c)
            for k, h, c in zip(EDGES, EDGES, [["a"], [], ("a", "b"), ["b", "é"], (), ["a"]])
        ],
    }
    lists = [DiffList(kind, group) for kind, group in rows.items()]
    assert all(d.int_columns() is not None for d in lists)
    assert lists[0].int_columns().source_hashes.typecode == ("Q" if unsigned else "q")  # type: ignore[union-attr]
    others = [DiffRecord("key_null", [None], [], None, None)]
    arrays = pl.concat(diff_frames(lists, others))
    assert arrays.equals(_row_by_row(list(rows.values()), others))
    assert arrays.height == 19


def test_lists_that_are_not_all_integers_are_written_row_by_row() -> None:
    lists = [
        DiffList("missing", [RowDiff("missing", ("a",), 1, None)]),
        DiffList("changed", [RowDiff("changed", (1,), (1, 2), (3, 4), ["x"])]),
        DiffList("extra", [RowDiff("extra", (1,), None, 5), RowDiff("extra", (2,), 3, None)]),
    ]
    assert [d.int_columns() is None for d in lists] == [True, True, True]
    assert pl.concat(diff_frames(lists)).equals(_row_by_row([list(d) for d in lists], []))


def test_frames_hold_at_most_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipewarden.reconcile.diff_records as module

    monkeypatch.setattr(module, "DIFF_BATCH", 4)
    group = DiffList("missing", [RowDiff("missing", (k,), k, None) for k in range(10)])
    assert [f.height for f in diff_frames([group], [])] == [4, 4, 2]
