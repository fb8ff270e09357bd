"""Histories read as arrays: every series in time order, whatever order the rows were written in,
and points of the same instant in the order of their values."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.dialects.base import Dialect
from pipewarden.dialects.sqlite import SQLite
from pipewarden.records.metrics import (
    MetricPoint,
    as_instant,
    histories,
    metric_arrays,
    metrics,
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


def test_sqlite_reads_instants_as_text_and_gets_what_sqlalchemy_parses(
    sqlite_url: Callable[[str], str],
) -> None:
    """SQLite's history read parses the stored text itself (`SQLite.series_frame`); it must
    give the arrays SQLAlchemy's own parsing gives, and take SQLAlchemy's way for text in
    another shape (written by hand, by another tool)."""
    engine = cached_engine(sqlite_url("warehouse"))
    ensure_tables(engine)
    points = [
        MetricPoint(T0 + timedelta(hours=h, microseconds=m), "orders", "a", h * 1.5 - m)
        for h in range(30)
        for m in (0, 1, 500_000, 999_999)
    ]
    points.append(MetricPoint(datetime(188, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "orders", "a", 7.0))
    with engine.begin() as conn:
        write_metrics(conn, points)

    def both(conn: sa.Connection) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        query = sa.select(metrics.c.table_name, metrics.c.measured_at, metrics.c.value)
        fast = SQLite().fetch_series(conn, query)[key]
        # SQLAlchemy's parsing: the base class's frame, in fetch_series' order.
        slow = Dialect.series_frame(SQLite(), conn, query).sort(["measured_at", "value"])
        return fast, (slow["measured_at"].to_numpy(), slow["value"].to_numpy())

    key = ("orders",)
    with engine.connect() as conn:
        fast, slow = both(conn)
    assert np.array_equal(fast[0], slow[0]) and len(fast[0]) == 121
    assert np.array_equal(fast[1], slow[1])
    assert as_instant(fast[0][0]) == datetime(188, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with engine.begin() as conn:  # another shape of text: SQLAlchemy reads it, so must we
        conn.execute(
            metrics.insert().values(
                measured_at=sa.literal("2026-03-03T10:00:00"),
                table_name="orders",
                metric="a",
                value=1.0,
                labels="{}",
            )
        )
    with engine.connect() as conn:
        fast, slow = both(conn)
    assert np.array_equal(fast[0], slow[0]) and len(fast[0]) == 122
    assert np.array_equal(fast[1], slow[1])
    assert datetime(2026, 3, 3, 10, tzinfo=UTC) in [as_instant(m) for m in fast[0]]
