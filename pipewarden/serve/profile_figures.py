"""What the exporter tells about the profile table: its freshness, and how the API answered.

Two queries a read: the last build (`pipewarden_profile_builds`, newest first by its key) and
the API's answer counts written since the previous read (`pipewarden_metrics`, by its
(table, metric, time) index). The counts are summed in the reader, so each point is read
once; points are read again from `MARGIN` before the newest one seen (a write that committed
late is still found) and told apart by their ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipewarden.profiles.build import last_build
from pipewarden.records.metrics import metrics
from pipewarden.records.values import utc

#: The metric (per profile table, labels source and reason) the API writes its counts to.
RESPONSES_METRIC = "profile_responses"
MARGIN = timedelta(minutes=2)


@dataclass(frozen=True)
class ProfileFigures:
    table: str
    built: bool
    build_ok: bool
    build_as_of: datetime | None
    data_as_of: datetime | None
    rows: int | None
    #: (source, reason) -> answers since pipewarden began counting
    responses: dict[tuple[str, str], float]


@dataclass
class ProfileReader:
    totals: dict[tuple[str, str], float] = field(default_factory=dict)
    since: datetime | None = None
    seen: dict[int, datetime] = field(default_factory=dict)

    def read(self, conn: sa.Connection, table: str, schema: str | None) -> ProfileFigures:
        build = last_build(conn, schema, table)
        self._add_counts(conn, table)
        return ProfileFigures(
            table=table,
            built=build is not None,
            build_ok=build is not None and build.status == "ok",
            build_as_of=None if build is None else _instant(build.as_of),
            data_as_of=None
            if build is None or build.data_as_of is None
            else _instant(build.data_as_of),
            rows=None if build is None else int(build.profile_rows),
            responses=dict(self.totals),
        )

    def _add_counts(self, conn: sa.Connection, table: str) -> None:
        m = metrics.c
        query = sa.select(m.id, m.measured_at, m.value, m.labels).where(
            m.table_name == table, m.metric == RESPONSES_METRIC
        )
        if self.since is not None:
            query = query.where(m.measured_at >= self.since - MARGIN)
        newest = self.since
        for row_id, measured_at, value, labels in conn.execute(query).tuples():
            if row_id in self.seen:
                continue
            at = _instant(measured_at)
            self.seen[row_id] = at
            given = json.loads(labels)
            key = (str(given.get("source", "")), str(given.get("reason", "")))
            self.totals[key] = self.totals.get(key, 0.0) + float(value)
            newest = at if newest is None or at > newest else newest
        self.since = newest
        if newest is not None:
            self.seen = {i: at for i, at in self.seen.items() if at >= newest - MARGIN}


def _instant(value: Any) -> datetime:
    # SQLite hands DateTime values back naive, aggregates as text.
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return utc(value) if value.tzinfo is not None else value.replace(tzinfo=UTC)
