"""Whether a campaign may send: every table, stream and profile field it depends on within its
SLA, with no open error incident and a clean last reconciliation; else `hold` with the reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.checks.monitoring.freshness import ERROR, NO_ROWS_YET, freshness_status
from pipewarden.config import PipewardenConfig
from pipewarden.config.models import FreshnessConfig
from pipewarden.events.tables import landing_table
from pipewarden.profiles.build import last_build
from pipewarden.records.evidence import Severity
from pipewarden.records.values import utc
from pipewarden.serve.figures import FigureReader, TableFigures

GO, HOLD = "go", "hold"
NO_EVENTS = "no events received yet"


@dataclass
class Readiness:
    campaign: str
    decision: str = GO
    reasons: list[str] = field(default_factory=list)

    def hold(self, reason: str) -> None:
        self.decision = HOLD
        self.reasons.append(reason)

    def as_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "decision": self.decision, "reasons": self.reasons}


def unreachable(campaign: str, error: sa.exc.DBAPIError) -> Readiness:
    """`hold`: the warehouse did not answer, so nothing the campaign reads can be vouched for."""
    answer = Readiness(campaign)
    answer.hold(f"the warehouse did not answer ({type(error.orig).__name__})")
    return answer


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _judge(
    answer: Readiness,
    what: str,
    newest: datetime | None,
    sla: FreshnessConfig,
    figures: TableFigures | None,
    now: datetime,
    nothing_yet: str,
) -> None:
    """Hold for the SLA, open error incidents and reconciliation; and for nothing loaded at
    all (`nothing_yet` says so), SLA or none: a send would read empty data."""
    verdict = freshness_status(newest, now, sla.warn_after, sla.error_after)
    if newest is None:
        answer.hold(f"{what}: {nothing_yet}")
    elif verdict.status == ERROR:
        answer.hold(f"{what}: {verdict.reason}")
    if figures is None:
        return
    if figures.open_incidents.get(Severity.ERROR, 0):
        answer.hold(f"{what}: {figures.open_incidents[Severity.ERROR]} open error incident(s)")
    if figures.reconcile_remaining:
        answer.hold(f"{what}: last reconciliation left {figures.reconcile_remaining} differences")


def readiness(engine: sa.Engine, config: PipewardenConfig, campaign: str) -> Readiness:
    """Raises KeyError naming the configured campaigns when `campaign` is not one."""
    if campaign not in config.campaigns:
        known = ", ".join(sorted(config.campaigns)) or "none"
        raise KeyError(f"unknown campaign {campaign!r} (configured: {known})")
    spec, answer, now = config.campaigns[campaign], Readiness(campaign), datetime.now(UTC)
    schema = config.warehouse.schema_name
    with engine.connect() as conn:
        watched = [config.profiles.table] if spec.profile_fields and config.profiles else []
        names = [*spec.tables, *spec.streams, *watched]
        figures = {f.name: f for f in FigureReader().read(conn, names)}
        for name in spec.tables:
            found = figures.get(name)
            newest = found.newest_cursor if found else None
            sla = config.tables[name].freshness
            _judge(answer, f"table {name}", newest, sla, found, now, NO_ROWS_YET)
        for name in spec.streams:
            stream = config.streams[name]
            landing = landing_table(stream.landing_table, schema)
            newest = None
            if sa.inspect(conn).has_table(landing.name, schema=schema):
                newest = _instant(conn.scalar(sa.select(sa.func.max(landing.c.event_time))))
            found = figures.get(name)
            _judge(answer, f"stream {name}", newest, stream.freshness, found, now, NO_EVENTS)
        if spec.profile_fields:
            _judge_profiles(conn, config, spec.profile_fields, answer, now)
        for name in watched:  # the profile table's own checks: freshness, segments, schema
            errors = figures[name].open_incidents.get(Severity.ERROR, 0) if name in figures else 0
            if errors:
                answer.hold(f"profiles: {errors} open error incident(s) on {name}")
    return answer


def _judge_profiles(
    conn: sa.Connection,
    config: PipewardenConfig,
    fields: list[str],
    answer: Readiness,
    now: datetime,
) -> None:
    profiles = config.profiles
    assert profiles is not None  # checked at load
    build = last_build(conn, config.warehouse.schema_name, profiles.table)
    if build is None:
        answer.hold(f"profiles: {profiles.table} was never built")
        return
    if build.status != "ok":
        answer.hold(f"profiles: the last build's checks failed ({build.problems})")
    as_of = _instant(build.as_of)
    assert as_of is not None
    if profiles.error_after is not None and now - as_of > profiles.error_after:
        answer.hold(f"profiles: last built {as_of:%Y-%m-%d %H:%M} UTC, past error_after")
    columns = {
        c["name"]
        for c in sa.inspect(conn).get_columns(profiles.table, schema=config.warehouse.schema_name)
    }
    missing = [f for f in fields if f not in columns | {"cart_age_seconds"}]
    if missing:
        answer.hold(f"profiles: no field {', '.join(missing)} in {profiles.table}")
