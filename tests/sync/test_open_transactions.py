"""PostgreSQL: a transaction open across a sync commits rows stamped before the watermark."""

from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.sync.run import sync_table
from tests.sync.support import make_config


def test_rows_of_a_long_transaction_that_commits_late_are_not_skipped(make_url):
    source_url = make_url("postgresql", "src")
    source = cached_engine(source_url)
    with source.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (order_id int PRIMARY KEY, status text, "
                "updated_at timestamptz NOT NULL DEFAULT now())"
            )
        )
    config = make_config(source_url, make_url("sqlite", "wh"), lookback="0s")
    slow = source.connect()
    slow_tx = slow.begin()
    # now() is the transaction's start: this row carries a timestamp from before what follows.
    slow.execute(sa.text("INSERT INTO orders (order_id, status) VALUES (1, 'slow')"))
    with source.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders (order_id, status) VALUES (2, 'quick')"))
    first = sync_table(config, "orders")
    assert first.rows_loaded == 1
    started = slow.execute(sa.text("SELECT now()")).scalar()
    assert first.new_watermark <= started  # capped below the open transaction
    slow_tx.commit()
    slow.close()
    second = sync_table(config, "orders")
    assert second.rows_loaded == 1
    warehouse = cached_engine(config.warehouse.url)
    with warehouse.connect() as conn:
        assert conn.execute(sa.text("SELECT order_id FROM orders ORDER BY 1")).scalars().all() == [
            1,
            2,
        ]
    assert isinstance(started, datetime) and started.tzinfo is not None
    assert second.new_watermark >= started.astimezone(UTC)
