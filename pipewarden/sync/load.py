"""Loading a batch: staging table, one merge, and the watermark, in one transaction.

A crash anywhere leaves either the whole batch with its watermark or neither, so a rerun never
skips or doubles a row. The merge never takes a row back to an older version (the cursor decides)
and counts a re-read row as loaded only when its content changed.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import polars as pl
import sqlalchemy as sa

from pipewarden.checks.validation.gate import BatchGate, GatedBatch
from pipewarden.dialects import Dialect
from pipewarden.records.watermarks import write_watermark
from pipewarden.sync.extract import Position
from pipewarden.sync.reread import RereadLedger
from pipewarden.sync.schema import TableShape, staging_table


@dataclass(frozen=True)
class BatchResult:
    rows_loaded: int
    rows_unchanged: int
    rows_quarantined: int


class BatchLoader:
    """Loads batches through a staging table on one warehouse connection.

    The staging table is temporary, so it lives as long as the database session; its name is
    derived from the target and the columns, so later runs on the same pooled connection reuse
    it instead of creating and dropping a table every run (which costs an idle run most of its
    time). Every batch empties it first.
    """

    def __init__(
        self,
        conn: sa.Connection,
        dialect: Dialect,
        target: TableShape,
        columns: Sequence[str],
        key: Sequence[str],
        cursor: str | None,
        fresh: bool = False,
        ledger: RereadLedger | None = None,
    ) -> None:
        self.conn = conn
        #: The target was empty when the run began: batches are appended without a merge.
        self.fresh = fresh and dialect.direct_insert
        self.dialect = dialect
        self.target = target
        self.columns = list(columns)
        self.key = list(key)
        self.cursor = cursor
        #: Drops re-read rows the warehouse holds as they are before staging (`sync.reread`).
        self.ledger = ledger
        shape = "|".join(f"{c}:{target.kinds[c]}" for c in self.columns)
        digest = hashlib.sha1(f"{target.table.name}|{shape}".encode()).hexdigest()[:16]
        self.staging = staging_table(dialect, target, self.columns, digest)
        self._merge = dialect.merge(target.table, self.staging, self.key, cursor, self.columns)

    def __enter__(self) -> "BatchLoader":
        created: set[str] = self.conn.connection.info.setdefault("pipewarden_staging", set())
        if self.staging.name not in created:
            with self.conn.begin():
                self.staging.create(self.conn, checkfirst=True)
            created.add(self.staging.name)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn.in_transaction():
            self.conn.rollback()

    def load(
        self,
        gated: GatedBatch,
        gate: BatchGate,
        table_name: str,
        run_id: str,
        watermark: Position | None,
    ) -> BatchResult:
        """Merge the valid rows, keep the rejected ones, move the watermark: all or nothing."""
        batch = gated.valid.select(self.columns)
        if self.ledger is not None:
            batch = self.ledger.changed(batch, watermark)
        with self.conn.begin():
            appended = self._append(batch) if self.fresh else None
            loaded = self._merge_batch(batch) if appended is None else appended
            quarantined = gate.keep_rejected(self.conn, table_name, run_id, gated)
            if watermark is not None:
                write_watermark(self.conn, table_name, watermark.cursor, watermark.key, run_id)
        # A held row read again unchanged is not quarantined again: it counts as unchanged.
        unchanged = gated.valid.height + gated.rejected_count - loaded - quarantined
        return BatchResult(loaded, unchanged, quarantined)

    def _merge_batch(self, batch: pl.DataFrame) -> int:
        self.dialect.empty_staging(self.conn, self.staging)
        if not batch.height:
            return 0
        self.dialect.bulk_load(self.conn, self.staging, batch)
        result = self.conn.execute(self._merge, execution_options={"preserve_rowcount": True})
        return max(result.rowcount, 0)

    def _append(self, batch: pl.DataFrame) -> int | None:
        """Rows appended straight into a target that was empty when the run began, or None.

        A first load has nothing to merge with, so staging and merge are skipped. A key this run
        already loaded (the row changed while the run read) breaks the primary key: the
        savepoint takes the batch back, and this batch and the rest of the run merge.
        """
        duplicate = (sa.exc.IntegrityError, self.conn.dialect.loaded_dbapi.IntegrityError)
        savepoint = self.conn.begin_nested()
        try:
            appended = self.dialect.bulk_insert(self.conn, self.target.table, batch)
        except duplicate:
            savepoint.rollback()
            appended = False
        else:
            savepoint.commit()
        if not appended:
            self.fresh = False
            return None
        return batch.height


def backfill(
    conn: sa.Connection,
    dialect: Dialect,
    target: TableShape,
    key: Sequence[str],
    batch: pl.DataFrame,
    columns: Sequence[str],
) -> int:
    """Set `columns` of existing warehouse rows from a batch of `(key…, columns…)`; no inserts."""
    shape = TableShape(target.table, {n: target.kinds[n] for n in [*key, *columns]})
    staging = staging_table(dialect, shape, [*key, *columns], uuid4().hex[:12])
    t = target.table
    with conn.begin():
        staging.create(conn)
        dialect.bulk_load(conn, staging, batch)
        match = sa.and_(*(staging.c[k] == t.c[k] for k in key))
        values: dict[str, Any] = {
            c: sa.select(staging.c[c]).where(match).scalar_subquery() for c in columns
        }
        updated = conn.execute(t.update().where(sa.exists().where(match)).values(**values)).rowcount
        staging.drop(conn)
    return max(updated, 0)
