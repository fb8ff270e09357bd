"""Every reporting command's `--json`, parsed back and compared with the warehouse, and the exit
codes they share: 0 all good, 1 the data needs attention, 2 pipewarden could not do its job."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.records.incidents import incidents
from pipewarden.records.metrics import check_results
from pipewarden.records.quarantine import quarantine
from pipewarden.records.tables import sync_runs
from tests.checks.validation.support import ORDERS, make_source, order

runner = CliRunner()
FRESH = {"warn_after": "2h", "error_after": "4h"}
#: Minutes-old data is over this SLA: status and check find the table needs attention.
STRICT = {"warn_after": "1s", "error_after": "2s"}


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, make_url: Any, tmp_path: Path) -> dict[str, Any]:
    """An orders source whose order 4 has an unknown currency (the schema holds it back), and
    a configuration per SLA; nothing synced yet."""
    source = make_url("sqlite", "shop")
    warehouse = make_url(request.param, "wh")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = [order(i, updated_at=now - timedelta(minutes=10 - i)) for i in (1, 2, 3)]
    make_source(source, ORDERS, [*rows, order(4, currency="XYZ", updated_at=now)]).dispose()
    paths = {}
    for name, sla in (("fresh", FRESH), ("strict", STRICT)):
        table = {
            "source": "src",
            "primary_key": "order_id",
            "cursor": "updated_at",
            "schema": "pipewarden.checks.schemas.shop:Orders",
            "freshness": sla,
        }
        data = {
            "warehouse": {"url": warehouse},
            "sources": {"src": {"url": source}},
            "tables": {"orders": table},
        }
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(data))
    newest = rows[-1]["updated_at"]  # order 4 is held: the newest row loaded is order 3
    return {"warehouse": warehouse, "newest": newest, **{k: str(v) for k, v in paths.items()}}


def run(*args: str) -> tuple[int, Any]:
    """The command's exit code and its stdout parsed as one JSON object."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def rows(url: str, table: sa.Table, *where: Any) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(table).where(*where)))
    finally:
        engine.dispose()


def test_sync_json_is_the_run_record_and_held_rows_exit_1(shop):
    code, data = run("sync", "--config", shop["fresh"])

    assert code == 1  # a row was quarantined: the data needs attention
    [record] = rows(shop["warehouse"], sync_runs)
    [synced] = data["runs"]
    assert data["failed"] == []
    assert synced["table"] == "orders" and synced["run_id"] == record.run_id
    for field in ("status", "rows_read", "rows_loaded", "rows_unchanged", "rows_quarantined"):
        assert synced[field] == getattr(record, field), field
    assert (synced["rows_read"], synced["rows_loaded"], synced["rows_quarantined"]) == (4, 3, 1)
    [held] = synced["quarantined"]
    assert (held["column"], held["check"], held["failures"]) == ("currency", "iso_currency", 1)

    again, data = run("sync", "--config", shop["fresh"])
    assert again == 0 and data["runs"][0]["rows_loaded"] == 0  # nothing new, nothing held


def test_status_json_matches_the_warehouse_and_over_sla_exits_1(shop):
    runner.invoke(app, ["sync", "--config", shop["fresh"]])

    code, data = run("status", "--config", shop["fresh"])

    assert code == 0 and data["over_sla"] == []
    [state] = data["tables"]
    assert state["table"] == "orders" and state["status"] == "ok"
    assert datetime.fromisoformat(state["newest"]) == shop["newest"].replace(tzinfo=UTC)
    assert state["last_sync"] == rows(shop["warehouse"], sync_runs)[0].status == "success"
    assert state["warn_after_seconds"] == 7200 and state["error_after_seconds"] == 14400
    assert 0 < state["age_seconds"] < 7200 and state["last_check"] is None

    late, data = run("status", "--config", shop["strict"])
    assert late == 1 and data["over_sla"] == ["orders"]
    assert data["tables"][0]["status"] == "error"


def test_check_json_counts_waiting_apart_and_a_failing_check_exits_1(shop):
    runner.invoke(app, ["sync", "--config", shop["fresh"]])

    code, data = run("check", "--config", shop["fresh"])

    assert code == 0
    recorded = rows(shop["warehouse"], check_results)
    assert sorted((r["check"], r["status"]) for r in data["results"]) == sorted(
        (r.check, r.status) for r in recorded
    )
    statuses = [r["status"] for r in data["results"]]
    counts = data["counts"]
    assert counts["waiting"] == statuses.count("insufficient_history") > 0
    assert counts["ok"] == statuses.count("ok") and counts["failing"] == 0
    assert counts["total"] == len(recorded) == counts["ok"] + counts["waiting"]
    text = runner.invoke(app, ["check", "--config", shop["fresh"]])
    assert f"{counts['waiting']} waiting for history" in text.output
    assert "All " not in text.output  # checks waiting for history are not counted as ok

    failing, data = run("check", "--config", shop["strict"])
    assert failing == 1 and data["counts"]["failing"] >= 1
    freshness = next(r for r in data["results"] if r["check"] == "freshness")
    assert freshness["status"] == "error" and freshness["failing"] is True


def test_alerts_json_lists_the_open_incidents_and_exits_1_while_one_is_open(shop):
    runner.invoke(app, ["sync", "--config", shop["fresh"]])
    held, data = run("alerts", "--config", shop["fresh"])
    # The sync held a row back: its quarantine incident is open until a replay or a fix.
    assert held == 1 and data["slack"] is False
    found = [(i["table"], i["check"], i["status"]) for i in data["incidents"]]
    assert found == [("orders", "quarantine", "warn")]

    runner.invoke(app, ["check", "--config", shop["strict"]])
    code, data = run("alerts", "--config", shop["strict"])

    assert code == 1
    open_ = rows(shop["warehouse"], incidents, incidents.c.closed_at.is_(None))
    assert sorted((i["table"], i["check"], i["status"]) for i in data["incidents"]) == sorted(
        (i.table_name, i.check, i.status) for i in open_
    )
    assert ("orders", "freshness", "error") in {(i.table_name, i.check, i.status) for i in open_}
    assert data["waiting"] == len(data["outbox"]) > 0
    assert all(a["state"] == "pending" for a in data["outbox"])


def test_quarantine_list_json_counts_the_held_rows_and_exits_1_while_any_are(shop):
    empty, data = run("quarantine", "list", "--config", shop["fresh"])
    assert empty == 0 and data == {"tables": [], "held": 0}
    runner.invoke(app, ["sync", "--config", shop["fresh"]])

    code, data = run("quarantine", "list", "--config", shop["fresh"])

    assert code == 1
    stored = rows(shop["warehouse"], quarantine)
    [table] = data["tables"]
    assert table["table"] == "orders" and data["held"] == table["held"] == len(stored) == 1
    assert table["released"] == table["superseded"] == 0
    oldest = datetime.fromisoformat(table["oldest_held"])
    assert oldest.replace(tzinfo=None) == stored[0].quarantined_at.replace(tzinfo=None)


@pytest.mark.parametrize(
    "command",
    [
        ["sync"],
        ["sync", "nope"],
        ["status"],
        ["check"],
        ["check", "nope"],
        ["alerts"],
        ["quarantine", "list"],
        ["quarantine", "list", "nope"],
        ["reconcile", "orders"],
    ],
)
def test_pipewarden_could_not_do_its_job_exits_2(tmp_path, command):
    """A configuration that does not load, or a table it does not name: exit 2, nothing on
    stdout for a script to misread, the reason on stderr."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("warehouse: {url: 'sqlite:///x.sqlite'}\nsources: {}\ntables: {}\n")
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": f"sqlite:///{tmp_path / 'wh.sqlite'}"},
                "sources": {"src": {"url": f"sqlite:///{tmp_path / 'src.sqlite'}"}},
                "tables": {"orders": {"source": "src", "primary_key": "id", "cursor": "at"}},
            }
        )
    )
    config = good if "nope" in command else tmp_path / "missing.yaml"

    result = runner.invoke(app, [*command, "--config", str(config), "--json"])

    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "error:" in result.stderr


def test_status_exits_2_when_the_warehouse_cannot_be_reached(tmp_path):
    path = tmp_path / "pipewarden.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
                "sources": {"src": {"url": "sqlite:///src.sqlite"}},
                "tables": {"orders": {"source": "src", "primary_key": "id", "cursor": "at"}},
            }
        )
    )
    result = runner.invoke(app, ["status", "--config", str(path), "--json"])
    assert result.exit_code == 2 and result.stdout == ""
