"""`pipewarden reconcile` exit codes and JSON, and the flow's task and artifact rows."""

import json

import typer
import yaml
from typer.testing import CliRunner

from pipewarden.cli.reconcile import reconcile
from pipewarden.flows.reconcile import artifact_key, artifact_rows, reconcile_task, summary
from tests.reconcile.support import copy_to_warehouse, create_source, execute, make_config

app = typer.Typer()
app.command()(reconcile)


def _setup(tmp_path, sqlite_url):  # type: ignore[no-untyped-def]
    source_url, warehouse_url = sqlite_url("src"), sqlite_url("wh")
    create_source(source_url, "sqlite").dispose()
    copy_to_warehouse(make_config(source_url, warehouse_url))
    execute(source_url, "DELETE FROM items WHERE id = 2")
    execute(warehouse_url, "UPDATE items SET note = 'typo' WHERE id = 3")
    path = tmp_path / "pipewarden.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse_url},
                "sources": {"src": {"url": source_url}},
                "tables": {"items": {"source": "src", "primary_key": "id", "cursor": "updated_at"}},
            }
        )
    )
    return str(path)


def test_cli_dry_run_exits_1_with_json_then_repair_exits_0(tmp_path, sqlite_url):
    config = _setup(tmp_path, sqlite_url)
    runner = CliRunner()

    found = runner.invoke(app, ["items", "--config", config, "--json"])
    assert found.exit_code == 1, found.output
    data = json.loads(found.output)
    assert data["counts"] == {"missing": 0, "extra": 1, "changed": 1, "held": 0, "normalized": 0}
    assert data["extra"] == [[2]]
    assert data["changed"] == [{"key": [3], "columns": ["note"]}]
    assert data["coverage"] == 1.0 and data["rows_compared"] == 5
    assert set(data["timings"]) >= {"total"}

    repaired = runner.invoke(app, ["items", "--config", config, "--repair", "--json"])
    assert repaired.exit_code == 0, repaired.output
    assert json.loads(repaired.output)["repair"]["remaining"] == 0

    clean = runner.invoke(app, ["items", "--config", config, "--dry-run"])
    assert clean.exit_code == 0, clean.output


def test_cli_options_keys_only_key_range_and_parity(tmp_path, sqlite_url):
    config = _setup(tmp_path, sqlite_url)
    runner = CliRunner()

    keys_only = runner.invoke(app, ["items", "-c", config, "--keys-only", "--json"])
    counts = json.loads(keys_only.output)["counts"]
    assert counts == {"missing": 0, "extra": 1, "changed": 0, "held": 0, "normalized": 0}

    ranged = runner.invoke(app, ["items", "-c", config, "--key-range", "3:", "--json"])
    ranged_counts = json.loads(ranged.output)["counts"]
    assert (ranged_counts["missing"], ranged_counts["extra"], ranged_counts["changed"]) == (0, 0, 1)

    columns = runner.invoke(app, ["items", "-c", config, "--columns", "name,qty", "--json"])
    assert json.loads(columns.output)["counts"]["changed"] == 0

    parity = runner.invoke(app, ["items", "-c", config, "--check-parity", "--keys-only"])
    assert "parity" in parity.output


def test_cli_errors_exit_2(tmp_path, sqlite_url):
    config = _setup(tmp_path, sqlite_url)
    runner = CliRunner()
    assert runner.invoke(app, ["nope", "-c", config]).exit_code == 2
    assert runner.invoke(app, ["items", "-c", config, "--dry-run", "--repair"]).exit_code == 2
    assert runner.invoke(app, ["items", "-c", str(tmp_path / "missing.yaml")]).exit_code == 2


def test_flow_task_and_artifact(tmp_path, sqlite_url):
    config = _setup(tmp_path, sqlite_url)

    result = reconcile_task.fn("items", False, None, None, False, None, None, config)

    assert result["clean"] is False
    rows = artifact_rows(result)
    assert {"diff": "extra", "key": "[2]", "columns": ""} in rows
    assert {"diff": "changed", "key": "[3]", "columns": "note"} in rows
    assert artifact_key("Items_2024") == "pipewarden-reconcile-items-2024"
    assert "1 extra, 1 changed" in summary(result)


def test_json_written_piece_by_piece_is_the_report_as_a_dict():
    """`--json` streams the differing keys; the text must be what `as_dict` says, for every
    kind of key (integers take a path of their own)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from pipewarden.reconcile.diff import DiffResult
    from pipewarden.reconcile.repair import RepairOutcome
    from pipewarden.reconcile.run import ReconcileReport
    from pipewarden.reconcile.stream_diff import RowDiff

    keys = [(1,), (-7, "x"), ('a"b',), (Decimal("1.50"),), (datetime(2026, 1, 1, tzinfo=UTC),)]
    diff = DiffResult(
        table="items",
        mode="stream",
        missing=[RowDiff("missing", k, 1) for k in keys],
        extra=[RowDiff("extra", k, None, 2) for k in keys[:2]],
        changed=[RowDiff("changed", keys[2], 1, 2, ["note", "amount"]), RowDiff("changed", (9,))],
        rows_compared=10,
        rows_estimated=10,
        source_rows=10,
        target_rows=10,
        buckets=1,
        buckets_differing=1,
        complete=True,
        stopped_by=None,
        columns=["id"],
        timings={"total": 0.5},
    )
    report = ReconcileReport("run", "items", "dry-run", diff, RepairOutcome(upserted=1))
    assert json.loads(report.to_json()) == json.loads(json.dumps(report.as_dict()))
    assert report.to_json() == json.dumps(report.as_dict())
