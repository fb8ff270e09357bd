"""Reconciliation and alert outcomes as metric points."""

from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.metrics.outcomes import record_outcome
from pipewarden.records.metrics import metrics


def test_outcome_and_its_counts_are_written(warehouse_url: str) -> None:
    engine = cached_engine(warehouse_url)
    at = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    written = record_outcome(
        engine, "orders", "reconcile", "differences", {"missing": 3, "changed": 4}, at, mode="dry"
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
    assert record_outcome(engine, "orders", "alert", "failed") == 1
