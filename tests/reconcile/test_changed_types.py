"""A source column whose type changed after the sync: reconcile names the drift as the sync
does, says what to do, records the run as failed and exits 2 (never a raw SQL error)."""

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from pipewarden.cli.reconcile import reconcile
from pipewarden.records.reconcile_runs import reconcile_runs
from tests.reconcile.support import (
    COLUMNS,
    DDL,
    config_file,
    copy_to_warehouse,
    create_source,
    execute,
    make_config,
)

app = typer.Typer()
app.command()(reconcile)

#: Source engine and its warehouse.
PAIRS = [("postgresql", "postgresql"), ("mariadb", "postgresql"), ("sqlite", "sqlite")]
#: The column, its new type per engine, and how the sync names the change.
CHANGES = {
    "numeric-to-double": (
        "amount",
        {"postgresql": "DOUBLE PRECISION", "mariadb": "DOUBLE", "sqlite": "FLOAT"},
        "'amount' changed type from decimal(38,10) in the warehouse to float in the source",
    ),
    "int-to-text": (
        "qty",
        {"postgresql": "TEXT", "mariadb": "TEXT", "sqlite": "TEXT"},
        "'qty' changed type from integer in the warehouse to text in the source",
    ),
}


def _retype(url: str, kind: str, column: str, new_type: str) -> None:
    if kind == "postgresql":
        execute(
            url,
            f"ALTER TABLE items ALTER COLUMN {column} TYPE {new_type} USING {column}::{new_type}",
        )
    elif kind == "mariadb":
        execute(url, f"ALTER TABLE items MODIFY {column} {new_type}")
    else:  # SQLite changes a column's type by copying the table
        old = DDL["sqlite"].split("(", 1)[1].rsplit(")", 1)[0]
        lines = [
            f"{column} {new_type}" if line.strip().startswith(f"{column} ") else line.strip()
            for line in old.split(",\n")
        ]
        names = ", ".join(COLUMNS)
        execute(
            url,
            "ALTER TABLE items RENAME TO old_items",
            f"CREATE TABLE items ({', '.join(lines)})",
            f"INSERT INTO items ({names}) SELECT {names} FROM old_items",
            "DROP TABLE old_items",
        )


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_a_retyped_source_column_is_named_drift(
    tmp_path, make_url, source_kind, warehouse_kind, change
):
    column, new_types, named = CHANGES[change]
    source, warehouse = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    create_source(source, source_kind).dispose()
    copy_to_warehouse(make_config(source, warehouse))
    _retype(source, source_kind, column, new_types[source_kind])
    settings = {
        "warehouse": {"url": warehouse},
        "sources": {"src": {"url": source}},
        "tables": {"items": {"source": "src", "primary_key": "id", "cursor": "updated_at"}},
    }

    result = CliRunner().invoke(app, ["items", "--config", config_file(tmp_path, settings)])

    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "SchemaDriftError: source table items: column " + named in text
    assert "Nothing was compared" in text and "--full-refresh" in text and "--columns" in text
    engine = sa.create_engine(warehouse)
    with engine.connect() as conn:
        status, error = conn.execute(
            sa.select(reconcile_runs.c.status, reconcile_runs.c.error)
        ).one()
    engine.dispose()
    assert status == "failed" and named in error

    # Leaving the retyped column out compares the rest.
    others = CliRunner().invoke(
        app,
        ["items", "--config", config_file(tmp_path, settings), "--columns", "name,note", "--json"],
    )
    assert others.exit_code == 0, others.output


def test_mariadb_boolean_compares_with_a_boolean_warehouse_column(make_url):
    """MariaDB's BOOLEAN is TINYINT(1), an integer to the sync; a warehouse table made another
    way may hold a real boolean. They compare as 0/1 (no type change is claimed)."""
    from pipewarden.reconcile.diff import DiffOptions, diff_table

    source_url, warehouse_url = make_url("mariadb", "src"), make_url("postgresql", "wh")
    create_source(source_url, "mariadb").dispose()
    create_source(warehouse_url, "postgresql").dispose()
    config = make_config(source_url, warehouse_url)
    options = DiffOptions(columns=["active"])

    assert diff_table(config, "items", options).differences == 0

    execute(warehouse_url, "UPDATE items SET active = NOT active WHERE id = 3")
    result = diff_table(config, "items", options)
    assert [(d.key, d.columns) for d in result.changed] == [((3,), ["active"])]
