"""Outcomes of reconciliations and alert deliveries as metrics, for Grafana beside the syncs.

One point per outcome, `<kind>_outcome` (e.g. `reconcile_outcome`, `alert_outcome`), its value
the severity (0 ok, 1 a finding or a retry, 2 a failure) and its labels the status and whatever
names the occasion (`{"status": "differences", "missing": 3}`). Counts that deserve their own
series (rows compared, differences, delivery attempts) go in as plain metrics beside it.
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.records.metrics import MetricPoint, write_metrics
from pipewarden.records.tables import ensure_tables

SEVERITY = {
    "ok": 0.0,
    "clean": 0.0,
    "delivered": 0.0,
    "differences": 1.0,
    "retrying": 1.0,
    "failed": 2.0,
}


def record_outcome(
    engine: sa.Engine,
    table_name: str,
    kind: str,
    status: str,
    values: dict[str, float] | None = None,
    measured_at: datetime | None = None,
    **labels: Any,
) -> int:
    """Write `<kind>_outcome` and any `values` (as `<kind>_<name>`); returns points written."""
    ensure_tables(engine)
    points = outcome_points(table_name, kind, status, values, measured_at, **labels)
    with engine.begin() as conn:
        return write_metrics(conn, points)


def outcome_points(
    table_name: str,
    kind: str,
    status: str,
    values: dict[str, float] | None = None,
    measured_at: datetime | None = None,
    **labels: Any,
) -> list[MetricPoint]:
    """The points `record_outcome` writes, for a caller that writes them in its own transaction."""
    at = measured_at or datetime.now(UTC)
    severity = SEVERITY.get(status, 1.0)
    outcome_labels = {"status": status, **labels}
    points = [MetricPoint(at, table_name, f"{kind}_outcome", severity, outcome_labels)]
    for name, value in (values or {}).items():
        points.append(MetricPoint(at, table_name, f"{kind}_{name}", float(value)))
    return points
