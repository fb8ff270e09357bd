"""PostgreSQL `interval`, `int[]` and `text[]` columns: carried exactly into every warehouse
(typed in PostgreSQL, PostgreSQL's own text in SQLite with the kind recorded), first load and
merge, and a reconciliation then finds nothing."""

from typing import Any

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.reconcile.diff import diff_table
from pipewarden.records.column_kinds import read_kinds
from pipewarden.sync.run import sync_table
from tests.sync.support import WAREHOUSES, make_config

INTERVALS = [
    "1 year 2 mons 3 days 04:05:06.789",
    "-00:00:01",
    "00:00:00",
    None,
    "-1 days +23:59:59",
]
INTS = ["{1,NULL,-3}", "{}", "{{1,2},{3,4}}", None, "{2147483647}"]
TEXTS = ['{"a,b",NULL,"say \\"hi\\"","NULL",""}', "{}", None, '{"{x}","back\\\\slash"}', "{é}"]


def insert(conn: sa.Connection, ids: range, shift: int, with_blob: bool) -> None:
    blob = ", :blob" if with_blob else ""
    for i in ids:
        conn.execute(
            sa.text(
                "INSERT INTO orders VALUES (:id, timestamptz '2026-03-01' + :s * interval '1 s', "
                f"CAST(:iv AS interval), CAST(:ints AS int[]), CAST(:texts AS text[]){blob})"
            ),
            {
                "id": i,
                "s": i + 100 * shift,
                "iv": INTERVALS[(i + shift) % len(INTERVALS)],
                "ints": INTS[(i + shift) % len(INTS)],
                "texts": TEXTS[(i + shift) % len(TEXTS)],
                "blob": bytes([i, 0, 255]),
            },
        )


def texts(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Each row's values as PostgreSQL writes them (a warehouse column of text as it is)."""
    with engine.connect() as conn:
        text = "CAST({} AS TEXT)" if engine.dialect.name == "postgresql" else "{}"
        columns = ", ".join(text.format(c) for c in ("iv", "ints", "texts"))
        query = f"SELECT {columns} FROM orders ORDER BY order_id"
        return [tuple(r) for r in conn.exec_driver_sql(query)]


@pytest.mark.parametrize("with_blob", [False, True], ids=["csv", "binary-copy"])
@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_interval_and_array_columns_are_carried_exactly(make_url, warehouse_kind, with_blob):
    source_url, warehouse_url = make_url("postgresql", "src"), make_url(warehouse_kind, "wh")
    source = cached_engine(source_url)
    with source.begin() as conn:
        # Without a binary column every batch travels as CSV; with one, as binary COPY.
        conn.exec_driver_sql(
            "CREATE TABLE orders (order_id int PRIMARY KEY, updated_at timestamptz, "
            "iv interval, ints int[], texts text[]" + (", blob bytea)" if with_blob else ")")
        )
        insert(conn, range(1, 11), 0, with_blob)
    config = make_config(source_url, warehouse_url, batch_size=4)
    warehouse = cached_engine(warehouse_url)

    assert sync_table(config, "orders").rows_loaded == 10
    assert texts(warehouse) == texts(source)
    with source.begin() as conn:  # every row changed, five new ones: the merge
        conn.exec_driver_sql("DELETE FROM orders")
        insert(conn, range(1, 16), 1, with_blob)
    assert sync_table(config, "orders").rows_loaded == 15
    assert texts(warehouse) == texts(source)

    with warehouse.connect() as conn:
        kinds = read_kinds(conn, "orders")
        types = {c["name"]: str(c["type"]) for c in sa.inspect(conn).get_columns("orders")}
    assert (kinds["iv"].kind, kinds["ints"].kind, kinds["texts"].kind) == (
        "interval",
        "array",
        "array",
    )
    if warehouse_kind == "postgresql":
        assert (types["iv"], types["ints"], types["texts"]) == (
            "INTERVAL",
            "ARRAY",
            "ARRAY",
        )
    assert diff_table(config, "orders").differences == 0
