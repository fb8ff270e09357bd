"""The lookback against the cursor's type, and the cursor's tick re-read by every run."""

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql as pg

from pipewarden.config import ConfigError
from pipewarden.db.engines import cached_engine
from pipewarden.dialects import dialect_for
from pipewarden.records.sync_runs import last_runs
from pipewarden.sync.run import SyncError, sync_table
from pipewarden.sync.schema import reflect
from tests.sync.support import (
    SOURCES,
    WAREHOUSES,
    make_config,
    naive_if_needed,
    normalized,
    orders_table,
    rows_of,
    utc,
)

T0 = utc(2026, 3, 1, 12, 0, 0)
#: Cursor columns that keep whole seconds, as each source declares them.
WHOLE_SECOND_CURSORS = {
    "mariadb": mysql.DATETIME(),
    "postgresql": pg.TIMESTAMP(timezone=True, precision=0),
    "sqlite": sa.DateTime(timezone=True),
}


def versioned_table() -> sa.Table:
    return sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(20)),
        sa.Column("updated_at", sa.BigInteger, nullable=False),  # a version or an epoch
    )


def test_a_negative_lookback_is_refused_when_the_configuration_loads(sqlite_url):
    for lookback in (-3, "-5m", -1.5):
        with pytest.raises(ConfigError) as error:
            make_config(sqlite_url("src"), sqlite_url("wh"), lookback=lookback)
        assert "tables.orders.lookback" in str(error.value)
        assert "negative" in str(error.value)


@pytest.mark.parametrize("source_kind", SOURCES)
def test_a_duration_lookback_on_a_number_cursor_fails_the_sync_by_name(make_url, source_kind):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url("sqlite", "wh")
    table = versioned_table()
    table.create(cached_engine(source_url))
    with cached_engine(source_url).begin() as conn:
        conn.execute(table.insert(), [{"order_id": 1, "status": "paid", "updated_at": 7}])
    config = make_config(source_url, warehouse_url, lookback="5m")
    with pytest.raises(SyncError) as error:
        sync_table(config, "orders")
    message = str(error.value)
    assert "tables.orders.lookback" in message and "5m is a duration" in message
    assert "cursor 'updated_at' is an integer column" in message
    runs = last_runs(cached_engine(warehouse_url), "orders")
    assert [r.status for r in runs] == ["failed"] and runs[0].rows_read == 0
    # A count of cursor values is what it takes: the same table syncs.
    counted = make_config(source_url, warehouse_url, lookback=3)
    assert sync_table(counted, "orders").rows_loaded == 1


@pytest.mark.parametrize("source_kind", SOURCES)
def test_a_count_lookback_on_a_timestamp_cursor_fails_the_sync_by_name(make_url, source_kind):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url("sqlite", "wh")
    orders_table().create(cached_engine(source_url))
    config = make_config(source_url, warehouse_url, lookback=300)
    with pytest.raises(SyncError) as error:
        sync_table(config, "orders")
    message = str(error.value)
    assert "tables.orders.lookback: 300 is a count of cursor values" in message
    assert "cursor 'updated_at' is a timestamp column" in message and "300s or 300m" in message


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
@pytest.mark.parametrize("source_kind", ["mariadb", "postgresql", "sqlite"])
def test_a_row_changed_twice_within_one_tick_lands_with_its_last_value_at_lookback_0(
    make_url, source_kind, warehouse_kind
):
    """Both writes fall in one second of a whole-second cursor, with a sync in between."""
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    source = cached_engine(source_url)
    orders = orders_table(WHOLE_SECOND_CURSORS[source_kind])
    orders.create(source)
    first, second = T0 + timedelta(milliseconds=100), T0 + timedelta(milliseconds=300)
    with source.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {"order_id": 1, "status": "paid", "amount": Decimal("10.00"), "updated_at": t}
                for t in [naive_if_needed(source, first)]
            ],
        )
    if source_kind == "sqlite":  # text keeps what it is given: write what CURRENT_TIMESTAMP does
        with source.begin() as conn:
            conn.execute(sa.text("UPDATE orders SET updated_at = '2026-03-01 12:00:00'"))
    config = make_config(source_url, warehouse_url, lookback="0s")
    assert sync_table(config, "orders").rows_loaded == 1
    with source.begin() as conn:
        stamp = naive_if_needed(source, second)
        conn.execute(orders.update().values(status="refunded", updated_at=stamp))
        if source_kind == "sqlite":
            conn.execute(sa.text("UPDATE orders SET updated_at = '2026-03-01 12:00:00'"))
    with source.connect() as conn:  # the database kept one value for both writes
        assert len({r[0] for r in conn.execute(sa.select(orders.c.updated_at))}) == 1
    again = sync_table(config, "orders")
    assert (again.rows_loaded, again.rows_unchanged) == (1, 0)
    warehouse = cached_engine(warehouse_url)
    assert normalized(rows_of(warehouse))[0][1] == "refunded"
    assert normalized(rows_of(warehouse)) == normalized(rows_of(source))


@pytest.mark.parametrize(
    "source_kind,column,tick",
    [
        ("mariadb", mysql.DATETIME(), timedelta(seconds=1)),
        ("mariadb", mysql.DATETIME(fsp=3), timedelta(milliseconds=1)),
        ("mariadb", mysql.DATETIME(fsp=6), timedelta(microseconds=1)),
        ("postgresql", pg.TIMESTAMP(precision=0), timedelta(seconds=1)),
        ("postgresql", pg.TIMESTAMP(timezone=True, precision=2), timedelta(milliseconds=10)),
        ("postgresql", pg.TIMESTAMP(timezone=True), timedelta(microseconds=1)),
        ("sqlite", sa.DateTime(), timedelta(seconds=1)),
        ("postgresql", sa.BigInteger(), 1),
        ("mariadb", sa.Date(), timedelta(days=1)),
        ("sqlite", sa.Text(), None),
    ],
)
def test_the_cursor_tick_comes_from_the_reflected_column_type(make_url, source_kind, column, tick):
    url = make_url(source_kind, "src")
    engine = cached_engine(url)
    sa.Table(
        "t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("c", column)
    ).create(engine)
    with engine.connect() as conn:
        shape = reflect(conn, "t")
    assert shape is not None
    dialect = dialect_for(engine.dialect.name)
    assert dialect.cursor_tick(shape.table.c.c.type, shape.kinds["c"]) == tick
