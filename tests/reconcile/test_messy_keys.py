"""Source keys a comparison cannot match by (NULL, duplicated) are findings that name them, and
the run says it is not complete: JSON and table output, its record, its alert, its exit code."""

import json

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from pipewarden.cli.reconcile import reconcile
from pipewarden.records.alerts import alerts
from pipewarden.records.reconcile_runs import reconcile_diffs, reconcile_runs
from tests.reconcile.support import config_file, one_table

app = typer.Typer()
app.command()(reconcile)

#: Source engine and the warehouse it is reconciled into.
PAIRS = [("postgresql", "postgresql"), ("mariadb", "postgresql"), ("sqlite", "sqlite")]
ROWS = 1000


def _tables(source: str, warehouse: str, problem: str) -> None:
    """1,000 equal rows on both sides; the source has no key constraint and one bad row more."""
    loose = sa.Table("t", sa.MetaData(), sa.Column("id", sa.BigInteger), sa.Column("v", sa.Integer))
    keyed = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("v", sa.Integer),
    )
    rows = [{"id": i, "v": i % 7} for i in range(ROWS)]
    bad = {"id": None, "v": 1} if problem == "null" else {"id": 500, "v": 99}
    for url, table, extra in ((source, loose, [bad]), (warehouse, keyed, [])):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(table.insert(), rows + extra)
        engine.dispose()


@pytest.mark.parametrize("problem", ["null", "duplicate"])
@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_null_and_duplicate_source_keys_are_named_findings(
    tmp_path, make_url, source_kind, warehouse_kind, problem
):
    source, warehouse = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    _tables(source, warehouse, problem)
    config = config_file(tmp_path, one_table(source, warehouse))
    runner = CliRunner()

    found = runner.invoke(app, ["t", "--config", config, "--json"])

    assert found.exit_code == 1, found.output
    data = json.loads(found.output)
    assert data["complete"] is False
    kind, sample = ("null_key", [[None]]) if problem == "null" else ("duplicate_key", [[500]])
    [named] = data["key_problems"]
    assert named["kind"] == kind
    assert named["rows"] == (1 if problem == "null" else 2)
    assert named["sample"] == sample
    # The rows that can be matched were compared, and agree.
    assert data["counts"]["missing"] == data["counts"]["extra"] == data["counts"]["changed"] == 0
    assert data["rows_compared"] >= ROWS - 1

    table = runner.invoke(app, ["t", "--config", config])
    assert table.exit_code == 1, table.output
    assert "incomplete" in table.output
    assert ("NULL in key (id)" if problem == "null" else "[500]") in table.output

    engine = sa.create_engine(warehouse)
    with engine.connect() as conn:
        run = conn.execute(
            sa.select(reconcile_runs).where(reconcile_runs.c.run_id == data["run_id"])
        ).one()
        diffs = conn.execute(
            sa.select(reconcile_diffs.c.diff, reconcile_diffs.c.key_value).where(
                reconcile_diffs.c.run_id == data["run_id"]
            )
        ).all()
        alert = conn.execute(
            sa.select(alerts.c.status, alerts.c.reason, alerts.c.details)
            .where(alerts.c.run_id == data["run_id"])
        ).one()  # fmt: skip
    engine.dispose()
    assert (run.status, run.complete) == ("differences", False)
    assert ("NULL in key (id)" if problem == "null" else "[500]") in run.error
    assert [d.diff for d in diffs] == [kind[:10]]
    assert alert.status == "differences"
    assert ("NULL in key (id)" if problem == "null" else "[500]") in alert.reason
    assert json.loads(alert.details)["key_problems"] == [named["message"]]


@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_a_duplicated_key_is_not_repaired(tmp_path, make_url, source_kind, warehouse_kind):
    """A repair cannot load two rows into one key: the duplicated key is left as it is, and the
    run stays incomplete; the other differences are repaired."""
    source, warehouse = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    _tables(source, warehouse, "duplicate")
    engine = sa.create_engine(warehouse)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM t WHERE id IN (500, 501)"))
    engine.dispose()
    config = config_file(tmp_path, one_table(source, warehouse))

    repaired = CliRunner().invoke(app, ["t", "--config", config, "--repair", "--json"])

    assert repaired.exit_code == 1, repaired.output
    data = json.loads(repaired.output)
    assert data["missing"] == [[501]] and data["repair"]["upserted"] == 1
    assert data["complete"] is False and data["key_problems"][0]["kind"] == "duplicate_key"
    engine = sa.create_engine(warehouse)
    with engine.connect() as conn:
        ids = set(conn.execute(sa.text("SELECT id FROM t WHERE id IN (500, 501)")).scalars())
    engine.dispose()
    assert ids == {501}


def test_keys_that_differ_in_case_are_not_duplicates_on_mariadb(tmp_path, mariadb, postgres):
    """MariaDB's default collation calls 'a' and 'A' equal; the comparison (and the warehouse)
    tells them apart, so they are two keys."""
    source, warehouse = mariadb.new("src"), postgres.new("wh")
    rows = [{"id": k, "v": 0} for k in ("a", "A", "b")]
    for url, key in ((source, False), (warehouse, True)):
        engine = sa.create_engine(url)
        table = sa.Table(
            "t",
            sa.MetaData(),
            sa.Column("id", sa.String(10), primary_key=key),
            sa.Column("v", sa.Integer),
        )
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(table.insert(), rows)
        engine.dispose()

    result = CliRunner().invoke(
        app, ["t", "--config", config_file(tmp_path, one_table(source, warehouse)), "--json"]
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["key_problems"] == [] and data["complete"] is True
