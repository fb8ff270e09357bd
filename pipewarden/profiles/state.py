"""The profile table's state now, as `pipewarden status` shows a synced table's: freshness of its
oldest input, its last build as the last "sync", its last checks. Light: no detector import."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from pipewarden.checks.monitoring.freshness import freshness_status, staleness
from pipewarden.checks.monitoring.state import TableState
from pipewarden.config import PipewardenConfig
from pipewarden.profiles.tables import builds_table
from pipewarden.records.metrics import latest_check_results
from pipewarden.records.values import utc


@dataclass(frozen=True)
class BuildFigures:
    """What the builds say of the profile table: its data's age, the newest build, the last good."""

    data_as_of: datetime | None
    status: str | None
    last_success: datetime | None


def build_figures(conn: sa.Connection, config: PipewardenConfig) -> BuildFigures:
    """The newest build's `data_as_of` and status, and the newest ok build's finish."""
    assert config.profiles is not None
    schema = config.warehouse.schema_name
    builds = builds_table(schema)
    if not sa.inspect(conn).has_table(builds.name, schema=schema):
        return BuildFigures(None, None, None)
    b = builds.c
    mine = sa.select(b.status, b.finished_at, b.data_as_of).where(
        b.profile_table == config.profiles.table
    )
    newest = conn.execute(mine.order_by(b.build_id.desc()).limit(1)).first()
    good = conn.execute(mine.where(b.status == "ok").order_by(b.build_id.desc()).limit(1)).first()
    return BuildFigures(
        None if newest is None or newest.data_as_of is None else utc(newest.data_as_of),
        None if newest is None else str(newest.status),
        None if good is None else utc(good.finished_at),
    )


def profile_state(engine: sa.Engine, config: PipewardenConfig, now: datetime) -> TableState:
    """Freshness from the newest build's `data_as_of`; `last_run_status` is the build's status
    (ok or failed), `last_success` the newest ok build's finish."""
    assert config.profiles is not None
    spec = config.profiles
    with engine.connect() as conn:
        built = build_figures(conn, config)
        checks = latest_check_results(conn, [spec.table]).get(spec.table, [])
    verdict = freshness_status(built.data_as_of, now, spec.warn_after, spec.error_after)
    if built.status is None:
        verdict = replace(verdict, reason="never built")
    return TableState(
        name=spec.table,
        freshness=verdict,
        last_success=built.last_success,
        staleness=staleness(built.last_success, now),
        last_run_status=None if built.status is None else f"build {built.status}",
        latency_p95_seconds=None,
        last_checks=tuple(checks),
    )
