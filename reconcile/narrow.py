"""Narrowing: the `(key, row hash)` of every row in chosen key ranges, from one side.

Used for the buckets whose checksums differ, for the probe, and (over all buckets, in chunks) for
streaming comparison. Ranges use the primary key index; each query holds a bounded number of
ranges, and each chunk's rows are compared and dropped before the next is read.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pipewarden.dialects.canonical import MASK64, md5_hash64, python_part
from pipewarden.reconcile.keys import Key, in_span
from pipewarden.reconcile.plan import Side

Span = tuple[Key | None, Key | None]


@dataclass
class Digests:
    """One side's rows of a chunk: `hashes` maps the match key to the row digest.

    The match key is the key value itself for a one-column portable key (so the fetched
    `(key, hash)` rows become the dict at C speed), the key tuple for a composite one, and the
    normalized key (see `keys.key_matcher`) otherwise, with the fetched key kept in `raw`.
    """

    hashes: dict[Any, Any]
    raw: dict[Any, Key] | None = None
    single: bool = True

    def key(self, match: Any) -> Key:
        if self.raw is not None:
            return self.raw[match]
        return (match,) if self.single else match

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass(frozen=True)
class SpanGroup:
    """Buckets read together: their spans and the rows they are expected to hold."""

    buckets: list[int]
    spans: list[Span]
    rows: int


def group_spans(
    buckets: list[int],
    span_of: Callable[[int, int], Span],
    rows_of: Callable[[int], int],
    chunk_rows: int,
    max_spans: int = 400,
) -> Iterator[SpanGroup]:
    """Merge adjacent buckets into spans, and spans into groups of about `chunk_rows` rows.

    Each run's rows are summed as it grows (re-summing a run at every bucket was quadratic:
    seconds for the 15,000 buckets of a million rows)."""
    runs: list[tuple[int, int]] = []
    run_rows: list[int] = []
    for number in sorted(buckets):
        rows = rows_of(number)
        if runs and runs[-1][1] == number - 1 and run_rows[-1] < chunk_rows:
            runs[-1] = (runs[-1][0], number)
            run_rows[-1] += rows
        else:
            runs.append((number, number))
            run_rows.append(rows)
    group: list[tuple[int, int]] = []
    total = 0
    for run, rows in zip(runs, run_rows):
        group.append(run)
        total += rows
        if total >= chunk_rows or len(group) >= max_spans:
            yield _group(group, span_of, total)
            group, total = [], 0
    if group:
        yield _group(group, span_of, total)


def _group(
    runs: list[tuple[int, int]], span_of: Callable[[int, int], Span], rows: int
) -> SpanGroup:
    buckets = [b for first, last in runs for b in range(first, last + 1)]
    return SpanGroup(buckets, [span_of(a, b) for a, b in runs], rows)


def raw_rows(conn: sa.Connection, query: Any) -> list[tuple[Any, ...]]:
    """All rows as the driver's plain tuples: SQLAlchemy's per-row processing costs more than
    the database's hashing here, and every value selected is a plain int or str."""
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall())  # type: ignore[union-attr]
    finally:
        result.close()


def fetch_digests(
    conn: sa.Connection,
    side: Side,
    spans: list[Span],
    where: Any,
    matcher: Callable[[Key], Any] | None,
    unsigned: bool = False,
) -> Digests:
    """The rows of `spans` with their digests: the 64-bit row hash, with the Python columns'
    canonical hash beside it when there are any. `unsigned`: the two engines disagree on the
    sign of the hash, so bring it to 0 … 2^64-1."""
    side.dialect.prepare_hashing(conn)
    keys = side.key_columns
    width = len(keys)
    query = sa.select(*keys, side.row_hash().label("pw_hash"), *side.python_values())
    query = query.where(sa.or_(*(in_span(side.dialect, keys, lo, hi) for lo, hi in spans)))
    if where is not None:
        query = query.where(where)
    result = raw_rows(conn, query)
    specs = [side.specs[n] for n in side.python_columns]
    if width == 1 and matcher is None and not specs:
        if unsigned:
            return Digests({k: h & MASK64 for k, h in result})
        return Digests(dict(result))
    hashes: dict[Any, Any] = {}
    raw: dict[Any, Key] | None = {} if matcher else None
    for row in result:
        key = tuple(row[:width])
        digest: Any = int(row[width]) & MASK64 if unsigned else int(row[width])
        if specs:
            text = "|".join(python_part(v, s) for v, s in zip(row[width + 1 :], specs))
            digest = (digest, md5_hash64(text))
        if matcher is not None:
            match = matcher(key)
            raw[match] = key  # type: ignore[index]
        else:
            match = key[0] if width == 1 else key
        hashes[match] = digest
    return Digests(hashes, raw, single=width == 1)
