"""Repairs that tell the truth: the source wins even where its cursor went back, the audit
keeps what changed (with the reason), and what a repair could not fix is `remaining`."""

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
import yaml
from typer.testing import CliRunner

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.flows.reconcile import artifact_rows, summary
from pipewarden.reconcile.diff import diff_table
from pipewarden.reconcile.repair import hash_text
from pipewarden.reconcile.run import ReconcileOptions, reconcile_table
from pipewarden.records.alerts import recent_alerts
from pipewarden.records.reconcile_runs import reconcile_repairs
from tests.reconcile.support import copy_to_warehouse, create_source, execute, make_config

SOURCES = ["postgresql", "mariadb"]
BACK_3_DAYS = {
    "postgresql": "UPDATE items SET amount = 7, updated_at = updated_at - interval '3 days' "
    "WHERE id = 3",
    "mariadb": "UPDATE items SET amount = 7, updated_at = updated_at - INTERVAL 3 DAY WHERE id = 3",
}
NEWER = {
    "postgresql": "UPDATE items SET qty = 11, updated_at = now() WHERE id = 3",
    "mariadb": "UPDATE items SET qty = 11, updated_at = NOW(6) WHERE id = 3",
}


def _synced(make_url: Any, source_kind: str) -> tuple[PipewardenConfig, str, str]:
    """A source of that kind and its PostgreSQL warehouse copy, made by the sync."""
    source_url, warehouse_url = make_url(source_kind, "src"), make_url("postgresql", "wh")
    create_source(source_url, source_kind).dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    return config, source_url, warehouse_url


def _audit(warehouse_url: str) -> list[sa.Row]:
    with cached_engine(warehouse_url).connect() as conn:
        return list(conn.execute(sa.select(reconcile_repairs).order_by(reconcile_repairs.c.id)))


def _alerts(warehouse_url: str) -> dict[str, list[str]]:
    with cached_engine(warehouse_url).connect() as conn:
        alerts = recent_alerts(conn, limit=50)
    out: dict[str, list[str]] = {}
    for alert in alerts:
        out.setdefault(alert.evidence.check, []).append(f"{alert.kind}: {alert.evidence.reason}")
    return out


def _amount(url: str, key: int) -> object:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.text(f"SELECT amount FROM items WHERE id = {key}")).scalar()
    engine.dispose()
    return value


@pytest.mark.parametrize("source_kind", SOURCES)
def test_a_source_cursor_gone_back_is_repaired_audited_and_announced(make_url, source_kind):
    config, source_url, warehouse_url = _synced(make_url, source_kind)
    execute(source_url, BACK_3_DAYS[source_kind])

    report = reconcile_table(config, "items", ReconcileOptions(repair=True))

    assert [d.key for d in report.diff.changed] == [(3,)]
    assert report.remaining == 0 and report.remaining_keys == [] and report.clean
    assert float(_amount(warehouse_url, 3)) == 7.0  # type: ignore[arg-type]
    assert diff_table(config, "items").differences == 0
    [audit] = _audit(warehouse_url)
    assert (audit.key_value, audit.action, audit.reason) == ("[3]", "update", "source_cursor_back")
    assert audit.hash_after != audit.hash_before
    assert report.as_dict()["repair"]["backwards"] == [{"key": [3], "reason": "source_cursor_back"}]
    [notice] = _alerts(warehouse_url)["reconcile:cursor"]
    assert "source cursor went backwards" in notice and "keys 3" in notice


def test_a_warehouse_row_edited_ahead_of_every_sync_is_put_back(make_url):
    config, _, warehouse_url = _synced(make_url, "mariadb")
    execute(
        warehouse_url,
        "UPDATE items SET name = 'hand edit', updated_at = now() + interval '1 day' WHERE id = 1",
    )

    report = reconcile_table(config, "items", ReconcileOptions(repair=True))

    assert report.clean and diff_table(config, "items").differences == 0
    [audit] = _audit(warehouse_url)
    assert (audit.key_value, audit.reason) == ("[1]", "warehouse_ahead")
    [notice] = _alerts(warehouse_url)["reconcile:cursor"]
    assert "warehouse cursor was ahead" in notice and "keys 1" in notice


@pytest.mark.parametrize("source_kind", SOURCES)
def test_a_row_the_source_changes_again_during_the_repair_remains(make_url, source_kind):
    config, source_url, warehouse_url = _synced(make_url, source_kind)
    execute(source_url, BACK_3_DAYS[source_kind])
    written = []

    def source_moves_on(keys: list[tuple[object, ...]]) -> None:
        """A writer at the source, between the repair's write and the re-comparison."""
        written.extend(keys)
        execute(source_url, NEWER[source_kind])

    options = ReconcileOptions(repair=True, on_repair_chunk=source_moves_on)
    report = reconcile_table(config, "items", options)

    assert written == [(3,)]
    assert report.remaining == 1 and not report.clean
    assert report.remaining_keys == [{"key": [3], "diff": "changed"}]
    assert report.as_dict()["repair"]["remaining_keys"] == [{"key": [3], "diff": "changed"}]
    # The warehouse did change (to the version read), so the audit keeps it, with the hash the
    # warehouse row has now: not the source's, since the source moved on.
    [audit] = _audit(warehouse_url)
    assert audit.key_value == "[3]" and audit.hash_after != audit.hash_before
    [changed] = diff_table(config, "items").changed
    assert audit.hash_after == hash_text(changed.target_hash)
    [failing] = _alerts(warehouse_url)["reconcile"]
    assert "1 remain (keys 3)" in failing
    # The Prefect artifact names it first, and its summary says so.
    assert artifact_rows(report.as_dict())[0] == {
        "diff": "remaining changed",
        "key": "[3]",
        "columns": "",
    }
    assert "1 remain after the repair (keys [3])" in summary(report.as_dict())


def _cli_config(tmp_path: Path, source_url: str, warehouse_url: str) -> str:
    path = tmp_path / "pipewarden.yaml"
    table = {"source": "src", "primary_key": "id", "cursor": "updated_at", "lookback": "0s"}
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse_url},
                "sources": {"src": {"url": source_url}},
                "tables": {"items": table},
            }
        )
    )
    return str(path)


def test_cli_repair_a_row_the_warehouse_refuses_remains_unaudited_exit_1(tmp_path, make_url):
    """A trigger in the warehouse keeps row 3 as it is: the repair cannot fix it."""
    from pipewarden.cli.reconcile import reconcile

    _, source_url, warehouse_url = _synced(make_url, "postgresql")
    execute(source_url, NEWER["postgresql"], "DELETE FROM items WHERE id = 5")
    execute(
        warehouse_url,
        "CREATE FUNCTION keep_three() RETURNS trigger AS $$ BEGIN "
        "IF NEW.id = 3 THEN RETURN OLD; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER keep BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION keep_three()",
    )
    app = typer.Typer()
    app.command()(reconcile)
    config = _cli_config(tmp_path, source_url, warehouse_url)

    shown = CliRunner().invoke(app, ["items", "-c", config, "--repair"], terminal_width=200)

    assert shown.exit_code == 1, shown.output
    assert "remaining changed [3]" in shown.output
    # Only the delete of row 5 changed the warehouse: the update of row 3 was only attempted.
    assert [(r.key_value, r.action) for r in _audit(warehouse_url)] == [("[5]", "delete")]

    again = CliRunner().invoke(app, ["items", "-c", config, "--repair", "--json"])
    assert again.exit_code == 1, again.output
    data = json.loads(again.output)
    assert data["repair"]["remaining"] == 1 and data["repair"]["upserted"] == 0
    assert data["repair"]["remaining_keys"] == [{"key": [3], "diff": "changed"}]


def test_a_dry_runs_alert_names_a_sample_of_the_differing_keys(make_url):
    config, source_url, warehouse_url = _synced(make_url, "postgresql")
    execute(source_url, BACK_3_DAYS["postgresql"])
    execute(source_url, "DELETE FROM items WHERE id = 5")

    report = reconcile_table(config, "items")

    assert not report.clean and report.remaining_keys == []  # nothing repaired, nothing left
    [failing] = _alerts(warehouse_url)["reconcile"]
    assert "2 rows differ from the source" in failing
    assert "keys 5, 3" in failing or "keys 3, 5" in failing
