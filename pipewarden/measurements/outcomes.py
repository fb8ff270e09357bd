"""Outcomes of reconciliations and alert deliveries as metrics, for Grafana beside the syncs.

One point per outcome, `<kind>_outcome` (e.g. `reconcile_outcome`, `alert_outcome`), its value
the status's severity (0 ok, 1 warn: differences, a retry; 2 error: a failure) and its labels the
status and whatever names the occasion (`{"status": "differences", "missing": 3}`). Counts that
deserve their own series (rows compared, differences, delivery attempts) go in as plain metrics
beside it. The caller writes the points in the transaction of the outcome they describe.
"""

from datetime import UTC, datetime
from typing import Any

from pipewarden.records.evidence import Severity
from pipewarden.records.metrics import MetricPoint


def outcome_points(
    table_name: str,
    kind: str,
    status: str,
    values: dict[str, float] | None = None,
    measured_at: datetime | None = None,
    **labels: Any,
) -> list[MetricPoint]:
    """`<kind>_outcome` and any `values` (as `<kind>_<name>`), stamped `measured_at` (now)."""
    at = measured_at or datetime.now(UTC)
    severity = float(Severity.of(status))
    outcome_labels = {"status": status, **labels}
    points = [MetricPoint(at, table_name, f"{kind}_outcome", severity, outcome_labels)]
    for name, value in (values or {}).items():
        points.append(MetricPoint(at, table_name, f"{kind}_{name}", float(value)))
    return points
