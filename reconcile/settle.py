"""Differences as the sync would load them: the source row normalized and checked first.

The checksums compare the source as it is stored with the warehouse as it was loaded. For a
table with normalization rules or a schema, those differ by design (a currency `eur` loads as
`EUR`; a row with a negative amount is held in quarantine, not loaded). Before a difference is
reported or repaired, the source rows of the candidate `missing` and `changed` keys are re-read,
passed through the table's gate, and staged in the warehouse; a candidate stays a difference
only if merging its staged row would change the warehouse. Rows the gate rejects are reported
as held (they are in, or go to, the quarantine), never loaded by a repair.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from uuid import uuid4

import sqlalchemy as sa

from pipewarden.checks.validation.gate import BatchGate, PassThroughGate
from pipewarden.config import TableConfig
from pipewarden.db.engines import connect
from pipewarden.dialects import Dialect
from pipewarden.reconcile.diff_list import DiffList
from pipewarden.reconcile.keys import Key, key_matcher
from pipewarden.reconcile.plan import TablePlan
from pipewarden.reconcile.repair import _read_rows
from pipewarden.reconcile.row_diff import RowDiff
from pipewarden.sync.schema import TableShape, staging_table
from pipewarden.sync.screen import screen


@dataclass
class Settled:
    """Differences after the gate: what remains (in the groups given, in their order), what the
    checks hold back, what vanished."""

    groups: list[Sequence[RowDiff]]
    held: list[RowDiff] = field(default_factory=list)
    normalized: int = 0

    @property
    def diffs(self) -> Iterator[RowDiff]:
        return chain.from_iterable(self.groups)

    @property
    def count(self) -> int:
        return sum(len(group) for group in self.groups)


def table_gate(plan: TablePlan, table_config: TableConfig) -> BatchGate:
    from pipewarden.checks.validation.schema_gate import gate_for

    kinds = {c.name: plan.source.dialect.kind_of(c.type) for c in plan.source.table.columns}
    return gate_for(table_config, kinds)


def settle(
    plan: TablePlan,
    table_config: TableConfig,
    groups: list[Sequence[RowDiff]],
    chunk_size: int = 20_000,
) -> Settled:
    """Keep only the differences that loading the normalized source would change. `groups` are
    lists of differences (a `DiffList` each, or plain lists); what is kept of each stays in the
    same kind of list, so a million differences are never a million objects at once."""
    gate = table_gate(plan, table_config)

    def candidates() -> Iterator[RowDiff]:
        return (d for d in chain.from_iterable(groups) if d.kind in ("missing", "changed"))

    if isinstance(gate, PassThroughGate) or next(candidates(), None) is None:
        return Settled(groups)
    # Without checks only rows the sync cannot carry (`sync.screen`) are held; the rest stay.
    stage = gate.transforms
    source, target = plan.source, plan.target
    columns = [c.name for c in source.table.columns if c.name in target.table.c]
    dialect, source_dialect = target.dialect, source.dialect
    kinds = {c: source_dialect.kind_of(source.table.c[c].type) for c in columns}
    norm = key_matcher(plan.key_kinds) or tuple
    staging = staging_table(dialect, TableShape(target.table, kinds), columns, uuid4().hex[:12])
    still: set[Key] = set()
    held: set[Key] = set()
    with connect(source.engine) as src, connect(target.engine) as wh:
        if stage:
            with wh.begin():
                staging.create(wh)
        try:
            waiting = candidates()
            while keys := [d.key for d in islice(waiting, chunk_size)]:
                rows = _read_rows(src, plan, source_dialect, kinds, columns, keys)
                src.rollback()
                screened = screen(rows, plan.key, plan.cursor, dialect, kinds)
                gated = gate.check(screened.batch, screened.failures)
                if gated.rejected is not None:
                    held |= {norm(tuple(k)) for k in gated.rejected.select(plan.key).iter_rows()}
                if not stage:  # nothing to normalize: every candidate the gate passed stays
                    continue
                with wh.begin():
                    dialect.empty_staging(wh, staging)
                    if gated.valid.height:
                        dialect.bulk_load(wh, staging, gated.valid.select(columns))
                        still |= {
                            norm(tuple(k))
                            for k in _would_change(wh, plan, staging, dialect, columns)
                        }
        finally:
            if wh.in_transaction():
                wh.rollback()
            if stage:
                with wh.begin():
                    staging.drop(wh, checkfirst=True)
    if not held and not stage:
        return Settled(groups)  # every candidate the gate passed stays
    held_diffs: list[RowDiff] = []

    def stays(diff: RowDiff) -> bool:
        if diff.kind == "extra":
            return True
        key = norm(tuple(diff.key))
        if key in held:
            held_diffs.append(diff)
            return False
        return not stage or key in still  # else equal once normalized, or gone from the source

    kept = [_kept(group, stays) for group in groups]
    vanished = sum(len(g) for g in groups) - sum(len(g) for g in kept) - len(held_diffs)
    return Settled(kept, held_diffs, vanished)


def _kept(group: Sequence[RowDiff], stays: Callable[[RowDiff], bool]) -> Sequence[RowDiff]:
    """The differences of `group` that stay, in the same kind of list."""
    if isinstance(group, DiffList):
        return DiffList(group.kind, (d for d in group if stays(d)))
    return [d for d in group if stays(d)]


def _would_change(
    wh: sa.Connection, plan: TablePlan, staging: sa.Table, dialect: Dialect, columns: list[str]
) -> list[Key]:
    """Staged keys that are missing in the warehouse or whose merge would update the row."""
    target = plan.target.table
    staged = staging.alias("staged")
    values = {c: dialect.from_staging(staged.c[c], target.c[c]) for c in columns}
    joined = staged.outerjoin(target, sa.and_(*(staged.c[k] == target.c[k] for k in plan.key)))
    updates = [c for c in columns if c not in plan.key]
    # Any difference counts (the merge's cursor guard is the repair's business, not the diff's).
    differs = sa.or_(sa.false(), *(target.c[c].is_distinct_from(values[c]) for c in updates))
    query = (
        sa.select(*(staged.c[k] for k in plan.key))
        .select_from(joined)
        .where(sa.or_(target.c[plan.key[0]].is_(None), differs))
    )
    return [tuple(r) for r in wh.execute(query)]
