"""No database call waits for ever: a lock another session holds fails the run, named, in time."""

from typing import Any

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.db.timeouts import DatabaseTimeout
from pipewarden.sync.run import sync_table
from tests.sync.support import make_config, naive_if_needed, orders_source, sync_runs_of, utc


def synced_once(source_url: str, warehouse_url: str) -> Any:
    """A configuration whose table is synced once and has a change waiting to be loaded."""
    source, orders = orders_source(source_url, 10)
    limits = {"lock": "1s", "statement": "2m", "connect": "5s"}
    config = make_config(source_url, warehouse_url, limits, lookback="1s")
    assert sync_table(config, "orders").status == "success"
    with source.begin() as conn:
        conn.execute(
            orders.update()
            .where(orders.c.order_id == 3)
            .values(status="refunded", updated_at=naive_if_needed(source, utc(2026, 3, 2)))
        )
    return config


@pytest.mark.parametrize("source_kind", ["postgresql", "mariadb"])
def test_a_locked_warehouse_table_fails_the_run_naming_table_and_timeout(make_url, source_kind):
    warehouse_url = make_url("postgresql", "wh")
    config = synced_once(make_url(source_kind, "src"), warehouse_url)
    holder = sa.create_engine(warehouse_url).connect()
    holder.begin()
    holder.execute(sa.text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))
    try:
        with pytest.raises(DatabaseTimeout) as timed_out:
            sync_table(config, "orders")
    finally:
        holder.rollback()
        holder.close()
    message = str(timed_out.value)
    assert "table orders: warehouse table 'orders'" in message
    assert "lock timeout of 1 s" in message and "timeouts.lock" in message
    runs = sync_runs_of(cached_engine(warehouse_url))
    assert [r.status for r in runs] == ["success", "failed"]
    assert message in runs[1].error
    assert sync_table(config, "orders").rows_loaded == 1  # the lock gone, the run goes


def test_a_locked_sqlite_warehouse_fails_the_run_in_time(make_url):
    warehouse_url = make_url("sqlite", "wh")
    config = synced_once(make_url("sqlite", "src"), warehouse_url)
    holder = sa.create_engine(warehouse_url).connect()
    holder.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's one write lock
    try:
        with pytest.raises(DatabaseTimeout, match=r"table orders: .*lock timeout of 1 s"):
            sync_table(config, "orders")
    finally:
        holder.rollback()
        holder.close()
    assert sync_table(config, "orders").rows_loaded == 1


def test_a_sqlite_statement_that_never_ends_fails_the_run_in_time(make_url):
    """SQLite has no server to end a statement: its progress handler does, after
    `timeouts.statement`. The source here is a view whose rows never end."""
    source_url = make_url("sqlite", "src")
    engine, _ = orders_source(source_url, 1)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE orders RENAME TO one_order")
        conn.exec_driver_sql(
            "CREATE VIEW orders AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)"
            " SELECT one_order.* FROM one_order, n"
        )
    limits = {"lock": "1s", "statement": "1s", "connect": "5s"}
    config = make_config(source_url, make_url("sqlite", "wh"), limits)
    with pytest.raises(DatabaseTimeout, match=r"statement timeout of 1 s on one statement"):
        sync_table(config, "orders")
