"""The `--json` keys written an array at a time are the text written key by key."""

import json

import pytest

from pipewarden.reconcile import diff_json
from pipewarden.reconcile.diff_json import changed_pieces, key_pieces
from pipewarden.reconcile.diff_list import DiffList
from pipewarden.reconcile.keys import json_key_text
from pipewarden.reconcile.row_diff import RowDiff

KEYS = [0, 1, -1, 2**63 - 1, -(2**63), 42]
COLUMNS = [["a"], (), ["b", "é"], ("a", "b"), [], ["x"]]


def _joined(pieces: list[str]) -> str:
    return ", ".join(pieces)


@pytest.mark.parametrize("piece", [2, 10_000])
def test_integer_keys_as_arrays_are_the_keys_one_by_one(
    piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diff_json, "PIECE", piece)
    rows = [RowDiff("changed", (k,), 1, 2, c) for k, c in zip(KEYS, COLUMNS)]
    changed = DiffList("changed", rows)
    assert changed.int_columns() is not None
    one_by_one = [
        f'{{"key": {json_key_text(r.key)}, "columns": {json.dumps(list(r.columns))}}}' for r in rows
    ]
    assert _joined(list(changed_pieces(changed))) == ", ".join(one_by_one)
    assert _joined(list(changed_pieces(rows))) == ", ".join(one_by_one)
    assert _joined(list(key_pieces(changed))) == ", ".join(json_key_text(r.key) for r in rows)
    assert json.loads(f"[{_joined(list(key_pieces(changed)))}]") == [[k] for k in KEYS]


def test_other_keys_are_written_one_by_one() -> None:
    rows = [RowDiff("missing", ("a",)), RowDiff("missing", (1, "b")), RowDiff("missing", (2,))]
    missing = DiffList("missing", rows)
    assert missing.int_columns() is None
    assert _joined(list(key_pieces(missing))) == '["a"], [1, "b"], [2]'
    assert list(key_pieces(DiffList("extra"))) == []
