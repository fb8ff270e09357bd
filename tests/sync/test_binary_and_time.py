"""bytea/BLOB, time and timetz columns: synced exactly into every warehouse, first load and merge.

These types leave PostgreSQL's CSV COPY for the binary one; a query sent inside that COPY (the
column types) once hung the load for ever.
"""

from datetime import time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql as pg

from pipewarden.db.engines import cached_engine
from pipewarden.sync.run import sync_table
from tests.sync.support import SOURCES, TIMESTAMP, WAREHOUSES, make_config, naive_if_needed, utc

BLOBS = [b"", b"\x00\xff\x00", b"\\N", b'a,"b"\n\r\\x', bytes(range(256)), None]
TIMES = [
    time(0, 0),
    time(23, 59, 59, 999999),
    time(12, 34, 56, 1),
    time(7, 0, 0, 500000),
    None,
    time(1, 2, 3),
]
OFFSETS = ["00:00:00+00", "12:34:56.5+05:30", "23:59:59.999999-08", "07:00:00+14", None, "1:2:3-1"]


def source_table(kind: str) -> sa.Table:
    columns = [
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("updated_at", TIMESTAMP),
        sa.Column("payload", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")),
        sa.Column("at_time", sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")),
    ]
    if kind == "postgresql":
        columns.append(sa.Column("at_timetz", pg.TIME(timezone=True)))
    return sa.Table("orders", sa.MetaData(), *columns)


def fill(engine: sa.Engine, table: sa.Table, ids: range, shift: int) -> None:
    rows = []
    for i in ids:
        row: dict[str, Any] = {
            "order_id": i,
            "updated_at": naive_if_needed(
                engine, utc(2026, 3, 1) + timedelta(seconds=i + 100 * shift)
            ),
            "payload": BLOBS[(i + shift) % len(BLOBS)],
            "at_time": TIMES[(i + shift) % len(TIMES)],
        }
        if "at_timetz" in table.c:
            row["at_timetz"] = OFFSETS[(i + shift) % len(OFFSETS)]
        rows.append(row)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)


def values(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Every row as Python values; a timetz as PostgreSQL's own text (the offset included)."""
    with engine.connect() as conn:
        table = sa.Table("orders", sa.MetaData(), autoload_with=conn)
        columns = [
            sa.cast(c, sa.Text) if isinstance(c.type, sa.Time) and c.type.timezone else c
            for c in table.c
            if c.name != "updated_at"
        ]
        out = []
        for row in conn.execute(sa.select(*columns).order_by(table.c.order_id)):
            out.append(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
        return out


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
@pytest.mark.parametrize("source_kind", SOURCES)
def test_binary_and_time_columns_round_trip_on_first_load_and_merge(
    make_url, source_kind, warehouse_kind
):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    source = cached_engine(source_url)
    table = source_table(source_kind)
    table.create(source)
    fill(source, table, range(1, 13), 0)
    config = make_config(source_url, warehouse_url, batch_size=5)

    first = sync_table(config, "orders")
    assert first.status == "success"
    assert first.rows_loaded == 12
    warehouse = cached_engine(warehouse_url)
    assert values(warehouse) == values(source)

    with source.begin() as conn:  # every row changed, and new rows, through the merge
        conn.execute(table.delete())
    fill(source, table, range(1, 16), 1)
    second = sync_table(config, "orders")
    assert second.status == "success"
    assert second.rows_loaded == 15
    assert values(warehouse) == values(source)
