"""Histories read as arrays: every series in time order, whatever order the rows were written in,
and points of the same instant in the order of their values."""

from datetime import UTC, datetime, timedelta

import numpy as np

from pipewarden.db.engines import cached_engine
from pipewarden.records.metrics import (
    MetricPoint,
    as_instant,
    histories,
    metric_arrays,
    write_metrics,
)
from pipewarden.records.migrate import ensure_tables

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_series_come_back_in_time_order_per_table_and_metric(warehouse_url: str) -> None:
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    rng = np.random.default_rng(4)
    hours = rng.permutation(48)  # written in no order at all
    points = [
        MetricPoint(T0 + timedelta(hours=int(h), microseconds=7), table, metric, float(h) + k)
        for h in hours
        for table, metric, k in (("orders", "a", 0.0), ("orders", "b", 0.5), ("events", "a", 0.25))
    ]
    points += [
        MetricPoint(T0 + timedelta(hours=3, microseconds=7), "orders", "a", 99.0),  # a tie
        MetricPoint(T0 + timedelta(hours=5), "orders", "a", -1.0, {"load": "full"}),
        MetricPoint(T0 + timedelta(hours=60), "orders", "a", -2.0),  # after `until`
    ]
    with engine.begin() as conn:
        write_metrics(conn, points)
    with engine.connect() as conn:
        arrays = metric_arrays(
            conn, ["orders", "events"], ["a", "b"], until=T0 + timedelta(hours=50), labels={}
        )
        as_lists = histories(conn, ["orders"], "a", until=T0 + timedelta(hours=50), labels={})
    micros, values = arrays["a"]["orders"]
    assert micros.dtype == np.int64 and len(micros) == 49
    assert np.all(np.diff(micros) >= 0)
    assert as_instant(micros[0]) == T0 + timedelta(microseconds=7)
    assert values[3:5].tolist() == [3.0, 99.0]  # both points of 13:00, in the order of value
    assert np.array_equal(np.delete(values, [3, 4]), np.delete(np.arange(48.0), 3))
    assert arrays["b"]["orders"][1].tolist() == [h + 0.5 for h in range(48)]
    assert arrays["a"]["events"][1].tolist() == [h + 0.25 for h in range(48)]
    times, listed = as_lists["orders"]
    assert times[0] == T0 + timedelta(microseconds=7) and times[0].tzinfo is not None
    assert listed == values.tolist()
