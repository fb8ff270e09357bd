"""Customer values stay out of pipewarden's records and output: a failing pii column and an
unflagged email column, synced into SQLite and PostgreSQL warehouses, are stored as check
examples and shown by `pipewarden quarantine show` as salted hash prefixes, never in clear;
`--show-pii` shows them with a warning; the quarantine keeps the row as read."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.config.pii import SALT_ENV, Redactor
from pipewarden.records.pii_salt import forget_salts
from tests.checks.validation.support import held, make_config, make_source, query, sync

CUSTOMERS = sa.Table(
    "customers",
    sa.MetaData(),
    sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("full_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("updated_at", sa.DateTime),
)
NAME, EMAIL = "Ada Lovelace-Byron", "ada.lovelace@example.org"
#: full_name is declared pii; email is not, but its normalize step reads it as an email.
SETTINGS: dict[str, Any] = {
    "columns": {"full_name": {"pii": True, "max_length": 10}, "email": {"max_length": 12}},
    "normalize": {"email": ["email"]},
}


@pytest.fixture(autouse=True)
def _no_salt_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SALT_ENV, raising=False)
    forget_salts()


def _synced(sqlite_url: Any, warehouse_url: str) -> Any:
    source = sqlite_url("crm")
    rows = [
        {"customer_id": 1, "full_name": NAME, "email": EMAIL, "updated_at": datetime(2025, 3, 1)},
        {
            "customer_id": 2,
            "full_name": "Bo",
            "email": "b@x.io",
            "updated_at": datetime(2025, 3, 2),
        },
    ]
    make_source(source, CUSTOMERS, rows).dispose()
    config = make_config(source, warehouse_url, table="customers", **SETTINGS)
    run = sync(config, "customers")
    assert (run.rows_loaded, run.rows_quarantined) == (1, 1)
    return config, source


def _salt(warehouse_url: str) -> str:
    [(salt,)] = query(warehouse_url, "SELECT value FROM pipewarden_secrets")
    return str(salt)


def _config_file(tmp_path: Path, source: str, warehouse_url: str) -> str:
    table = {"source": "src", "primary_key": "customer_id", "cursor": "updated_at", **SETTINGS}
    data = {
        "warehouse": {"url": warehouse_url},
        "sources": {"src": {"url": source}},
        "tables": {"customers": table},
    }
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_stored_examples_and_the_quarantine_command_show_prefixes_never_values(
    tmp_path, sqlite_url, warehouse_url
):
    _, source = _synced(sqlite_url, warehouse_url)
    salt = _salt(warehouse_url)
    hide = Redactor(salt.encode())

    stored = query(
        warehouse_url,
        "SELECT column_name, examples FROM pipewarden_check_failures ORDER BY column_name",
    )
    assert [(c, json.loads(e)) for c, e in stored] == [
        ("email", [hide.prefix(EMAIL)]),
        ("full_name", [hide.prefix(NAME)]),
    ]
    [entry] = held(warehouse_url, "customers")
    assert (entry.row["full_name"], entry.row["email"]) == (NAME, EMAIL)  # kept as read

    config = _config_file(tmp_path, source, warehouse_url)
    runner = CliRunner()
    table = runner.invoke(
        app, ["quarantine", "show", "customers", "-c", config], terminal_width=200
    )
    lines = runner.invoke(app, ["quarantine", "show", "customers", "-c", config, "--json"])

    for shown in (table, lines):
        assert shown.exit_code == 0, shown.output
        assert hide.prefix(NAME) in shown.output and hide.prefix(EMAIL) in shown.output
        assert NAME not in shown.output and EMAIL not in shown.output
        assert "ada" not in shown.output.lower() and salt not in shown.output
    [line] = [json.loads(x) for x in lines.stdout.splitlines()]
    assert line["row"]["full_name"] == hide.prefix(NAME)
    assert line["row"]["email"] == hide.prefix(EMAIL)
    assert line["key"] == {"customer_id": 1}
    assert {r["value"] for r in line["reasons"]} == {hide.prefix(NAME), hide.prefix(EMAIL)}


def test_show_pii_prints_values_in_clear_with_a_warning(tmp_path, sqlite_url, warehouse_url):
    _, source = _synced(sqlite_url, warehouse_url)
    config = _config_file(tmp_path, source, warehouse_url)

    shown = CliRunner().invoke(
        app, ["quarantine", "show", "customers", "-c", config, "--json", "--show-pii"]
    )

    assert shown.exit_code == 0, shown.output
    [line] = [json.loads(x) for x in shown.stdout.splitlines()]
    assert (line["row"]["full_name"], line["row"]["email"]) == (NAME, EMAIL)
    assert "customer data in clear" in shown.stderr and _salt(warehouse_url) not in shown.output


def test_a_salt_from_the_environment_is_used_and_never_stored(
    monkeypatch, sqlite_url, warehouse_url
):
    monkeypatch.setenv(SALT_ENV, "a-salt-of-our-own")

    _synced(sqlite_url, warehouse_url)

    stored = query(warehouse_url, "SELECT examples FROM pipewarden_check_failures")
    examples = {e for (text,) in stored for e in json.loads(text)}
    ours = Redactor(b"a-salt-of-our-own")
    assert examples == {ours.prefix(NAME), ours.prefix(EMAIL)}
    assert query(warehouse_url, "SELECT name FROM pipewarden_secrets") == []


def test_every_process_of_one_warehouse_gets_one_salt(sqlite_url, warehouse_url):
    """The salt is made once: a second run, with the process's memory of it dropped, reads the
    same one back, so one customer keeps one prefix."""
    from pipewarden.records.pii_salt import pii_salt

    _synced(sqlite_url, warehouse_url)
    first = _salt(warehouse_url)
    forget_salts()
    engine = sa.create_engine(warehouse_url)
    try:
        with engine.begin() as conn:
            assert pii_salt(conn) == first.encode()
    finally:
        engine.dispose()
    assert len(query(warehouse_url, "SELECT value FROM pipewarden_secrets")) == 1


def test_category_counts_kept_for_drift_hold_prefixes_of_customer_values(sqlite_url, warehouse_url):
    _synced(sqlite_url, warehouse_url)
    hide = Redactor(_salt(warehouse_url).encode())

    counts = dict(
        query(
            warehouse_url,
            "SELECT column_name, counts FROM pipewarden_column_samples WHERE counts IS NOT NULL",
        )
    )

    assert json.loads(counts["full_name"]) == {hide.prefix("Bo"): 1}
    assert json.loads(counts["email"]) == {hide.prefix("b@x.io"): 1}


def test_a_null_in_a_pii_column_is_reported_as_null(sqlite_url, warehouse_url):
    source = sqlite_url("crm")
    row = {"customer_id": 1, "full_name": None, "email": EMAIL, "updated_at": datetime(2025, 3, 1)}
    make_source(source, CUSTOMERS, [row]).dispose()
    columns = {"full_name": {"pii": True, "nullable": False}}
    config = make_config(source, warehouse_url, table="customers", columns=columns)

    assert sync(config, "customers").rows_quarantined == 1

    stored = query(warehouse_url, "SELECT check_name, examples FROM pipewarden_check_failures")
    assert [(c, json.loads(e)) for c, e in stored] == [("not_nullable", ["null"])]


def test_replay_dry_run_names_a_pii_key_by_prefix(tmp_path, sqlite_url, warehouse_url):
    """After a fix (the length checks dropped) a dry run lists the rows it would release; the
    key column is customer data here, so the keys are listed hidden unless --show-pii."""
    _, source = _synced(sqlite_url, warehouse_url)
    hide = Redactor(_salt(warehouse_url).encode())
    fixed = {"customer_id": {"pii": True}, "full_name": {"pii": True}}
    table = {"source": "src", "primary_key": "customer_id", "cursor": "updated_at"}
    data = {
        "warehouse": {"url": warehouse_url},
        "sources": {"src": {"url": source}},
        "tables": {"customers": {**table, "columns": fixed, "normalize": {"email": ["email"]}}},
    }
    path = tmp_path / "fixed.yaml"
    path.write_text(yaml.safe_dump(data))
    dry_run = ["quarantine", "replay", "customers", "-c", str(path), "--dry-run"]

    hidden = CliRunner().invoke(app, dry_run, terminal_width=200)
    clear = CliRunner().invoke(app, [*dry_run, "--show-pii"], terminal_width=200)

    assert f"would release customer_id={hide.prefix(1)}" in hidden.stdout, hidden.output
    assert "customer_id=1 " not in hidden.stdout
    assert "would release customer_id=1 (entry" in clear.stdout, clear.output
    assert "customer data in clear" in clear.stderr
