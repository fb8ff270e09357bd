"""Repair: changed and missing rows re-read from the source and merged, extra rows deleted.

Each chunk of keys is one warehouse transaction holding the merge, the deletes and their audit
records, so a crash leaves a chunk either repaired and audited or untouched. The merge is the
sync's own (`Dialect.merge`): it never replaces a warehouse row whose cursor is newer than the
source's. Extra rows are deleted only if the source still lacks them at repair time. Running a
repair twice is harmless: the second finds nothing to do.
"""

from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import polars as pl
import sqlalchemy as sa

from pipewarden.db.engines import connect
from pipewarden.dialects import dialect_for
from pipewarden.dialects.kinds import ColumnKind, kind_of
from pipewarden.records.reconcile_runs import RepairRecord, record_repairs
from pipewarden.sync.gate import BatchGate, PassThroughGate
from pipewarden.sync.schema import TableShape, staging_table
from reconcile.keys import Key, json_key, key_in, key_matcher
from reconcile.plan import TablePlan
from reconcile.stream_diff import RowDiff


@dataclass
class RepairOutcome:
    """What a repair did (or, in a dry run, would do)."""

    upserted: int = 0
    deleted: int = 0
    skipped: int = 0
    audit: list[RepairRecord] = field(default_factory=list)

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


def plan_repair(diffs: list[RowDiff]) -> RepairOutcome:
    """What a repair would do, without touching anything (the dry run)."""
    outcome = RepairOutcome()
    for diff in diffs:
        action = (
            "delete" if diff.kind == "extra" else "insert" if diff.kind == "missing" else "update"
        )
        outcome.audit.append(
            RepairRecord(
                json_key(diff.key), action, hash_text(diff.target_hash), hash_text(diff.source_hash)
            )
        )
        if action == "delete":
            outcome.deleted += 1
        else:
            outcome.upserted += 1
    return outcome


def repair(
    plan: TablePlan,
    diffs: list[RowDiff],
    run_id: str,
    chunk_size: int = 2000,
    gate: BatchGate | None = None,
) -> RepairOutcome:
    """Apply the repair for `diffs`, chunk by chunk, each chunk in one transaction.

    Re-read rows pass the table's gate as in a sync: rows the checks reject go to the
    quarantine, not into the warehouse.
    """
    gate = gate or PassThroughGate()
    source, target = plan.source, plan.target
    columns = [c.name for c in source.table.columns if c.name in target.table.c]
    source_kinds = {c: kind_of(source.table.c[c].type) for c in columns}
    # The warehouse table was created from the source's kinds; staging follows them.
    shape = TableShape(target.table, source_kinds)
    dialect = dialect_for(target.engine.dialect.name)
    source_dialect = dialect_for(source.engine.dialect.name)
    upserts = [d for d in diffs if d.kind in ("missing", "changed")]
    extras = [d for d in diffs if d.kind == "extra"]
    outcome = RepairOutcome()
    norm = key_matcher(plan.key_kinds) or _plain
    staging = staging_table(dialect, shape, columns, uuid4().hex[:12])
    with connect(source.engine) as src, connect(target.engine) as wh:
        with wh.begin():
            staging.create(wh)
        try:
            for start in range(0, len(upserts), chunk_size):
                chunk = upserts[start : start + chunk_size]
                read = _read_rows(
                    src, plan, source_dialect, source_kinds, columns, [d.key for d in chunk]
                )
                src.rollback()
                gated = gate.check(read)
                rows = gated.valid
                with wh.begin():
                    gate.keep_rejected(wh, plan.name, run_id, gated)
                    dialect.empty_staging(wh, staging)
                    if rows.height:
                        dialect.bulk_load(wh, staging, rows)
                        wh.execute(
                            dialect.merge(target.table, staging, plan.key, plan.cursor, columns)
                        )
                    found = {norm(tuple(r)) for r in rows.select(plan.key).iter_rows()}
                    audit = []
                    for diff in chunk:
                        if norm(diff.key) in found:
                            action = "insert" if diff.kind == "missing" else "update"
                            audit.append(
                                RepairRecord(
                                    json_key(diff.key),
                                    action,
                                    hash_text(diff.target_hash),
                                    hash_text(diff.source_hash),
                                )
                            )
                        else:
                            outcome.skipped += 1  # gone from the source, or held by the checks
                    record_repairs(wh, run_id, plan.name, audit)
                outcome.upserted += len(audit)
                outcome.audit.extend(audit)
            for start in range(0, len(extras), chunk_size):
                chunk = extras[start : start + chunk_size]
                keys = [d.target_key or d.key for d in chunk]
                still = {norm(k) for k in _existing(src, plan, [d.key for d in chunk])}
                src.rollback()
                doomed = [k for k, d in zip(keys, chunk) if norm(d.key) not in still]
                outcome.skipped += len(keys) - len(doomed)
                if not doomed:
                    continue
                with wh.begin():
                    wh.execute(target.table.delete().where(key_in(target.key_columns, doomed)))
                    audit = [
                        RepairRecord(json_key(d.key), "delete", hash_text(d.target_hash), None)
                        for d in chunk
                        if norm(d.key) not in still
                    ]
                    record_repairs(wh, run_id, plan.name, audit)
                outcome.deleted += len(audit)
                outcome.audit.extend(audit)
        finally:
            if wh.in_transaction():
                wh.rollback()
            with wh.begin():
                staging.drop(wh, checkfirst=True)
    return outcome


def _plain(key: Key) -> Key:
    return tuple(key)


def _read_rows(
    conn: sa.Connection,
    plan: TablePlan,
    dialect: Any,
    kinds: dict[str, ColumnKind],
    columns: list[str],
    keys: list[Key],
) -> pl.DataFrame:
    table = plan.source.table
    query = sa.select(*(dialect.read_expression(table.c[c], kinds[c]) for c in columns)).where(
        key_in(plan.source.key_columns, keys)
    )
    schema = {c: kinds[c].polars_dtype() for c in columns}
    rows = [tuple(r) for r in conn.execute(query)]
    return pl.DataFrame(rows, schema=schema, orient="row")


def _existing(conn: sa.Connection, plan: TablePlan, keys: list[Key]) -> set[Key]:
    query = sa.select(*plan.source.key_columns).where(key_in(plan.source.key_columns, keys))
    return {tuple(r) for r in conn.execute(query)}
