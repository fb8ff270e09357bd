"""Differences of one kind held column by column, not as one Python object per row.

A million differing rows as `RowDiff` objects cost about 400 bytes each (the object, its key
tuple, two hash ints, its columns list): 400 MB. Here an integer key and each row hash are 8
bytes in an `array`, the differing columns an index into the few distinct lists that occur, and
a target key only where it is not the source key: about 30 bytes a difference. Rows are read
back as `RowDiff` one at a time, so every consumer iterates as before and the values it sees
(types included) are the ones appended.
"""

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, NamedTuple, overload

from pipewarden.reconcile.keys import Key
from pipewarden.reconcile.row_diff import RowDiff


class _Values:
    """One column of values: nothing while every value is None, a signed or unsigned 64-bit
    `array` while every value is such an int, else a plain list (any other value)."""

    def __init__(self) -> None:
        self.nones = 0
        self.data: array[int] | list[Any] | None = None

    def append(self, value: Any) -> None:
        data = self.data
        if data is None:
            if value is None:
                self.nones += 1
                return
            data = self.data = [None] * self.nones if self.nones else array("q")
        if type(data) is array:
            if type(value) is int:
                try:
                    data.append(value)
                    return
                except OverflowError:
                    if data.typecode == "q" and value > 0 and all(v >= 0 for v in data):
                        self.data = data = array("Q", data)
                        if value < 1 << 64:
                            data.append(value)
                            return
            self.data = data = list(data)
        data.append(value)  # type: ignore[union-attr]

    def __getitem__(self, index: int) -> Any:
        return None if self.data is None else self.data[index]


class _Keys:
    """Key tuples: the value of a one-column integer key in an `array`, any other key as its
    tuple in a list."""

    def __init__(self) -> None:
        self.ints: array[int] | None = array("q")
        self.tuples: list[Key] = []

    def append(self, key: Key) -> None:
        ints = self.ints
        if ints is not None:
            if len(key) == 1 and type(key[0]) is int:
                try:
                    ints.append(key[0])
                    return
                except OverflowError:
                    pass
            self.tuples = [(k,) for k in ints]
            self.ints = None
        self.tuples.append(key)

    def __getitem__(self, index: int) -> Key:
        if self.ints is not None:
            return (self.ints[index],)
        return self.tuples[index]


class IntColumns(NamedTuple):
    """A `DiffList`'s rows as its arrays: one integer key column, each hash absent in every
    row (None) or a 64-bit integer in every row, the columns as indexes into `named`."""

    keys: "array[int]"
    source_hashes: "array[int] | None"
    target_hashes: "array[int] | None"
    columns: "array[int]"
    named: list[Sequence[str]]


class DiffList(Sequence[RowDiff]):
    """Differences of one kind (`missing`, `extra` or `changed`), in the order appended."""

    def __init__(self, kind: str, rows: Iterable[RowDiff] = ()) -> None:
        self.kind = kind
        self._keys = _Keys()
        self._source = _Values()
        self._target = _Values()
        #: Index into `_named` of each row's columns; `_named[0]` is the `()` of an unnamed row.
        self._columns = array("l")
        self._named: list[Sequence[str]] = [()]
        self._named_at: dict[tuple[type, tuple[str, ...]], int] = {(tuple, ()): 0}
        #: The target's key where it is not the source key itself (another type from its driver).
        self._target_keys: dict[int, Key | None] = {}
        self._length = 0
        for row in rows:
            self.add(row)

    def append(
        self,
        key: Key,
        source_hash: Any = None,
        target_hash: Any = None,
        target_key: Key | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        index = self._length
        self._keys.append(key)
        self._source.append(source_hash)
        self._target.append(target_hash)
        self._columns.append(self._column_index(columns))
        if target_key is not (None if self.kind == "missing" else key):
            self._target_keys[index] = target_key
        self._length += 1

    def add(self, row: RowDiff) -> None:
        """Append a row read from another list (of the same kind)."""
        self.append(row.key, row.source_hash, row.target_hash, row.target_key, row.columns)

    def name_columns(self, index: int, columns: Sequence[str]) -> None:
        """Say which columns differ in row `index` (a changed row)."""
        self._columns[index] = self._column_index(columns)

    def _column_index(self, columns: Sequence[str]) -> int:
        """The few distinct column lists are each held once; a row keeps their index. The
        sequence type is kept too: a row reads back the list (a copy) or tuple it was given."""
        shape = (type(columns), tuple(columns))
        index = self._named_at.get(shape)
        if index is None:
            index = self._named_at[shape] = len(self._named)
            self._named.append(columns)
        return index

    def _row(self, index: int) -> RowDiff:
        key = self._keys[index]
        if index in self._target_keys:
            target_key = self._target_keys[index]
        else:
            target_key = None if self.kind == "missing" else key
        columns = self._named[self._columns[index]]
        return RowDiff(
            self.kind,
            key,
            self._source[index],
            self._target[index],
            list(columns) if type(columns) is list else columns,
            target_key,
        )

    def rows(self, start: int, stop: int) -> Iterator[RowDiff]:
        """Rows `start` to `stop` (exclusive), without reading those before them."""
        return (self._row(i) for i in range(start, min(stop, self._length)))

    def int_columns(self) -> IntColumns | None:
        """The rows as arrays, where they are all such (`IntColumns`); else None."""
        keys, source, target = self._keys.ints, self._source.data, self._target.data
        if keys is None or any(h is not None and type(h) is not array for h in (source, target)):
            return None
        return IntColumns(keys, source, target, self._columns, self._named)  # type: ignore[arg-type]

    def keys(self) -> Iterator[Key]:
        """Every row's (source) key, without building the rows."""
        return (self._keys[i] for i in range(self._length))

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> RowDiff: ...
    @overload
    def __getitem__(self, index: slice) -> "DiffList": ...
    def __getitem__(self, index: int | slice) -> "RowDiff | DiffList":
        if isinstance(index, slice):
            return DiffList(self.kind, (self._row(i) for i in range(*index.indices(self._length))))
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        return self._row(index)

    def __iter__(self) -> Iterator[RowDiff]:
        return self.rows(0, self._length)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, DiffList)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"DiffList({self.kind!r}, {list(islice(self, 3))!r}{' …' if len(self) > 3 else ''})"


__all__ = ["DiffList", "RowDiff"]
