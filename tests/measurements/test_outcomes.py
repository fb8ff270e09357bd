"""Reconciliation and alert outcomes as metric points."""

from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.measurements.outcomes import outcome_points
from pipewarden.records.metrics import metrics, write_metrics
from pipewarden.records.migrate import ensure_tables


def test_outcome_and_its_counts_are_written(warehouse_url: str) -> None:
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    at = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    counts = {"missing": 3, "changed": 4}
    with engine.begin() as conn:
        written = write_metrics(
            conn, outcome_points("orders", "reconcile", "differences", counts, at, mode="dry")
        )
    assert written == 3
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(metrics.c.metric, metrics.c.value, metrics.c.labels).order_by(metrics.c.id)
        ).all()
    assert rows == [
        ("reconcile_outcome", 1.0, '{"mode": "dry", "status": "differences"}'),
        ("reconcile_missing", 3.0, "{}"),
        ("reconcile_changed", 4.0, "{}"),
    ]


def test_each_status_is_plotted_at_its_severity() -> None:
    at = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    values = {
        status: outcome_points("orders", "alert", status, measured_at=at)[0].value
        for status in ("clean", "delivered", "differences", "retrying", "failed")
    }
    assert values == {
        "clean": 0.0,
        "delivered": 0.0,
        "differences": 1.0,
        "retrying": 1.0,
        "failed": 2.0,
    }
