"""What is known about each table now (freshness, its last sync, its last check), for `status`.

Kept apart from `checks.monitoring.run` so that `pipewarden status` reads it without importing the
anomaly detector (scipy) and the column monitors.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipewarden.checks.monitoring.freshness import FreshnessVerdict, freshness_status, staleness
from pipewarden.config import PipewardenConfig
from pipewarden.measurements.cursor import NEWEST_CURSOR, cursor_instant
from pipewarden.records.metrics import (
    CheckResult,
    latest_check_results,
    latest_values,
    name_chunks,
)
from pipewarden.records.tables import sync_runs
from pipewarden.records.values import loads, utc


@dataclass(frozen=True)
class TableState:
    """What is known about a table now: freshness, the last sync, the last check."""

    name: str
    freshness: FreshnessVerdict
    last_success: datetime | None
    staleness: timedelta | None
    last_run_status: str | None
    latency_p95_seconds: float | None
    last_checks: tuple[CheckResult, ...] = ()


def table_states(
    engine: sa.Engine, config: PipewardenConfig, names: Sequence[str], now: datetime
) -> dict[str, TableState]:
    """Freshness and sync state of the named tables, from a handful of queries."""
    with engine.connect() as conn:
        newest = _newest_loaded(conn, names)
        runs = _runs(conn, names)
        checks = latest_check_results(conn, names)
    by_sync: set[str] = set()
    for name in names:
        if name not in newest:
            found = _target_max_cursor(engine, config, name)
            watermark = runs.get(name, {}).get("watermark")
            if found is _EMPTY:  # nothing loaded: a watermark moved past held rows tells nothing
                continue
            if found is None and watermark is not None:
                found = cursor_instant(watermark)
                if found is None and runs[name].get("last_success") is not None:
                    # A sequence or version cursor tells no time: the last success stands in.
                    found = runs[name]["last_success"]
                    by_sync.add(name)
            if found is not None:
                newest[name] = found
    states = {}
    for name in names:
        sla = config.tables[name].freshness
        run = runs.get(name, {})
        verdict = freshness_status(newest.get(name), now, sla.warn_after, sla.error_after)
        if name in by_sync:
            why = verdict.reason.replace("newest row", "cursor is not a time; last success", 1)
            verdict = replace(verdict, reason=why)
        states[name] = TableState(
            name=name,
            freshness=verdict,
            last_success=run.get("last_success"),
            staleness=staleness(run.get("last_success"), now),
            last_run_status=run.get("status"),
            latency_p95_seconds=run.get("latency_p95"),
            last_checks=tuple(checks.get(name, ())),
        )
    return states


def _newest_loaded(conn: sa.Connection, names: Sequence[str]) -> dict[str, datetime]:
    # Each sync writes the newest cursor loaded so far, so the latest point is the maximum.
    return {
        name: datetime.fromtimestamp(epoch, UTC)
        for name, (_, epoch) in latest_values(conn, NEWEST_CURSOR, names).items()
    }


def _runs(conn: sa.Connection, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per table: last successful finish, and the latest run's status, watermark and latency."""
    c = sync_runs.c
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for wanted in name_chunks(names):
        mine = c.table_name == wanted.c.name
        newest = sa.select(c.run_id).where(mine).order_by(c.started_at.desc()).limit(1)
        success = newest.where(c.status == "success")
        pairs = sa.select(
            wanted.c.name,
            newest.scalar_subquery().label("latest"),
            success.scalar_subquery().label("success"),
        ).subquery("pairs")
        q = sa.select(
            pairs.c.name,
            c.status,
            c.finished_at,
            c.new_watermark,
            c.latency_p95_seconds,
            c.run_id == pairs.c.latest,
        ).join(pairs, sa.or_(c.run_id == pairs.c.latest, c.run_id == pairs.c.success))
        for name, status, finished, watermark, p95, is_latest in conn.execute(q).tuples():
            state = out[name]
            if status == "success" and finished is not None:
                state["last_success"] = utc(finished)
            if is_latest:
                state.update(status=status, latency_p95=p95)
            # The latest run's committed progress, else the last success's.
            if watermark is not None and (is_latest or state.get("watermark") is None):
                state["watermark"] = loads(watermark)
    return out


#: `_target_max_cursor` of a warehouse table that holds no row.
_EMPTY = datetime.min.replace(tzinfo=UTC)


def _target_max_cursor(engine: sa.Engine, config: PipewardenConfig, name: str) -> datetime | None:
    """Fallback for tables with no recorded newest cursor: max(cursor) of the warehouse table.

    A scan (the target has no cursor index), so only tables synced before metrics existed pay
    it; any failure (no table yet) means "unknown", and a table without a row `_EMPTY` (every
    row read so far is held in the quarantine).
    """
    table_config = config.tables[name]
    target = sa.table(table_config.target_table, schema=config.warehouse.schema_name)
    newest_cursor: sa.ColumnElement[Any] = sa.func.max(sa.column(table_config.cursor))
    query: sa.Select[Any] = sa.select(newest_cursor, sa.func.count()).select_from(target)
    try:
        with engine.connect() as conn:
            newest, rows = conn.execute(query).one()
            return cursor_instant(newest) if rows else _EMPTY
    except sa.exc.SQLAlchemyError:
        return None
