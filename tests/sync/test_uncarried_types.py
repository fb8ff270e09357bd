"""Source types beyond the common kinds: carried exactly as their text, or refused by name.

PostgreSQL writes every type as text, so inet, xml, money, bit, point and the types of
extensions travel as that text. MariaDB YEAR and SET travel as their text; BIT (raw bytes) and
types pipewarden does not know (geometry, INET6) are refused before anything loads, naming the
table, the column and what to do; so is a SQLite column declared without a type.
"""

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.reconcile.diff import diff_table
from pipewarden.sync.run import sync_table
from pipewarden.sync.schema import SchemaDriftError
from tests.reconcile.support import execute


def _config(source_url: str, warehouse_url: str) -> PipewardenConfig:
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {"odd": {"source": "src", "primary_key": ["id"], "cursor": "ver"}},
        },
        Path("test.yaml"),
    )


def _rows(url: str, query: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(query))]
    engine.dispose()
    return rows


def _has_table(url: str, name: str) -> bool:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).has_table(name)
    finally:
        engine.dispose()


#: `by` (bytea) makes the source read take the driver's typed values instead of COPY text.
PG_DDL = """CREATE TABLE odd (
    id BIGINT PRIMARY KEY, ver BIGINT DEFAULT 1, addr INET, doc XML, price MONEY, flags BIT(4),
    spot POINT, mac MACADDR, words TSVECTOR, by BYTEA)"""
PG_ROW = """INSERT INTO odd VALUES (1, 1, '10.0.0.1/8', '<a x="1">ü</a>', 12.5, B'1010',
    '(1.5,-2)', '08:00:2b:01:02:03', 'a fat cat', '\\x00ff'), (2, 1, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL)"""
PG_TEXT = ["addr", "doc", "price", "flags", "spot", "mac", "words"]


@pytest.mark.parametrize("warehouse_kind", ["postgresql", "sqlite"])
def test_postgres_types_beyond_the_kinds_arrive_as_their_text(make_url, warehouse_kind):
    source_url, warehouse_url = make_url("postgresql", "src"), make_url(warehouse_kind, "wh")
    execute(source_url, PG_DDL, PG_ROW)
    config = _config(source_url, warehouse_url)

    sync_table(config, "odd")

    texts = ", ".join(f"{c}::text" for c in PG_TEXT)
    expected = _rows(source_url, f"SELECT id, {texts} FROM odd ORDER BY id")
    held = _rows(warehouse_url, f"SELECT id, {', '.join(PG_TEXT)} FROM odd ORDER BY id")
    assert held == expected
    assert expected[0][1] == "10.0.0.1/8"
    assert diff_table(config, "odd").differences == 0


@pytest.mark.parametrize("warehouse_kind", ["postgresql", "sqlite"])
def test_mariadb_year_and_set_arrive_as_their_text(make_url, warehouse_kind):
    source_url, warehouse_url = make_url("mariadb", "src"), make_url(warehouse_kind, "wh")
    execute(
        source_url,
        "CREATE TABLE odd (id BIGINT PRIMARY KEY, ver BIGINT DEFAULT 1, made YEAR, "
        "tags SET('red', 'green', 'blue'))",
        "INSERT INTO odd (id, made, tags) VALUES (1, 2024, 'red,blue'), (2, NULL, ''), "
        "(3, 1901, NULL)",
    )
    config = _config(source_url, warehouse_url)

    sync_table(config, "odd")

    held = _rows(warehouse_url, "SELECT id, made, tags FROM odd ORDER BY id")
    assert held == [(1, "2024", "red,blue"), (2, None, ""), (3, "1901", None)]
    assert diff_table(config, "odd").differences == 0


@pytest.mark.parametrize(
    ("source_kind", "ddl", "column", "advice"),
    [
        (
            "mariadb",
            "CREATE TABLE odd (id BIGINT PRIMARY KEY, ver INT, flags BIT(8))",
            "flags",
            "CAST",
        ),
        (
            "mariadb",
            "CREATE TABLE odd (id BIGINT PRIMARY KEY, ver INT, shape GEOMETRY)",
            "shape",
            "view",
        ),
        (
            "sqlite",
            "CREATE TABLE odd (id INTEGER PRIMARY KEY, ver INT, anything)",
            "anything",
            "declare",
        ),
    ],
    ids=["mariadb-bit", "mariadb-geometry", "sqlite-untyped"],
)
def test_a_type_that_cannot_be_carried_is_refused_by_name(
    make_url, source_kind, ddl, column, advice
):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url("sqlite", "wh")
    execute(source_url, ddl, "INSERT INTO odd (id) VALUES (1)")

    with pytest.raises(SchemaDriftError) as refused:
        sync_table(_config(source_url, warehouse_url), "odd")

    message = str(refused.value)
    assert "table odd" in message and repr(column) in message and advice in message
    assert "Nothing was loaded" in message
    assert not _has_table(warehouse_url, "odd")
