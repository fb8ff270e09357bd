"""Key segments for reconciliation: sampling their boundaries, numbering a row's segment, and
the settings of the one grouped scan that checksums them all."""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from pipewarden.dialects.keyset import Key, KeysetSQL


class SegmentSQL(KeysetSQL):
    """How a dialect samples keys and numbers segments; the defaults are portable SQL."""

    #: A random sample of a whole table costs about nothing here (`TABLESAMPLE`).
    cheap_sample: bool = False
    #: Collation that orders text by code point (None: the default already does).
    binary_collation: str | None = None
    #: Key-range slices the grouped scan is split into, one connection each: for engines that
    #: run a query on one core only.
    scan_slices: int = 1

    def server_version(self, conn: sa.Connection) -> int:
        """The server's version as PostgreSQL's `server_version_num` writes it, 0 if unknown:
        native hashes must be the same function on both sides."""
        return 0

    def estimated_rows(self, conn: sa.Connection, table: sa.Table) -> int | None:
        """The catalog's estimate of a table's rows, where it keeps one."""
        return None

    def random_order(self) -> sa.ColumnElement[Any]:
        """A random value per row, to order rows by."""
        return sa.func.random()

    def sample(
        self, table: sa.Table, fraction: float, filtered: bool
    ) -> tuple[sa.FromClause, sa.ColumnElement[bool] | None]:
        """About `fraction` of a table's rows, chosen at random: what to select from, and a
        condition to add (None: none). `filtered`: the query has a WHERE of its own."""
        return table, self.random_order() < fraction

    def bucket_number(
        self, conn: sa.Connection, keys: Sequence[Any], boundaries: list[Key]
    ) -> sa.ColumnElement[Any]:
        """The SQL that numbers a row's bucket, 0 … len(boundaries): bucket i holds keys in
        `[boundaries[i-1], boundaries[i])`. A binary search as nested CASE by default:
        log2(buckets) comparisons per row."""
        return self._case_tree(keys, boundaries, 0, len(boundaries) + 1)

    def _case_tree(
        self, keys: Sequence[Any], bounds: list[Key], low: int, high: int
    ) -> sa.ColumnElement[Any]:
        if high - low == 1:
            return sa.literal(low)
        middle = (low + high) // 2
        return sa.case(
            (
                self.keyset(keys, bounds[middle - 1], "<"),
                self._case_tree(keys, bounds, low, middle),
            ),
            else_=self._case_tree(keys, bounds, middle, high),
        )

    def prepare_scan(self, conn: sa.Connection, concurrent: bool) -> None:
        """Settings for one grouped checksum scan; `concurrent`: the other side's scan shares
        this server's cores, so intra-query parallelism only adds overhead."""

    def end_scan(self, conn: sa.Connection) -> None:
        """Undo `prepare_scan` (connections go back to a pool)."""
