"""The delta sync against real databases: every source kind into every warehouse kind."""

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.sync.run import sync_table
from tests.sync.support import (
    SOURCES,
    WAREHOUSES,
    WHOLE_SECONDS,
    make_config,
    naive_if_needed,
    normalized,
    orders_table,
    rows_of,
    utc,
)

PAIRS = [(s, w) for s in SOURCES for w in WAREHOUSES]
T0 = utc(2026, 3, 1, 12, 0, 0)


def setup(make_url, source_kind, warehouse_kind, timestamp=None, rows=(), **table):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    source = cached_engine(source_url)
    orders = orders_table() if timestamp is None else orders_table(timestamp)
    orders.create(source)
    insert(source, orders, rows)
    return make_config(source_url, warehouse_url, **table), source, orders


def insert(engine, table, rows):
    rows = [{**r, "updated_at": naive_if_needed(engine, r["updated_at"])} for r in rows]
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)


def update(engine, table, order_id, **values):
    if "updated_at" in values:
        values["updated_at"] = naive_if_needed(engine, values["updated_at"])
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.order_id == order_id).values(**values))


def row(i, at, status="paid", amount="10.00"):
    return {"order_id": i, "status": status, "amount": Decimal(amount), "updated_at": at}


def assert_target_equals_source(config, source):
    warehouse = cached_engine(config.warehouse.url)
    assert normalized(rows_of(warehouse)) == normalized(rows_of(source))


@pytest.mark.parametrize("source_kind,warehouse_kind", PAIRS)
def test_first_run_loads_everything_and_second_run_reads_only_the_delta(
    make_url, source_kind, warehouse_kind
):
    rows = [row(i, T0 + timedelta(seconds=i)) for i in range(1, 251)]
    config, source, orders = setup(make_url, source_kind, warehouse_kind, rows=rows)
    first = sync_table(config, "orders")
    assert (first.rows_read, first.rows_loaded, first.batches) == (250, 250, 3)
    assert first.new_watermark == T0 + timedelta(seconds=250)
    update(source, orders, 7, status="shipped", updated_at=T0 + timedelta(hours=1))
    second = sync_table(config, "orders")
    # lookback 0: only the watermark's own tick is re-read (row 250, unchanged) with the delta.
    assert (second.rows_read, second.rows_loaded, second.rows_unchanged) == (2, 1, 1)
    assert_target_equals_source(config, source)


@pytest.mark.parametrize("source_kind,warehouse_kind", PAIRS)
def test_many_rows_sharing_the_boundary_cursor_value_are_all_loaded(
    make_url, source_kind, warehouse_kind
):
    rows = [row(i, T0) for i in range(1, 251)]  # one cursor value, 2.5 batches
    config, source, orders = setup(make_url, source_kind, warehouse_kind, rows=rows)
    assert sync_table(config, "orders").rows_loaded == 250
    insert(source, orders, [row(i, T0) for i in range(251, 261)])  # more at the same instant
    again = sync_table(config, "orders")
    assert again.rows_loaded == 10
    assert_target_equals_source(config, source)


@pytest.mark.parametrize("source_kind,warehouse_kind", PAIRS)
def test_late_commit_with_older_cursor_inside_the_lookback_is_caught(
    make_url, source_kind, warehouse_kind
):
    rows = [row(i, T0 + timedelta(minutes=i)) for i in range(1, 11)]
    config, source, orders = setup(make_url, source_kind, warehouse_kind, rows=rows, lookback="5m")
    sync_table(config, "orders")
    # Clock skew / late commit: stamped 3 minutes before the watermark, committed after it.
    insert(source, orders, [row(11, T0 + timedelta(minutes=7), status="late")])
    caught = sync_table(config, "orders")
    assert caught.rows_loaded == 1
    assert_target_equals_source(config, source)


@pytest.mark.parametrize("source_kind,warehouse_kind", PAIRS)
def test_rows_re_read_by_the_lookback_land_only_where_they_changed_and_every_change_lands(
    make_url, source_kind, warehouse_kind
):
    """Re-read rows the warehouse holds as read are skipped; a change the cursor does not show
    (same cursor value, a value set to NULL or from NULL, a late row) still lands."""
    rows = [row(i, T0 + timedelta(minutes=i)) for i in range(1, 11)]
    rows[3]["status"] = None
    config, source, orders = setup(make_url, source_kind, warehouse_kind, rows=rows, lookback="1h")
    sync_table(config, "orders")
    update(source, orders, 3, status="refunded")  # cursor value unchanged
    update(source, orders, 5, amount=Decimal("10.01"))
    update(source, orders, 4, status="paid")  # from NULL
    update(source, orders, 6, status=None)  # to NULL
    insert(source, orders, [row(11, T0 + timedelta(minutes=2), status="late")])
    again = sync_table(config, "orders")
    assert (again.rows_read, again.rows_loaded, again.rows_unchanged) == (11, 5, 6)
    assert_target_equals_source(config, source)
    quiet = sync_table(config, "orders")  # everything re-read, nothing changed
    assert (quiet.rows_read, quiet.rows_loaded, quiet.rows_unchanged) == (11, 0, 11)
    assert_target_equals_source(config, source)


@pytest.mark.parametrize("source_kind,warehouse_kind", [("sqlite", "sqlite")])
def test_skew_beyond_the_lookback_is_left_to_reconciliation(make_url, source_kind, warehouse_kind):
    rows = [row(i, T0 + timedelta(minutes=i)) for i in range(1, 11)]
    config, source, orders = setup(make_url, source_kind, warehouse_kind, rows=rows, lookback="1m")
    sync_table(config, "orders")
    insert(source, orders, [row(11, T0 + timedelta(minutes=2))])
    assert sync_table(config, "orders").rows_loaded == 0  # documented: a cursor cannot see it


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_row_updated_twice_within_one_second_on_mariadb_lands_with_its_last_value(
    make_url, warehouse_kind
):
    config, source, orders = setup(
        make_url,
        "mariadb",
        warehouse_kind,
        timestamp=WHOLE_SECONDS,
        rows=[row(1, T0, status="paid")],
        lookback="2s",
    )
    sync_table(config, "orders")
    # The second change carries the same whole-second cursor value as the first.
    update(source, orders, 1, status="refunded", updated_at=T0)
    second = sync_table(config, "orders")
    assert second.rows_loaded == 1
    assert_target_equals_source(config, source)


@pytest.mark.parametrize("source_kind,warehouse_kind", PAIRS)
def test_soft_delete_arrives_as_an_update(make_url, source_kind, warehouse_kind):
    rows = [row(i, T0 + timedelta(seconds=i)) for i in range(1, 6)]
    config, source, orders = setup(make_url, source_kind, warehouse_kind, rows=rows)
    sync_table(config, "orders")
    update(source, orders, 3, status="deleted", updated_at=T0 + timedelta(hours=1))
    sync_table(config, "orders")
    assert_target_equals_source(config, source)


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_a_row_never_goes_back_to_an_older_version(make_url, warehouse_kind):
    config, source, orders = setup(
        make_url,
        "sqlite",
        warehouse_kind,
        rows=[row(1, T0 + timedelta(hours=2), status="delivered")],
    )
    sync_table(config, "orders")
    update(source, orders, 1, status="pending", updated_at=T0)  # an older version reappears
    run = sync_table(config, "orders", None)
    assert run.rows_loaded == 0
    warehouse = cached_engine(config.warehouse.url)
    assert rows_of(warehouse)[0][1] == "delivered"


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_rows_with_a_null_cursor_load_on_the_first_run(make_url, warehouse_kind):
    config, source, orders = setup(
        make_url, "sqlite", warehouse_kind, rows=[row(1, T0), row(2, T0 + timedelta(seconds=1))]
    )
    with source.begin() as conn:
        conn.execute(orders.insert().values(order_id=3, status="x", amount=1, updated_at=None))
    assert sync_table(config, "orders").rows_loaded == 3
    assert_target_equals_source(config, source)


def test_values_arrive_exactly_postgres_to_postgres_and_sqlite(make_url):
    source_url = make_url("postgresql", "src")
    source = cached_engine(source_url)
    with source.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (order_id bigint PRIMARY KEY, amount numeric(38,10), "
                "free numeric, doc jsonb, code char(3), updated_at timestamptz)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO orders VALUES "
                "(1, 12345678901234567890123456.0123456789, 0.1000000000000000055511151231257827, "
                "'{\"b\": 1, \"a\": [1, 2.50]}', 'EU', '2026-03-01 12:00:00.123456+02'), "
                "(2, -0.0000000001, -12.5, NULL, NULL, '2026-03-01 12:00:01.000001+00')"
            )
        )
    for warehouse_kind in ("postgresql", "sqlite"):
        config = make_config(source_url, make_url(warehouse_kind, "wh"))
        sync_table(config, "orders")
        warehouse = cached_engine(config.warehouse.url)
        with warehouse.connect() as conn:
            got = conn.execute(
                sa.text("SELECT amount, free, doc, updated_at FROM orders ORDER BY order_id")
            ).fetchall()
        assert Decimal(str(got[0][0])) == Decimal("12345678901234567890123456.0123456789")
        assert Decimal(str(got[0][1])) == Decimal("0.1000000000000000055511151231257827")
        assert Decimal(str(got[1][0])) == Decimal("-0.0000000001")
        doc = got[0][2] if isinstance(got[0][2], dict) else __import__("json").loads(got[0][2])
        assert doc == {"a": [1, 2.5], "b": 1}
        instant = got[0][3]
        if isinstance(instant, str):
            assert instant == "2026-03-01 10:00:00.123456"
        else:
            assert instant == utc(2026, 3, 1, 10, 0, 0).replace(microsecond=123456)


@pytest.mark.parametrize(
    "source_kind,warehouse_kind", [("mariadb", "sqlite"), ("postgresql", "postgresql")]
)
def test_a_row_stamped_in_the_future_does_not_carry_the_watermark_past_now(
    make_url, source_kind, warehouse_kind
):
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    rows = [row(1, now - timedelta(hours=1)), row(2, now + timedelta(days=1), status="typo")]
    config, source, orders = setup(make_url, source_kind, warehouse_kind, rows=rows)
    first = sync_table(config, "orders")
    assert first.rows_loaded == 2
    assert first.new_watermark <= datetime.now(UTC)
    insert(source, orders, [row(3, datetime.now(UTC))])  # an ordinary change after the run
    second = sync_table(config, "orders")
    assert second.rows_loaded == 1
    assert_target_equals_source(config, source)


@pytest.mark.parametrize("source_kind", ["sqlite", "mariadb"])
def test_json_columns_arrive_as_their_text(make_url, source_kind):
    source_url = make_url(source_kind, "src")
    source = cached_engine(source_url)
    table = sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("doc", sa.JSON),
        sa.Column("updated_at", sa.DateTime),
    )
    table.create(source)
    with source.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {
                    "order_id": 1,
                    "doc": {"b": 1, "a": [1, 2]},
                    "updated_at": T0.replace(tzinfo=None),
                },
                {"order_id": 2, "doc": None, "updated_at": T0.replace(tzinfo=None)},
            ],
        )
    config = make_config(source_url, make_url("sqlite", "wh"))
    assert sync_table(config, "orders").rows_loaded == 2
    with cached_engine(config.warehouse.url).connect() as conn:
        docs = conn.execute(sa.text("SELECT doc FROM orders ORDER BY order_id")).scalars().all()
    import json

    assert json.loads(docs[0]) == {"b": 1, "a": [1, 2]} and docs[1] in (None, "null")
