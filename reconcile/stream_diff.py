"""Comparing two sides' `(key, hash)` rows chunk by chunk, with bounded memory.

Each chunk covers the same key ranges on both sides, so almost every key meets its counterpart
in the same chunk. Where the two engines order keys differently (text collations), a row can land
in another chunk on the other side: unmatched keys wait in `pending` until their counterpart
arrives or the run ends. `pending` only ever holds rows that differ, so it is bounded by the
differences found (and `--max-diffs`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipewarden.reconcile.keys import Key
from pipewarden.reconcile.narrow import Digests


@dataclass(slots=True)
class RowDiff:
    """One row that differs: `missing` (source only), `extra` (target only) or `changed`."""

    kind: str
    key: Key
    source_hash: Any = None
    target_hash: Any = None
    #: The differing columns of a changed row (a tuple until named: one less object a row).
    columns: Sequence[str] = ()
    #: The key as the target's driver returned it (it may differ in type from the source's).
    target_key: Key | None = None


@dataclass
class StreamComparison:
    """Running comparison state across chunks."""

    changed: list[RowDiff] = field(default_factory=list)
    rows_compared: int = 0
    source_rows: int = 0
    target_rows: int = 0
    _only_source: dict[Any, tuple[Key, Any]] = field(default_factory=dict)
    _only_target: dict[Any, tuple[Key, Any]] = field(default_factory=dict)

    def add(self, source: Digests, target: Digests) -> None:
        """Compare one chunk's rows from both sides and keep only what differs."""
        self.source_rows += len(source)
        self.target_rows += len(target)
        self.rows_compared += max(len(source), len(target))
        left, right = source.hashes, target.hashes
        both = left.keys() & right.keys()
        for match in [m for m in both if left[m] != right[m]]:
            key = source.key(match)
            self.changed.append(
                RowDiff(
                    "changed", key, left[match], right[match],
                    target_key=_same_or(key, target.key(match)),
                )
            )  # fmt: skip
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
            self.changed.append(RowDiff("changed", source_key, left, right, target_key=target_key))

    def take_missing(self) -> list[RowDiff]:
        """`missing`, emptying the waiting rows as it goes: a million differences are not held
        twice over."""
        return _drain(self._only_source, lambda k, h: RowDiff("missing", k, h, None))

    def take_extra(self) -> list[RowDiff]:
        """`extra`, emptying the waiting rows as it goes."""
        return _drain(self._only_target, lambda k, h: RowDiff("extra", k, None, h, target_key=k))

    @property
    def missing(self) -> list[RowDiff]:
        return [RowDiff("missing", k, h, None) for k, h in self._only_source.values()]

    @property
    def extra(self) -> list[RowDiff]:
        return [RowDiff("extra", k, None, h, target_key=k) for k, h in self._only_target.values()]

    @property
    def found(self) -> int:
        return len(self.changed) + len(self._only_source) + len(self._only_target)


def _drain(rows: dict[Any, tuple[Key, Any]], make: Callable[[Key, Any], RowDiff]) -> list[RowDiff]:
    """The waiting rows as differences, in the order they were found, popped one by one."""
    out = []
    while rows:
        _, (key, digest) = rows.popitem()
        out.append(make(key, digest))
    out.reverse()
    return out


def _same_or(key: Key, other: Key) -> Key:
    """`key` itself when `other` holds the same values of the same types: one tuple a changed
    row, not two."""
    if other == key and all(type(a) is type(b) for a, b in zip(key, other)):
        return key
    return other
