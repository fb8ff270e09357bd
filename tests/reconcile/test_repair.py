"""Repair leaves the warehouse equal to the source, audits itself, and is idempotent."""

import json

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.reconcile.diff import diff_table
from pipewarden.reconcile.run import ReconcileOptions, reconcile_table
from pipewarden.records.metrics import history, metrics
from pipewarden.records.reconcile_runs import reconcile_diffs, reconcile_repairs, reconcile_runs
from tests.reconcile.support import PAIRS, copy_to_warehouse, create_source, execute, make_config


def _break_warehouse(source_url: str, warehouse_url: str) -> None:
    """A hard delete at the source, a lost row, a hand edit and a stray row in the warehouse."""
    execute(source_url, "DELETE FROM items WHERE id = 5")
    execute(
        warehouse_url,
        "DELETE FROM items WHERE id = 4",
        "UPDATE items SET name = 'hand edit', qty = 42 WHERE id = 1",
        "INSERT INTO items (id, name) VALUES (99, 'stray')",
    )


def _rows(url: str, table: str) -> list[sa.Row]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(sa.text(f"SELECT * FROM {table}")))
    engine.dispose()
    return rows


@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_repair_fixes_every_difference_and_a_second_run_finds_nothing(
    make_url, source_kind, warehouse_kind
):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    create_source(source_url, source_kind).dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    _break_warehouse(source_url, warehouse_url)

    report = reconcile_table(config, "items", ReconcileOptions(repair=True))

    assert sorted(d.key for d in report.diff.extra) == [(5,), (99,)]
    assert [d.key for d in report.diff.missing] == [(4,)]
    assert [(d.key, d.columns) for d in report.diff.changed] == [((1,), ["name", "qty"])]
    assert (report.repair.upserted, report.repair.deleted, report.remaining) == (2, 2, 0)
    assert report.clean
    assert diff_table(config, "items").differences == 0
    again = reconcile_table(config, "items", ReconcileOptions(repair=True))
    assert again.diff.differences == 0 and again.repair.repaired == 0
    audit = _rows(warehouse_url, reconcile_repairs.name)
    assert sorted(r.action for r in audit) == ["delete", "delete", "insert", "update"]
    assert all(r.run_id == report.run_id for r in audit)
    update = next(r for r in audit if r.action == "update")
    assert update.hash_before and update.hash_after and update.hash_before != update.hash_after


def test_postgres_repair_makes_rows_identical(make_url):
    source_url, warehouse_url = make_url("postgresql", "src"), make_url("postgresql", "wh")
    create_source(source_url, "postgresql").dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    _break_warehouse(source_url, warehouse_url)

    reconcile_table(config, "items", ReconcileOptions(repair=True))

    query = "items ORDER BY id"
    columns = "id, name, note, amount, price, qty, ratio, active, born, created_at, updated_at"
    source = _rows(source_url, f"(SELECT {columns}, payload::jsonb AS p FROM {query}) s")
    target = _rows(warehouse_url, f"(SELECT {columns}, payload::jsonb AS p FROM {query}) s")
    assert source == target


def test_dry_run_changes_nothing_and_records_what_it_found(make_url):
    source_url, warehouse_url = make_url("mariadb", "src"), make_url("sqlite", "wh")
    create_source(source_url, "mariadb").dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    _break_warehouse(source_url, warehouse_url)
    before = sorted(_rows(warehouse_url, "items"))

    report = reconcile_table(config, "items")

    assert report.action == "dry-run" and not report.clean
    assert (report.repair.upserted, report.repair.deleted) == (2, 2)
    assert sorted(_rows(warehouse_url, "items")) == before
    assert _rows(warehouse_url, reconcile_repairs.name) == []
    runs = _rows(warehouse_url, reconcile_runs.name)
    assert [(r.status, r.missing, r.extra, r.changed) for r in runs] == [("differences", 1, 2, 1)]
    diffs = _rows(warehouse_url, reconcile_diffs.name)
    assert sorted((r.diff, r.key_value) for r in diffs) == [
        ("changed", "[1]"),
        ("extra", "[5]"),
        ("extra", "[99]"),
        ("missing", "[4]"),
    ]
    repaired = reconcile_table(config, "items", ReconcileOptions(repair=True))
    assert repaired.clean
    # Each outcome is a metric too, for Grafana: severity, labels, and the counts as series.
    with cached_engine(warehouse_url).connect() as conn:
        outcomes = conn.execute(
            sa.select(metrics.c.value, metrics.c.labels)
            .where(metrics.c.metric == "reconcile_outcome")
            .order_by(metrics.c.measured_at)
        ).all()
        counts = {
            name: history(conn, "items", f"reconcile_{name}")[1]
            for name in ("missing", "extra", "changed", "repaired", "remaining")
        }
    assert [(v, json.loads(labels)["status"]) for v, labels in outcomes] == [
        (1.0, "differences"),
        (0.0, "clean"),
    ]
    assert json.loads(outcomes[0][1])["action"] == "dry-run"
    assert counts == {
        "missing": [1.0, 1.0],
        "extra": [2.0, 2.0],
        "changed": [1.0, 1.0],
        "repaired": [0.0, 4.0],
        "remaining": [0.0],
    }
