"""A first load appends straight into the empty target; a key seen twice falls back to the merge."""

from datetime import timedelta

import pytest

from pipewarden.db.engines import cached_engine
from pipewarden.dialects import dialect_for
from pipewarden.sync.run import SyncOptions, sync_table
from tests.sync.support import (
    WAREHOUSES,
    fill_orders,
    make_config,
    normalized,
    orders_table,
    rows_of,
    utc,
)

T0 = utc(2026, 3, 1)


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_row_changed_while_the_first_load_runs_lands_once_with_its_last_value(
    make_url, warehouse_kind, monkeypatch
):
    source_url, warehouse_url = make_url("postgresql", "src"), make_url(warehouse_kind, "wh")
    source = cached_engine(source_url)
    orders = orders_table()
    orders.create(source)
    fill_orders(source, orders, 450, T0)

    def change_an_appended_row(run) -> None:  # type: ignore[no-untyped-def]
        if run.batches == 1:
            # Row 5 was in the first batch; its new cursor puts it in the last one again.
            with source.begin() as conn:
                conn.execute(
                    orders.update()
                    .where(orders.c.order_id == 5)
                    .values(status="refunded", updated_at=T0 + timedelta(seconds=1000))
                )

    appended: list[bool] = []
    dialect = type(dialect_for(cached_engine(warehouse_url).dialect.name))
    bulk_insert = dialect.bulk_insert

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        appended.append(bulk_insert(self, *args, **kwargs))
        return appended[-1]

    monkeypatch.setattr(dialect, "bulk_insert", counted)
    run = sync_table(
        make_config(source_url, warehouse_url),
        "orders",
        SyncOptions(on_batch=change_an_appended_row),
    )

    assert run.status == "success"
    warehouse = cached_engine(warehouse_url)
    assert normalized(rows_of(warehouse)) == normalized(rows_of(source))
    assert rows_of(warehouse)[4][1] == "refunded"
    assert run.rows_read == 451 and run.rows_loaded == 451
    if dialect.direct_insert:
        # Batches 1-4 went straight in; the last one, holding row 5 again, was merged.
        assert appended == [True] * 4
    else:
        assert appended == []


def test_full_refresh_of_a_loaded_target_merges_instead_of_appending(postgres):
    source_url, warehouse_url = postgres.new("src"), postgres.new("wh")
    source = cached_engine(source_url)
    orders = orders_table()
    orders.create(source)
    fill_orders(source, orders, 250, T0)
    config = make_config(source_url, warehouse_url)
    sync_table(config, "orders")
    with source.begin() as conn:
        conn.execute(orders.update().where(orders.c.order_id <= 10).values(status="shipped"))

    run = sync_table(config, "orders", SyncOptions(full_refresh=True))

    assert run.rows_read == 250
    assert (run.rows_loaded, run.rows_unchanged) == (10, 240)
    assert normalized(rows_of(cached_engine(warehouse_url))) == normalized(rows_of(source))
