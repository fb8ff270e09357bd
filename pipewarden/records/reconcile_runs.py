"""Reconciliation records: one row per run, one per differing row, one per repaired row.

The metrics stage reads runs and diffs; the repair audit says what was changed, when, and the
row's hashes before and after, so every repair can be traced back.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pipewarden.records.flow_runs import current_flow_run_id
from pipewarden.records.tables import metadata

if TYPE_CHECKING:
    import polars as pl

reconcile_runs = sa.Table(
    "pipewarden_reconcile_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("table_name", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("mode", sa.String(20)),
    sa.Column("keys_only", sa.Boolean, nullable=False, default=False),
    sa.Column("key_range", sa.Text),
    sa.Column("rows_compared", sa.BigInteger, nullable=False, default=0),
    sa.Column("coverage", sa.Float),
    sa.Column("complete", sa.Boolean, nullable=False, default=False),
    sa.Column("stopped_by", sa.String(20)),
    sa.Column("missing", sa.Integer, nullable=False, default=0),
    sa.Column("extra", sa.Integer, nullable=False, default=0),
    sa.Column("changed", sa.Integer, nullable=False, default=0),
    sa.Column("repaired", sa.Integer, nullable=False, default=0),
    sa.Column("remaining", sa.Integer),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("timings", sa.Text),
    sa.Column("error", sa.Text),
    # The Prefect flow run the reconciliation ran in (NULL outside Prefect).
    sa.Column("flow_run_id", sa.String(36)),
)

reconcile_diffs = sa.Table(
    "pipewarden_reconcile_diffs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("diff", sa.String(10), nullable=False),
    sa.Column("key_value", sa.Text, nullable=False),
    sa.Column("columns", sa.Text),
    sa.Column("source_hash", sa.String(40)),
    sa.Column("target_hash", sa.String(40)),
)

reconcile_repairs = sa.Table(
    "pipewarden_reconcile_repairs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("key_value", sa.Text, nullable=False),
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("hash_before", sa.String(40)),
    sa.Column("hash_after", sa.String(40)),
    sa.Column("repaired_at", sa.DateTime(timezone=True), nullable=False),
    #: Why a row older than the warehouse's was written (`reconcile.repair.REASONS`), or NULL.
    sa.Column("reason", sa.String(40)),
)


@dataclass
class ReconcileRun:
    """The record of one reconciliation, filled in as the run goes."""

    run_id: str
    table_name: str
    started_at: datetime
    action: str = "dry-run"
    status: str = "running"
    mode: str | None = None
    keys_only: bool = False
    key_range: str | None = None
    rows_compared: int = 0
    coverage: float | None = None
    complete: bool = False
    stopped_by: str | None = None
    missing: int = 0
    extra: int = 0
    changed: int = 0
    repaired: int = 0
    remaining: int | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    #: Source keys the rows could not be compared by (NULL, duplicated), one line per kind;
    #: stored in `error` (and the sampled keys among the diffs), so not a column of its own.
    key_problems: list[str] = field(default_factory=list)
    flow_run_id: str | None = field(default_factory=current_flow_run_id)

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("key_problems")
        row["timings"] = json.dumps({k: round(v, 4) for k, v in self.timings.items()})
        return row


#: Differences a frame: 50,000 rows' strings and frame added 45 MB to a million-difference
#: run's peak.
DIFF_BATCH = 10_000
#: A frame of differences as `write_diff_frames` takes it: all text.
DIFF_FRAME_COLUMNS = ("diff", "key_value", "columns", "source_hash", "target_hash")


@dataclass(frozen=True, slots=True)
class DiffRecord:
    diff: str
    #: The key's values, or already their JSON text (`reconcile.keys.json_key_text`).
    key: list[Any] | str
    columns: Sequence[str]
    source_hash: str | None
    target_hash: str | None


@dataclass(frozen=True)
class RepairRecord:
    key: list[Any]
    action: str
    hash_before: str | None
    hash_after: str | None
    reason: str | None = None


def start_run(engine: sa.Engine, run: ReconcileRun) -> None:
    with engine.begin() as conn:
        conn.execute(reconcile_runs.insert().values(**run.as_row()))


def finish_run(
    engine: sa.Engine,
    run: ReconcileRun,
    status: str,
    error: str | None = None,
    also: Callable[[sa.Connection], object] | None = None,
) -> None:
    """Record the outcome; `also` writes what it causes (its alerts) in the same transaction."""
    run.status = status
    run.error = error
    run.finished_at = datetime.now(UTC)
    run.duration_seconds = (run.finished_at - run.started_at).total_seconds()
    row = run.as_row()
    row.pop("run_id")
    with engine.begin() as conn:
        conn.execute(
            reconcile_runs.update().where(reconcile_runs.c.run_id == run.run_id).values(**row)
        )
        if also is not None:
            also(conn)


def record_diffs(
    engine: sa.Engine,
    run_id: str,
    table_name: str,
    diffs: Iterable[DiffRecord],
    batch: int = DIFF_BATCH,
) -> None:
    """Every difference, a batch at a time: a million differences are never a million dicts at
    once, and the dialect's bulk path (COPY on PostgreSQL) writes each batch."""
    items = iter(diffs)
    chunks = iter(lambda: list(islice(items, batch)), [])
    write_diff_frames(engine, run_id, table_name, map(diff_frame, chunks))


def diff_frame(chunk: Sequence[DiffRecord]) -> "pl.DataFrame":
    """Records as a frame, column by column: polars builds string columns from lists far
    faster than rows."""
    import polars as pl

    return pl.DataFrame(
        {
            "diff": [d.diff for d in chunk],
            "key_value": [d.key if isinstance(d.key, str) else json.dumps(d.key) for d in chunk],
            "columns": [columns_text(d.columns) for d in chunk],
            "source_hash": [d.source_hash for d in chunk],
            "target_hash": [d.target_hash for d in chunk],
        },
        schema=dict.fromkeys(DIFF_FRAME_COLUMNS, pl.String),
    )


def columns_text(columns: Sequence[str]) -> str | None:
    """A difference's columns as recorded: a JSON list, None when there are none."""
    return json.dumps(list(columns)) if columns else None


def write_diff_frames(
    engine: sa.Engine, run_id: str, table_name: str, frames: Iterable["pl.DataFrame"]
) -> None:
    """Write frames of differences (`DIFF_FRAME_COLUMNS`) in one transaction, a frame at a time."""
    import polars as pl

    from pipewarden.dialects import dialect_for

    with engine.begin() as conn:
        dialect = dialect_for(conn.dialect.name)
        for frame in frames:
            if frame.height:
                run = pl.lit(run_id, pl.String).alias("run_id")
                table = pl.lit(table_name, pl.String).alias("table_name")
                dialect.append(conn, reconcile_diffs, frame.select(run, table, *DIFF_FRAME_COLUMNS))


def record_repairs(
    conn: sa.Connection, run_id: str, table_name: str, repairs: list[RepairRecord]
) -> None:
    """Written in the repair's own transaction: the audit and the change commit together."""
    if not repairs:
        return
    now = datetime.now(UTC)
    conn.execute(
        reconcile_repairs.insert(),
        [
            {
                "run_id": run_id,
                "table_name": table_name,
                "key_value": json.dumps(r.key),
                "action": r.action,
                "hash_before": r.hash_before,
                "hash_after": r.hash_after,
                "repaired_at": now,
                "reason": r.reason,
            }
            for r in repairs
        ],
    )


def forget_repairs(
    conn: sa.Connection,
    run_id: str,
    table_name: str,
    unchanged: list[str],
    moved: dict[str, str | None],
) -> None:
    """Correct the audit after the re-comparison: drop the records of keys (JSON text) the repair
    did not change; give those that changed again meanwhile their hash as read back."""
    mine = sa.and_(
        reconcile_repairs.c.run_id == run_id, reconcile_repairs.c.table_name == table_name
    )
    for start in range(0, len(unchanged), 1000):
        conn.execute(
            reconcile_repairs.delete().where(
                mine, reconcile_repairs.c.key_value.in_(unchanged[start : start + 1000])
            )
        )
    for key, after in moved.items():
        conn.execute(
            reconcile_repairs.update()
            .where(mine, reconcile_repairs.c.key_value == key)
            .values(hash_after=after)
        )
