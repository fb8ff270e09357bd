"""Rows per cursor hour count each row once, when the watermark is capped before rows it read.

The watermark never passes the run's start (a row stamped in the future) nor the oldest
transaction open on the source: rows read beyond that cap are read again by the next run, and
must not be counted by both. PostgreSQL and MariaDB sources, PostgreSQL and SQLite warehouses.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.records.metrics import history
from pipewarden.sync.run import sync_table
from tests.sync.support import fill_orders, make_config, naive_if_needed, orders_table


def _counted(warehouse_url: str, labels: dict[str, str] | None = None) -> float:
    """Rows counted per cursor hour over every run so far: full loads (labelled), deltas ({})
    or both (None)."""
    with cached_engine(warehouse_url).connect() as conn:
        return sum(history(conn, "orders", "rows_by_cursor_hour", labels=labels)[1])


@pytest.mark.parametrize("source_kind", ["postgresql", "mariadb"])
def test_a_row_stamped_in_the_future_is_counted_once(
    source_kind: str, make_url: Callable[[str, str], str], warehouse_url: str
) -> None:
    source_url = make_url(source_kind, "src")
    source = cached_engine(source_url)
    orders = orders_table()
    orders.create(source)
    fill_orders(source, orders, 3, start=datetime.now(UTC) - timedelta(hours=2))
    ahead = datetime.now(UTC) + timedelta(days=1)
    with source.begin() as conn:
        stamp = naive_if_needed(source, ahead)
        conn.execute(orders.insert().values(order_id=4, status="typo", updated_at=stamp))
    config = make_config(source_url, warehouse_url)

    first = sync_table(config, "orders")
    second = sync_table(config, "orders")  # the watermark stopped at the first run's start

    assert (first.rows_read, second.rows_read) == (4, 1)
    assert _counted(warehouse_url) == 3  # the future row is not covered by any watermark yet

    # The clock is fixed at the source: the row is stamped now, and the next run covers it.
    with source.begin() as conn:
        conn.execute(
            orders.update()
            .where(orders.c.order_id == 4)
            .values(status="fixed", updated_at=naive_if_needed(source, datetime.now(UTC)))
        )
    third = sync_table(config, "orders")
    sync_table(config, "orders")  # re-reads the watermark's tick: counted already

    assert third.rows_read == 1
    assert _counted(warehouse_url) == 4


def test_rows_read_past_an_open_transaction_are_counted_once(
    make_url: Callable[[str, str], str], warehouse_url: str
) -> None:
    source_url = make_url("postgresql", "src")
    source = cached_engine(source_url)
    orders = orders_table()
    orders.create(source)
    fill_orders(source, orders, 1, start=datetime.now(UTC) - timedelta(hours=1))
    config = make_config(source_url, warehouse_url)
    slow = source.connect()
    slow_tx = slow.begin()
    # now() is the transaction's start: this row is stamped before the one committed next.
    slow.execute(orders.insert().values(order_id=2, status="slow", updated_at=sa.func.now()))
    with source.begin() as conn:
        conn.execute(orders.insert().values(order_id=3, status="quick", updated_at=sa.func.now()))
    first = sync_table(config, "orders")
    assert first.rows_read == 2  # rows 1 and 3; the watermark stays before the open transaction
    slow_tx.commit()
    slow.close()
    second = sync_table(config, "orders")  # reads rows 2 and 3
    third = sync_table(config, "orders")  # nothing new

    assert (second.rows_read, second.rows_loaded, third.rows_loaded) == (2, 1, 0)
    # The first run counts row 1 only: row 3 is past its watermark. The next runs count rows 2
    # (stamped at the cap itself) and 3 once their watermark covers them.
    assert _counted(warehouse_url, {"load": "full"}) == 1
    assert _counted(warehouse_url, {}) == 2
