"""Buckets that follow row counts, and their checksums in one grouped scan per side.

Boundaries are keys taken from a random sample of one side, sorted by the database: every bucket
then holds about the same number of rows whatever the keys look like (sparse, skewed, text,
composite). Each side assigns its rows to buckets inside the database (`width_bucket` on
PostgreSQL, a balanced CASE tree elsewhere, a bisect function on SQLite) and returns a count and
an order-independent checksum (sum of 64-bit row hashes) per bucket: one scan, thousands of
buckets.
"""

import bisect
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from pipewarden.db.engines import connect
from pipewarden.reconcile.canonical import MASK64
from pipewarden.reconcile.keys import Key, compare_key, in_span
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
    slices = min(side.canonical.scan_slices, buckets.count)
    if slices <= 1:
        return bucket_checksums(conn, side, buckets.boundaries, where)
    edges = [round(i * buckets.count / slices) for i in range(slices + 1)]

    def scan(i: int) -> dict[int, BucketChecksum]:
        low, high = buckets.span(edges[i], edges[i + 1] - 1)
        part = in_span(side.key_columns, low, high, side.row_value_keyset)
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
    name = conn.dialect.name
    estimate: Any = None
    if name == "postgresql" and where is None:
        table = conn.dialect.identifier_preparer.format_table(side.table)
        estimate = conn.execute(
            sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": table},
        ).scalar()
    elif name in ("mysql", "mariadb") and where is None:
        estimate = conn.execute(
            sa.text(
                "SELECT table_rows FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = :t"
            ),
            {"t": side.table.name},
        ).scalar()
    if estimate is None or int(estimate) < 1000:
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
    if fraction < 1.0 and conn.dialect.name == "postgresql" and where is None:
        table = side.table.tablesample(sa.func.bernoulli(fraction * 100))
    keys = [side.ordered_key(table.c[k], k) for k in side.key]
    query = sa.select(*(c.label(k) for c, k in zip(keys, side.key))).select_from(table)
    if fraction < 1.0 and conn.dialect.name == "sqlite":
        query = query.where(sa.func.abs(sa.func.random()) % 1_000_000 < int(fraction * 1e6))
    elif fraction < 1.0 and conn.dialect.name == "postgresql" and where is not None:
        query = query.where(sa.func.random() < fraction)
    elif fraction < 1.0 and conn.dialect.name != "postgresql":
        query = query.where(sa.func.rand() < fraction)
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
    keys = side.key_columns
    if not boundaries:
        return sa.literal(0)
    if conn.dialect.name == "postgresql" and len(keys) == 1:
        values = [b[0] for b in boundaries]
        array = sa.bindparam("pw_boundaries", values, type_=pg.ARRAY(keys[0].type))
        return sa.func.width_bucket(keys[0], array)
    if conn.dialect.name == "sqlite":
        _register_bisect(conn, boundaries)
        return sa.func.pw_bucket(*keys)
    if conn.dialect.name in ("mysql", "mariadb") and len(keys) == 1 and _integers(boundaries):
        # INTERVAL(k, b1, b2, …) binary-searches constant integer lists: MariaDB's width_bucket.
        return sa.func.interval(keys[0], *(sa.literal_column(str(int(b[0]))) for b in boundaries))
    return _case_tree(keys, boundaries, 0, len(boundaries) + 1, side.row_value_keyset)


def _integers(boundaries: list[Key]) -> bool:
    return all(isinstance(b[0], int) and not isinstance(b[0], bool) for b in boundaries)


def _case_tree(keys: list[Any], bounds: list[Key], low: int, high: int, row_value: bool) -> Any:
    """Binary search as nested CASE: log2(buckets) comparisons per row."""
    if high - low == 1:
        return sa.literal(low)
    middle = (low + high) // 2
    return sa.case(
        (
            compare_key(keys, bounds[middle - 1], "<", row_value),
            _case_tree(keys, bounds, low, middle, row_value),
        ),
        else_=_case_tree(keys, bounds, middle, high, row_value),
    )


def _register_bisect(conn: sa.Connection, boundaries: list[Key]) -> None:
    raw = conn.connection.driver_connection

    def bucket(*key: Any) -> int:
        try:
            return bisect.bisect_right(boundaries, key)
        except TypeError:
            return 0  # not comparable with these boundaries: one bucket, narrowed whole

    raw.create_function("pw_bucket", len(boundaries[0]), bucket, deterministic=True)  # type: ignore[union-attr]


def bucket_checksums(
    conn: sa.Connection, side: Side, boundaries: list[Key], where: Any, concurrent: bool = False
) -> dict[int, BucketChecksum]:
    """Count and checksum of every non-empty bucket, in one grouped scan."""
    side.canonical.prepare(conn)
    side.canonical.prepare_scan(conn, concurrent)
    bucket = bucket_expression(conn, side, boundaries).label("pw_bucket")
    query = sa.select(bucket, sa.func.count(), side.canonical.sum64(side.row_hash()))
    if where is not None:
        query = query.where(where)
    query = query.group_by(sa.literal_column("1"))  # the label could collide with a column
    result = {}
    try:
        for number, rows, total in conn.execute(query).tuples():
            result[int(number)] = BucketChecksum(int(rows), int(total or 0) & MASK64)
    finally:
        side.canonical.end_scan(conn)
    return result
