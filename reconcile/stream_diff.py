"""Comparing two sides' `(key, hash)` rows chunk by chunk, with bounded memory.

Each chunk covers the same key ranges on both sides, so almost every key meets its counterpart
in the same chunk. Where the two engines order keys differently (text collations), a row can land
in another chunk on the other side: unmatched keys wait in `pending` until their counterpart
arrives or the run ends. `pending` only ever holds rows that differ, so it is bounded by the
differences found (and `--max-diffs`).

Where both sides must place every key in the same chunk (`same_chunk`: integer keys, which every
engine orders alike), a row unmatched in its chunk is final: it goes straight into the columnar
`missing` or `extra` (`diff_list.py`) instead of waiting, in the order it would have waited.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipewarden.reconcile.diff_list import DiffList
from pipewarden.reconcile.keys import Key
from pipewarden.reconcile.narrow import Digests
from pipewarden.reconcile.row_diff import RowDiff


@dataclass
class StreamComparison:
    """Running comparison state across chunks."""

    changed: DiffList = field(default_factory=lambda: DiffList("changed"))
    #: Unmatched rows are final (see the module docstring); otherwise they wait in `_only_*`.
    same_chunk: bool = False
    rows_compared: int = 0
    source_rows: int = 0
    target_rows: int = 0
    _only_source: dict[Any, tuple[Key, Any]] = field(default_factory=dict)
    _only_target: dict[Any, tuple[Key, Any]] = field(default_factory=dict)
    _missing: DiffList = field(default_factory=lambda: DiffList("missing"))
    _extra: DiffList = field(default_factory=lambda: DiffList("extra"))

    def add(self, source: Digests, target: Digests) -> None:
        """Compare one chunk's rows from both sides and keep only what differs."""
        self.source_rows += len(source)
        self.target_rows += len(target)
        self.rows_compared += max(len(source), len(target))
        left, right = source.hashes, target.hashes
        both = left.keys() & right.keys()
        for match in [m for m in both if left[m] != right[m]]:
            key = source.key(match)
            target_key = _same_or(key, target.key(match))
            self.changed.append(key, left[match], right[match], target_key)
        if self.same_chunk:
            for match in left.keys() - both:
                self._missing.append(source.key(match), left[match])
            for match in right.keys() - both:
                key = target.key(match)
                self._extra.append(key, None, right[match], key)
            return
        for match in left.keys() - both:
            self._meet(match, (source.key(match), left[match]), True)
        for match in right.keys() - both:
            self._meet(match, (target.key(match), right[match]), False)

    def _meet(self, match: Any, row: tuple[Key, Any], from_source: bool) -> None:
        """A row only one side had in its chunk: pair it with a waiting one, or wait."""
        other = self._only_target if from_source else self._only_source
        mine = self._only_source if from_source else self._only_target
        if match not in other:
            mine[match] = row
            return
        key, theirs = other.pop(match)
        left, right = (row[1], theirs) if from_source else (theirs, row[1])
        source_key, target_key = (row[0], key) if from_source else (key, row[0])
        if left != right:
            self.changed.append(source_key, left, right, target_key)

    def take_missing(self) -> DiffList:
        """`missing`, emptying the waiting rows as it goes: a million differences are not held
        twice over."""
        _drain(self._only_source, lambda k, h: self._missing.append(k, h))
        return self._missing

    def take_extra(self) -> DiffList:
        """`extra`, emptying the waiting rows as it goes."""
        _drain(self._only_target, lambda k, h: self._extra.append(k, None, h, k))
        return self._extra

    @property
    def missing(self) -> list[RowDiff]:
        waiting = [RowDiff("missing", k, h, None) for k, h in self._only_source.values()]
        return [*self._missing, *waiting]

    @property
    def extra(self) -> list[RowDiff]:
        waiting = [RowDiff("extra", k, None, h, (), k) for k, h in self._only_target.values()]
        return [*self._extra, *waiting]

    @property
    def found(self) -> int:
        waiting = len(self._only_source) + len(self._only_target)
        return len(self.changed) + len(self._missing) + len(self._extra) + waiting


def _drain(rows: dict[Any, tuple[Key, Any]], add: Callable[[Key, Any], None]) -> None:
    """Hand the waiting rows to `add` in the order they were found, then forget them."""
    for key, digest in rows.values():
        add(key, digest)
    rows.clear()


def _same_or(key: Key, other: Key) -> Key:
    """`key` itself when `other` holds the same values of the same types: one tuple a changed
    row, not two."""
    if other == key and all(type(a) is type(b) for a, b in zip(key, other)):
        return key
    return other
