"""A bare `sync_table(config, name)` applies the table's `schema:` and `normalize:` by itself."""

from pipewarden.sync.run import sync_table
from tests.checks.validation.support import (
    ORDERS,
    held,
    make_config,
    make_source,
    order,
    scalar,
    warehouse_keys,
)


def test_a_sync_without_options_normalizes_and_quarantines(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    make_source(source, ORDERS, [order(1), order(2, status="shipped?"), order(3, currency="eur")])
    config = make_config(
        source,
        warehouse_url,
        schema="pipewarden.checks.schemas.shop:Orders",
        normalize={"currency": ["currency_code"]},
    )

    run = sync_table(config, "orders")

    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (3, 2, 1)
    assert warehouse_keys(warehouse_url) == [1, 3]
    assert scalar(warehouse_url, "SELECT currency FROM orders WHERE order_id = 3") == "EUR"
    [entry] = held(warehouse_url)
    assert entry.primary_key == {"order_id": 2}
    assert [(r["column"], r["check"]) for r in entry.reasons] == [("status", "known_status")]
