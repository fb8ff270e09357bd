"""Buckets that follow row counts, and their checksums in one grouped scan per side.

Boundaries are keys taken from a random sample of one side, sorted by the database: every bucket
then holds about the same number of rows whatever the keys look like (sparse, skewed, text,
composite). Each side assigns its rows to buckets inside the database (its dialect's
`bucket_number`: `width_bucket` on PostgreSQL, a balanced CASE tree by default, a bisect function
on SQLite) and returns a count and an order-independent checksum (sum of 64-bit row hashes) per
bucket: one scan, thousands of buckets.
"""

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pipewarden.db.engines import connect
from pipewarden.dialects.canonical import MASK64
from pipewarden.reconcile.keys import Key, in_span
from pipewarden.reconcile.plan import Side

#: Sampled keys per bucket: more makes bucket sizes more even.
SAMPLES_PER_BUCKET = 6


@dataclass(frozen=True)
class BucketChecksum:
    """A bucket's row count and its checksum modulo 2^64."""

    rows: int
    checksum: int


@dataclass(frozen=True)
class Buckets:
    """Ascending boundaries; bucket i holds keys in `[boundaries[i-1], boundaries[i])`."""

    boundaries: list[Key]
    estimated_rows: int

    @property
    def count(self) -> int:
        return len(self.boundaries) + 1

    def span(self, first: int, last: int) -> tuple[Key | None, Key | None]:
        """Key range of buckets `first..last` inclusive (None: unbounded)."""
        low = self.boundaries[first - 1] if first > 0 else None
        high = self.boundaries[last] if last < len(self.boundaries) else None
        return low, high


def sliced_checksums(
    conn: sa.Connection, side: Side, buckets: "Buckets", where: Any
) -> dict[int, BucketChecksum]:
    """`bucket_checksums`, split into `scan_slices` key ranges scanned at once on their own
    connections when the engine runs each query on one core. Sums are order-independent, so
    a bucket seen by two slices (collations that disagree) simply adds up."""
    slices = min(side.dialect.scan_slices, buckets.count)
    if slices <= 1:
        return bucket_checksums(conn, side, buckets.boundaries, where)
    edges = [round(i * buckets.count / slices) for i in range(slices + 1)]

    def scan(i: int) -> dict[int, BucketChecksum]:
        low, high = buckets.span(edges[i], edges[i + 1] - 1)
        part = in_span(side.dialect, side.key_columns, low, high)
        condition = part if where is None else sa.and_(where, part)
        with connect(side.engine) as own:
            return bucket_checksums(own, side, buckets.boundaries, condition)

    with ThreadPoolExecutor(max_workers=slices) as pool:
        parts = list(pool.map(scan, range(slices)))
    merged: dict[int, BucketChecksum] = {}
    for part in parts:
        for number, value in part.items():
            seen = merged.get(number)
            merged[number] = (
                value
                if seen is None
                else BucketChecksum(
                    seen.rows + value.rows, (seen.checksum + value.checksum) & MASK64
                )
            )
    return merged


def estimate_rows(conn: sa.Connection, side: Side, where: Any) -> int:
    """A cheap row-count estimate: the catalog's when it has one, else count(*)."""
    estimate = None if where is not None else side.dialect.estimated_rows(conn, side.table)
    if estimate is None or estimate < 1000:
        query = sa.select(sa.func.count()).select_from(side.table)
        if where is not None:
            query = query.where(where)
        estimate = conn.execute(query).scalar()
    return int(estimate or 0)


def sample_buckets(
    conn: sa.Connection, side: Side, rows_per_bucket: int, max_buckets: int, where: Any
) -> Buckets:
    """Boundaries from a random sample of keys, sorted by the database."""
    rows = estimate_rows(conn, side, where)
    wanted = max(1, min(max_buckets, math.ceil(rows / rows_per_bucket)))
    if wanted == 1:
        return Buckets([], rows)
    fraction = min(1.0, wanted * SAMPLES_PER_BUCKET / max(rows, 1))
    table: Any = side.table
    condition = None
    if fraction < 1.0:
        table, condition = side.dialect.sample(side.table, fraction, where is not None)
    keys = [side.ordered_key(table.c[k], k) for k in side.key]
    query = sa.select(*(c.label(k) for c, k in zip(keys, side.key))).select_from(table)
    if condition is not None:
        query = query.where(condition)
    if where is not None:
        query = query.where(where)
    # Every n-th sampled key, chosen by the database: only the boundaries travel.
    step = max(1, SAMPLES_PER_BUCKET if fraction < 1.0 else rows_per_bucket)
    number = sa.func.row_number().over(order_by=keys).label("pw_n")
    ranked = query.add_columns(number).subquery()
    picked = sa.select(*(ranked.c[k] for k in side.key)).where(ranked.c.pw_n % step == 0)
    boundaries = [tuple(r) for r in conn.execute(picked.order_by(ranked.c.pw_n))]
    return Buckets(boundaries, rows)


def bucket_expression(conn: sa.Connection, side: Side, boundaries: list[Key]) -> Any:
    """The SQL that numbers a row's bucket (0 … len(boundaries))."""
    if not boundaries:
        return sa.literal(0)
    return side.dialect.bucket_number(conn, side.key_columns, boundaries)


def bucket_checksums(
    conn: sa.Connection, side: Side, boundaries: list[Key], where: Any, concurrent: bool = False
) -> dict[int, BucketChecksum]:
    """Count and checksum of every non-empty bucket, in one grouped scan."""
    side.dialect.prepare_hashing(conn)
    side.dialect.prepare_scan(conn, concurrent)
    bucket = bucket_expression(conn, side, boundaries).label("pw_bucket")
    query = sa.select(bucket, sa.func.count(), side.dialect.sum64(side.row_hash()))
    if where is not None:
        query = query.where(where)
    query = query.group_by(sa.literal_column("1"))  # the label could collide with a column
    result = {}
    try:
        for number, rows, total in conn.execute(query).tuples():
            result[int(number)] = BucketChecksum(int(rows), int(total or 0) & MASK64)
    finally:
        side.dialect.end_scan(conn)
    return result
