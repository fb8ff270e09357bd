"""`--check-parity`: hash a sample of rows on both sides column by column, before a full run.

A column whose canonical form differs between the engines (a time zone, a precision, a type the
rules do not cover) makes nearly every sampled row differ in that column; real differences touch
few. The report names each column with mismatches and how many of the sampled rows they hit.
"""

from dataclasses import dataclass, field

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import connect
from pipewarden.reconcile.columns import column_hashes, differing_columns, ordered_columns
from pipewarden.reconcile.keys import Key, key_matcher
from pipewarden.reconcile.plan import Side, plan_table


@dataclass
class ParityReport:
    """Per column: sampled rows present on both sides whose canonical values differ."""

    table: str
    rows_sampled: int
    mismatches: dict[str, int] = field(default_factory=dict)

    @property
    def suspicious(self) -> list[str]:
        """Columns that differ in at least half the sampled rows: likely canonical-form issues."""
        return [c for c, n in self.mismatches.items() if n * 2 >= max(self.rows_sampled, 1)]

    def as_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "rows_sampled": self.rows_sampled,
            "mismatches": self.mismatches,
            "suspicious": self.suspicious,
        }


def check_parity(
    config: PipewardenConfig, name: str, sample: int = 1000, columns: list[str] | None = None
) -> ParityReport:
    """Compare `sample` random source rows with the warehouse, column by column."""
    plan = plan_table(config, name, columns)
    matcher = None if plan.portable_keys else key_matcher(plan.key_kinds)
    compared = ordered_columns(plan.source, [c for c in plan.columns if c not in plan.key])
    unsigned = plan.unsigned
    with connect(plan.source.engine) as src, connect(plan.target.engine) as tgt:
        keys = _sample_keys(src, plan.source, sample)
        left = column_hashes(src, plan.source, compared, keys, matcher)
        right = column_hashes(tgt, plan.target, compared, keys, matcher)
    report = ParityReport(name, 0, {c: 0 for c in compared})
    for match, (_, hashes) in left.items():
        if match not in right:
            continue
        report.rows_sampled += 1
        for column in differing_columns(compared, hashes, right[match][1], unsigned):
            report.mismatches[column] += 1
    report.mismatches = {c: n for c, n in report.mismatches.items() if n}
    return report


def _sample_keys(conn: sa.Connection, side: Side, sample: int) -> list[Key]:
    query = sa.select(*side.key_columns).order_by(side.dialect.random_order()).limit(sample)
    return [tuple(r) for r in conn.execute(query)]
