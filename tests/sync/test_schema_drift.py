"""Columns appearing, disappearing or changing type in a source."""

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.records.tables import schema_changes, sync_runs
from pipewarden.sync.run import SyncOptions, sync_table
from pipewarden.sync.schema import SchemaDriftError
from tests.sync.support import WAREHOUSES, make_config, naive_if_needed, orders_table, utc

T0 = utc(2026, 3, 1, 12)


def prepare(make_url, source_kind, warehouse_kind):
    source_url = make_url(source_kind, "src")
    source = cached_engine(source_url)
    orders = orders_table()
    orders.create(source)
    with source.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "order_id": i,
                    "status": "paid",
                    "amount": Decimal("1.00"),
                    "updated_at": naive_if_needed(source, T0 + timedelta(seconds=i)),
                }
                for i in range(1, 6)
            ],
        )
    config = make_config(source_url, make_url(warehouse_kind, "wh"))
    sync_table(config, "orders")
    return config, source


def add_source_column(source):
    with source.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN channel VARCHAR(20)"))
        conn.execute(sa.text("UPDATE orders SET channel = 'web'"))
        conn.execute(
            sa.text("UPDATE orders SET updated_at = :at WHERE order_id = 5"),
            {"at": naive_if_needed(source, T0 + timedelta(hours=1))},
        )


def channels(config):
    with cached_engine(config.warehouse.url).connect() as conn:
        return conn.execute(sa.text("SELECT channel FROM orders ORDER BY order_id")).scalars().all()


@pytest.mark.parametrize("source_kind", ["postgresql", "mariadb", "sqlite"])
@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_new_column_is_added_reported_and_recorded(make_url, source_kind, warehouse_kind):
    config, source = prepare(make_url, source_kind, warehouse_kind)
    add_source_column(source)
    run = sync_table(config, "orders")
    assert run.schema_changes == [{"column": "channel", "change": "added"}]
    assert channels(config) == [None, None, None, None, "web"]  # only the changed row has it
    with cached_engine(config.warehouse.url).connect() as conn:
        recorded = conn.execute(sa.select(schema_changes.c.column_name, schema_changes.c.change))
        assert recorded.all() == [("channel", "added")]


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_backfill_fills_the_new_column_for_unchanged_rows(make_url, warehouse_kind):
    config, source = prepare(make_url, "sqlite", warehouse_kind)
    add_source_column(source)
    sync_table(config, "orders")
    run = sync_table(config, "orders", SyncOptions(backfill_columns=["channel"]))
    assert {"column": "channel", "change": "backfilled"} in run.schema_changes
    assert channels(config) == ["web"] * 5
    with cached_engine(config.warehouse.url).connect() as conn:
        assert conn.execute(sa.select(schema_changes.c.backfilled_at)).scalar() is not None


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_dropped_column_fails_the_run_naming_it_with_nothing_loaded(make_url, warehouse_kind):
    config, source = prepare(make_url, "postgresql", warehouse_kind)
    with source.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders DROP COLUMN amount"))
        conn.execute(
            sa.text("UPDATE orders SET status = 'x', updated_at = updated_at + interval '1 hour'")
        )
    with pytest.raises(SchemaDriftError, match="'amount' was dropped"):
        sync_table(config, "orders")
    with cached_engine(config.warehouse.url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders WHERE status = 'x'")).scalar() == 0
        last = conn.execute(
            sa.select(sync_runs.c.status, sync_runs.c.error).order_by(sync_runs.c.started_at.desc())
        ).first()
    assert last.status == "failed" and "amount" in last.error


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_the_hint_for_a_dropped_column_is_a_step_that_works(make_url, warehouse_kind):
    """Do what the message says, literally: the next sync loads what the source changed."""
    config, source = prepare(make_url, "postgresql", warehouse_kind)
    with source.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders DROP COLUMN amount"))
        conn.execute(
            sa.text("UPDATE orders SET status = 'x', updated_at = updated_at + interval '1 hour'")
        )
    with pytest.raises(SchemaDriftError) as refused:
        sync_table(config, "orders")
    message = str(refused.value)
    step = message.split("(its values there are lost): ", 1)[1].split("; then sync again", 1)[0]
    assert step.startswith("ALTER TABLE") and "amount" in step
    with cached_engine(config.warehouse.url).begin() as conn:
        conn.execute(sa.text(step))

    run = sync_table(config, "orders")

    assert run.status == "success" and run.rows_loaded == 5
    with cached_engine(config.warehouse.url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders WHERE status = 'x'")).scalar() == 5


def test_changed_type_fails_the_run_naming_the_column(make_url):
    config, source = prepare(make_url, "postgresql", "postgresql")
    with source.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders ALTER COLUMN status TYPE integer USING 1"))
    with pytest.raises(SchemaDriftError, match="'status' changed type from text"):
        sync_table(config, "orders")
