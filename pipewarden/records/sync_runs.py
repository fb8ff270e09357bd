"""One row per sync run: what was read and loaded, how long it took, where the watermark went."""

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.dialects import dialect_for
from pipewarden.records.flow_runs import current_flow_run_id
from pipewarden.records.tables import sync_runs
from pipewarden.records.values import dumps


@dataclass
class SyncRun:
    """The record of one table's sync, filled in as the run goes."""

    run_id: str
    table_name: str
    started_at: datetime
    full_refresh: bool = False
    status: str = "running"
    rows_read: int = 0
    rows_loaded: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    batches: int = 0
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    old_watermark: Any = None
    new_watermark: Any = None
    newest_source_cursor: Any = None
    latency_p50_seconds: float | None = None
    latency_p95_seconds: float | None = None
    latency_max_seconds: float | None = None
    schema_changes: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    flow_run_id: str | None = field(default_factory=current_flow_run_id)

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        for name in ("old_watermark", "new_watermark", "newest_source_cursor"):
            row[name] = None if row[name] is None else dumps(row[name])
        row["schema_changes"] = json.dumps(self.schema_changes) if self.schema_changes else None
        return row


def start_run(bind: sa.Engine | sa.Connection, run: SyncRun) -> None:
    """Record a run as running. Its commit does not wait for the disk where the database
    allows it: a crash can lose only this marker, and the first batch's commit flushes it."""
    with bind.begin() as tx:
        conn = tx if isinstance(tx, sa.Connection) else bind
        assert isinstance(conn, sa.Connection)
        dialect_for(conn.dialect.name).relax_commit(conn)
        conn.execute(sync_runs.insert().values(**run.as_row()))


def abandon_runs(conn: sa.Connection, table_name: str, found_by: str) -> int:
    """Mark the table's runs still `running` as `abandoned`. Called while holding the table's
    run lock: a live run would hold it, so each of these died without recording its outcome
    (SIGKILL, a lost host or server); what it committed stays, the next run carries on."""
    result = conn.execute(
        sync_runs.update()
        .where(sync_runs.c.table_name == table_name, sync_runs.c.status == "running")
        .values(
            status="abandoned",
            finished_at=datetime.now(UTC),
            error=f"abandoned: its process ended without an outcome; found by run {found_by}",
        )
    )
    return max(result.rowcount, 0)


def running_runs(conn: sa.Connection, table_name: str) -> list[tuple[str, Any]]:
    """Run ids and starts of the table's runs recorded as running."""
    rows = conn.execute(
        sa.select(sync_runs.c.run_id, sync_runs.c.started_at)
        .where(sync_runs.c.table_name == table_name, sync_runs.c.status == "running")
        .order_by(sync_runs.c.started_at)
    )
    return [(str(r), s) for r, s in rows]


def record_outcome(
    conn: sa.Connection, run: SyncRun, status: str, error: str | None = None
) -> None:
    """Set the run's outcome and record it in the caller's transaction. The row is inserted
    when its "running" marker is missing (lost in a server crash after `start_run`)."""
    run.status = status
    run.error = error
    run.finished_at = datetime.now(UTC)
    run.duration_seconds = (run.finished_at - run.started_at).total_seconds()
    row = run.as_row()
    outcome = {k: v for k, v in row.items() if k != "run_id"}
    updated = conn.execute(
        sync_runs.update().where(sync_runs.c.run_id == run.run_id).values(**outcome)
    )
    if updated.rowcount == 0:
        conn.execute(sync_runs.insert().values(**row))


def finish_run(
    bind: sa.Engine | sa.Connection,
    run: SyncRun,
    status: str,
    error: str | None = None,
    also: Callable[[sa.Connection], object] | None = None,
) -> None:
    """Record the outcome; called on success and on failure alike. `also` writes what the
    outcome causes (its alerts) in the same transaction."""
    with bind.begin() as tx:
        conn = tx if isinstance(tx, sa.Connection) else bind
        assert isinstance(conn, sa.Connection)
        record_outcome(conn, run, status, error)
        if also is not None:
            also(conn)


def last_runs(engine: sa.Engine, table_name: str, limit: int = 10) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(sync_runs)
                .where(sync_runs.c.table_name == table_name)
                .order_by(sync_runs.c.started_at.desc())
                .limit(limit)
            )
        )
