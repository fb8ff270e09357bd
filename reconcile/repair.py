"""Repair: changed and missing rows re-read from the source and merged, extra rows deleted.

Each chunk of keys is one warehouse transaction holding the merge, the deletes and their audit
records, so a crash leaves a chunk either repaired and audited or untouched. The source is the
reference: the merge (`Dialect.merge` without its cursor guard) writes the source's row even
where the warehouse's cursor is newer. Such a row is audited with its reason
(`source_cursor_back`: the warehouse's version once came from the source, whose cursor has
since gone back, as after a restore or a clock fix; `warehouse_ahead`: the warehouse's cursor is
past anything the syncs ever read, as after a hand edit) and reported, since either points at a
clock, a restore or a hand edit. Extra rows are deleted only if the source still lacks them at
repair time. Running a repair twice is harmless: the second finds nothing to do.

What the audit finally says is settled by the run after the repaired keys are compared again
(`settle_audit`): a row the repair could not change loses its record, and `hash_after` is the
warehouse row's hash as read back.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import polars as pl
import sqlalchemy as sa

from pipewarden.checks.validation.gate import BatchGate, GatedBatch, PassThroughGate
from pipewarden.db.engines import connect
from pipewarden.dialects import Dialect
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.reconcile.keys import Key, json_key, key_matcher
from pipewarden.reconcile.plan import TablePlan
from pipewarden.reconcile.row_diff import RowDiff
from pipewarden.records.reconcile_runs import RepairRecord, forget_repairs, record_repairs
from pipewarden.records.sync_ledgers import forget_ledger
from pipewarden.records.watermarks import Watermark, read_watermark
from pipewarden.sync.extract import select_list
from pipewarden.sync.schema import TableShape, staging_table
from pipewarden.sync.screen import screen

#: Why a repair wrote a source row older (by its cursor) than the warehouse's.
SOURCE_CURSOR_BACK = "source_cursor_back"
WAREHOUSE_AHEAD = "warehouse_ahead"
REASONS = {
    SOURCE_CURSOR_BACK: "the source's cursor went backwards",
    WAREHOUSE_AHEAD: "the warehouse's cursor is ahead of anything read from the source",
}


@dataclass
class RepairOutcome:
    """What a repair did (or, in a dry run, would do)."""

    upserted: int = 0
    deleted: int = 0
    skipped: int = 0
    audit: list[RepairRecord] = field(default_factory=list)
    #: Rows written although the warehouse's cursor was newer: key → reason (`REASONS`).
    backwards: dict[str, str] = field(default_factory=dict)

    @property
    def repaired(self) -> int:
        return self.upserted + self.deleted


def hash_text(digest: Any) -> str | None:
    """A row digest as text for records: 16 hex digits (plus the Python columns' part)."""
    if digest is None:
        return None
    if isinstance(digest, tuple):
        return ":".join(f"{d & ((1 << 64) - 1):016x}" for d in digest)
    return f"{digest & ((1 << 64) - 1):016x}"


def plan_repair(upserts: int, deletes: int) -> RepairOutcome:
    """What a repair would do, without touching anything (the dry run): its counts. No audit:
    nothing is repaired, and a million would-be records would cost hundreds of megabytes."""
    return RepairOutcome(upserted=upserts, deleted=deletes)


def repair(
    plan: TablePlan,
    diffs: list[RowDiff],
    run_id: str,
    chunk_size: int = 2000,
    gate: BatchGate | None = None,
    on_chunk: Callable[[list[Key]], None] | None = None,
) -> RepairOutcome:
    """Apply the repair for `diffs`, chunk by chunk, each chunk in one transaction.

    Re-read rows pass the table's gate as in a sync: rows the checks reject go to the
    quarantine, not into the warehouse. `on_chunk` hears the keys of each chunk once it is
    committed (progress).
    """
    upserts = [d for d in diffs if d.kind in ("missing", "changed")]
    extras = [d for d in diffs if d.kind == "extra"]
    outcome = RepairOutcome()
    with _Repair.staged(plan, run_id, gate or PassThroughGate()) as work:
        for chunk in _chunks(upserts, chunk_size):
            work.upsert(chunk, outcome)
            if on_chunk is not None:
                on_chunk([d.key for d in chunk])
        for chunk in _chunks(extras, chunk_size):
            if work.delete(chunk, outcome) and on_chunk is not None:
                on_chunk([d.key for d in chunk])
    return outcome


def _chunks(diffs: list[RowDiff], size: int) -> Iterator[list[RowDiff]]:
    for start in range(0, len(diffs), size):
        yield diffs[start : start + size]


class _Repair:
    """One repair's connections and staging table, and the steps each chunk goes through."""

    def __init__(
        self,
        plan: TablePlan,
        run_id: str,
        gate: BatchGate,
        src: sa.Connection,
        wh: sa.Connection,
    ) -> None:
        self.plan, self.run_id, self.gate, self.src, self.wh = plan, run_id, gate, src, wh
        source, target = plan.source, plan.target
        self.columns = [c.name for c in source.table.columns if c.name in target.table.c]
        self.dialect = target.dialect
        self.source_kinds = {
            c: source.dialect.kind_of(source.table.c[c].type) for c in self.columns
        }
        # The warehouse table was created from the source's kinds; staging follows them.
        shape = TableShape(target.table, self.source_kinds)
        self.staging = staging_table(self.dialect, shape, self.columns, uuid4().hex[:12])
        self.norm = key_matcher(plan.key_kinds) or _plain
        self.mark: Watermark | None = None

    @classmethod
    @contextmanager
    def staged(cls, plan: TablePlan, run_id: str, gate: BatchGate) -> Iterator["_Repair"]:
        """Both connections and the staging table, dropped however the repair ends."""
        with connect(plan.source.engine) as src, connect(plan.target.engine) as wh:
            work = cls(plan, run_id, gate, src, wh)
            with wh.begin():
                work.staging.create(wh)
                work.mark = read_watermark(wh, plan.name) if plan.cursor else None
            try:
                yield work
            finally:
                if wh.in_transaction():
                    wh.rollback()
                with wh.begin():
                    work.staging.drop(wh, checkfirst=True)

    def upsert(self, chunk: list[RowDiff], outcome: RepairOutcome) -> None:
        """Re-read the chunk's source rows, check them as a sync would, merge the valid ones
        and audit them, in one warehouse transaction."""
        gated = self._read_checked([d.key for d in chunk])
        rows = gated.valid
        with self.wh.begin():
            self.gate.keep_rejected(self.wh, self.plan.name, self.run_id, gated)
            self.dialect.empty_staging(self.wh, self.staging)
            behind = self._merge(rows) if rows.height else {}
            found = {self.norm(tuple(r)) for r in rows.select(self.plan.key).iter_rows()}
            audit = []
            for diff in chunk:
                if self.norm(diff.key) not in found:
                    outcome.skipped += 1  # gone from the source, or held by the checks
                    continue
                action = "insert" if diff.kind == "missing" else "update"
                before, after = hash_text(diff.target_hash), hash_text(diff.source_hash)
                reason = behind.get(self.norm(diff.key))
                audit.append(RepairRecord(json_key(diff.key), action, before, after, reason))
            record_repairs(self.wh, self.run_id, self.plan.name, audit)
            forget_ledger(self.wh, self.plan.name)  # the sync's re-read ledger is stale
        outcome.upserted += len(audit)
        outcome.audit.extend(audit)
        outcome.backwards.update(
            (json.dumps(r.key), r.reason) for r in audit if r.reason is not None
        )

    def _read_checked(self, keys: list[Key]) -> GatedBatch:
        read = _read_rows(
            self.src, self.plan, self.plan.source.dialect, self.source_kinds, self.columns, keys
        )
        self.src.rollback()
        screened = screen(read, self.plan.key, self.plan.cursor, self.dialect, self.source_kinds)
        return self.gate.check(screened.batch, screened.failures)

    def _merge(self, rows: pl.DataFrame) -> dict[Key, str]:
        """Stage the rows and merge them; the keys written although the warehouse's cursor was
        newer, with the reason."""
        self.dialect.bulk_load(self.wh, self.staging, rows)
        behind = _behind(self.wh, self.plan, self.staging, self.dialect, self.mark)
        # No cursor guard: the source's row wins even where it is older.
        target = self.plan.target.table
        self.wh.execute(self.dialect.merge(target, self.staging, self.plan.key, None, self.columns))
        return {self.norm(k): reason for k, reason in behind.items()}

    def delete(self, chunk: list[RowDiff], outcome: RepairOutcome) -> bool:
        """Delete the chunk's extra rows the source still lacks, and audit them, in one
        transaction; False when there was nothing to delete."""
        still = {self.norm(k) for k in _existing(self.src, self.plan, [d.key for d in chunk])}
        self.src.rollback()
        doomed = [d for d in chunk if self.norm(d.key) not in still]
        outcome.skipped += len(chunk) - len(doomed)
        if not doomed:
            return False
        target = self.plan.target
        keys = [d.target_key or d.key for d in doomed]
        with self.wh.begin():
            self.wh.execute(
                target.table.delete().where(self.dialect.key_in(target.key_columns, keys))
            )
            audit = [
                RepairRecord(json_key(d.key), "delete", hash_text(d.target_hash), None)
                for d in doomed
            ]
            record_repairs(self.wh, self.run_id, self.plan.name, audit)
            forget_ledger(self.wh, self.plan.name)  # the sync's re-read ledger is stale
        outcome.deleted += len(audit)
        outcome.audit.extend(audit)
        return True


def settle_audit(
    engine: sa.Engine,
    run_id: str,
    table_name: str,
    outcome: RepairOutcome,
    remaining: list[RowDiff],
) -> None:
    """Make the audit say what changed, once the repaired keys were compared again.

    A key that still differs and whose warehouse row is as it was before the repair was not
    changed: its record goes. One that still differs but did change (the source moved again
    meanwhile) keeps its record, with the hash the warehouse row has now.
    """
    now = {json.dumps(json_key(d.target_key or d.key)): d.target_hash for d in remaining}
    now.update({json.dumps(json_key(d.key)): d.target_hash for d in remaining})
    unchanged: list[str] = []
    moved: dict[str, str | None] = {}
    kept = []
    for record in outcome.audit:
        key = json.dumps(record.key)
        if key not in now:
            kept.append(record)
            continue
        after = hash_text(now[key])
        if after == record.hash_before:
            unchanged.append(key)
            if record.action == "delete":
                outcome.deleted -= 1
            else:
                outcome.upserted -= 1
            continue
        moved[key] = after
        kept.append(
            RepairRecord(record.key, record.action, record.hash_before, after, record.reason)
        )
    if unchanged or moved:
        with engine.begin() as conn:
            forget_repairs(conn, run_id, table_name, unchanged, moved)
    outcome.audit = kept
    for key in unchanged:
        outcome.backwards.pop(key, None)


def _behind(
    wh: sa.Connection,
    plan: TablePlan,
    staging: sa.Table,
    dialect: Dialect,
    mark: Watermark | None,
) -> dict[Key, str]:
    """Staged keys whose warehouse row has a newer cursor than the source's, with the reason."""
    cursor = plan.cursor
    if cursor is None:
        return {}
    target = plan.target.table
    staged_cursor = dialect.from_staging(staging.c[cursor], target.c[cursor])
    query = (
        sa.select(*(staging.c[k] for k in plan.key), target.c[cursor])
        .select_from(
            staging.join(target, sa.and_(*(staging.c[k] == target.c[k] for k in plan.key)))
        )
        .where(target.c[cursor] > staged_cursor)
    )
    width = len(plan.key)
    watermark = None if mark is None else mark.cursor
    out = {}
    for row in wh.execute(query):
        out[tuple(row[:width])] = _reason(row[width], watermark)
    return out


def _reason(warehouse_cursor: Any, watermark: Any) -> str:
    """Ahead of the watermark (the newest cursor any sync read): no sync wrote that version."""
    if watermark is None:
        return WAREHOUSE_AHEAD
    try:
        return WAREHOUSE_AHEAD if warehouse_cursor > watermark else SOURCE_CURSOR_BACK
    except TypeError:
        return SOURCE_CURSOR_BACK


def _plain(key: Key) -> Key:
    return tuple(key)


def _read_rows(
    conn: sa.Connection,
    plan: TablePlan,
    dialect: Dialect,
    kinds: dict[str, ColumnKind],
    columns: list[str],
    keys: list[Key],
) -> pl.DataFrame:
    """The source rows of `keys`; values no batch can hold are NULL, their text beside
    (`extract.select_list`), for `sync.screen` to hold."""
    table = plan.source.table
    selected, fetched = select_list(dialect, table, {c: kinds[c] for c in columns})
    query = sa.select(*selected).where(dialect.key_in(plan.source.key_columns, keys))
    return dialect.fetch_frame(conn, query, fetched)


def _existing(conn: sa.Connection, plan: TablePlan, keys: list[Key]) -> set[Key]:
    keys_in = plan.source.dialect.key_in(plan.source.key_columns, keys)
    query = sa.select(*plan.source.key_columns).where(keys_in)
    return {tuple(r) for r in conn.execute(query)}
