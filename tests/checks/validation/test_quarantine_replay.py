"""Replaying the quarantine after a fix, and the `pipewarden quarantine` commands."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import typer
import yaml
from typer.testing import CliRunner

from pipewarden.cli.quarantine import quarantine_app
from pipewarden.sync.quarantine_replay import ReplayError, matches, parse_where, replay
from tests.checks.validation.support import (
    BASE,
    ORDERS,
    held,
    make_config,
    make_source,
    order,
    scalar,
    sync,
    warehouse_keys,
)

SCHEMA = {"schema": "pipewarden.checks.schemas.shop:Orders"}


def held_three(sqlite_url, warehouse_url):  # type: ignore[no-untyped-def]
    """Orders 2 and 3 fail only for a lower-case currency, order 4 for an unknown one."""
    source = sqlite_url("shop")
    rows = [order(1), order(2, currency="eur"), order(3, currency="usd"), order(4, currency="XYZ")]
    engine = make_source(source, ORDERS, rows)
    sync(make_config(source, warehouse_url, **SCHEMA))
    assert warehouse_keys(warehouse_url) == [1]
    return source, engine


def test_replay_after_a_normalization_fix_loads_exactly_the_rows_that_now_pass(
    sqlite_url, warehouse_url
):
    source, _ = held_three(sqlite_url, warehouse_url)
    unchanged = replay(make_config(source, warehouse_url, **SCHEMA), "orders", by="ops")
    assert (unchanged.examined, unchanged.released, unchanged.still_held) == (3, 0, 3)

    fixed = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)
    result = replay(fixed, "orders", by="ops")

    assert (result.examined, result.released, result.still_held, result.loaded) == (3, 2, 1, 2)
    assert warehouse_keys(warehouse_url) == [1, 2, 3]
    assert scalar(warehouse_url, "SELECT currency FROM orders WHERE order_id = 3") == "USD"
    entries = {e.primary_key["order_id"]: e for e in held(warehouse_url, status=None)}
    assert {k: e.status for k, e in entries.items()} == {2: "released", 3: "released", 4: "held"}
    assert entries[2].released_by == "ops" and entries[2].released_at is not None
    assert entries[4].released_by is None


def test_replay_with_where_only_touches_matching_rows(sqlite_url, warehouse_url):
    source, _ = held_three(sqlite_url, warehouse_url)
    fixed = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)

    result = replay(fixed, "orders", where={"currency": "usd"}, by="ops")

    assert (result.examined, result.released) == (1, 1)
    assert warehouse_keys(warehouse_url) == [1, 3]


def test_replay_never_overwrites_a_newer_version(sqlite_url, warehouse_url):
    source, engine = held_three(sqlite_url, warehouse_url)
    with engine.begin() as conn:
        conn.execute(
            ORDERS.update()
            .where(ORDERS.c.order_id == 2)
            .values(status="refunded", currency="EUR", updated_at=BASE + timedelta(days=1))
        )
    sync(make_config(source, warehouse_url, **SCHEMA))
    # As if the newer version had come by another path (a repair) while the row stayed held.
    wh = sa.create_engine(warehouse_url)
    with wh.begin() as conn:
        conn.execute(
            sa.text("UPDATE pipewarden_quarantine SET status = 'held' WHERE primary_key = :k"),
            {"k": '{"order_id":2}'},
        )
    wh.dispose()
    fixed = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)

    result = replay(fixed, "orders", by="ops")

    assert (result.released, result.superseded, result.still_held) == (1, 1, 1)
    assert scalar(warehouse_url, "SELECT status FROM orders WHERE order_id = 2") == "refunded"
    statuses = {e.primary_key["order_id"]: e.status for e in held(warehouse_url, status=None)}
    assert statuses == {2: "superseded", 3: "released", 4: "held"}


def test_replay_keeps_the_new_reasons_of_rows_that_still_fail(sqlite_url, warehouse_url):
    source, _ = held_three(sqlite_url, warehouse_url)
    fixed = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)

    replay(fixed, "orders", by="ops")

    (still,) = held(warehouse_url)
    assert still.primary_key == {"order_id": 4}
    assert still.reasons == [{"column": "currency", "check": "iso_currency", "value": "XYZ"}]


def test_where_filters_parse_and_match():
    assert parse_where(["currency=eur", "status = paid"]) == {"currency": "eur", "status": " paid"}
    assert matches({"a": None, "b": True, "c": 3}, {"a": "null", "b": "true", "c": "3"})
    assert not matches({"a": "x"}, {"a": "y"})
    with pytest.raises(ReplayError, match="expected COLUMN=VALUE"):
        parse_where(["currency"])


def cli(config_path: str, *args: str):  # type: ignore[no-untyped-def]
    app = typer.Typer()
    app.add_typer(quarantine_app, name="quarantine")
    return CliRunner().invoke(app, ["quarantine", *args, "--config", config_path])


def test_quarantine_commands(sqlite_url, tmp_path):
    warehouse = sqlite_url("warehouse")
    source, _ = held_three(sqlite_url, warehouse)
    path = tmp_path / "pipewarden.yaml"
    settings = {
        "source": "src",
        "primary_key": "order_id",
        "cursor": "updated_at",
        "normalize": {"currency": ["currency_code"]},
        **SCHEMA,
    }
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse},
                "sources": {"src": {"url": source}},
                "tables": {"orders": settings},
            }
        )
    )

    listed = cli(str(path), "list")
    assert listed.exit_code == 1 and "orders" in listed.output and " 3 " in listed.output

    shown = cli(str(path), "show", "orders", "--reason", "iso_currency", "--json")
    assert shown.exit_code == 0
    assert [line.count('"iso_currency"') for line in shown.output.splitlines()] == [1, 1, 1]

    before = held(warehouse)
    dry = cli(str(path), "replay", "orders", "--dry-run")
    assert dry.exit_code == 1, dry.output  # one row would stay held
    assert "2 would be released" in dry.output and "1 would stay held" in dry.output
    for e in before:
        line = f"would release order_id={e.primary_key['order_id']} (entry {e.id})"
        assert (line in dry.output) == (e.primary_key["order_id"] in (2, 3)), line
    assert held(warehouse) == before and warehouse_keys(warehouse) == [1]

    replayed = cli(str(path), "replay", "orders", "--where", "currency=eur", "--by", "alice")
    assert replayed.exit_code == 1, replayed.output  # the rows --where left out stay held
    assert "1 released by alice" in replayed.output and "0 still held" in replayed.output
    assert "orders: 2 row(s) held in all (the filters left 2 out)" in replayed.output
    assert warehouse_keys(warehouse) == [1, 2]

    rest = cli(str(path), "replay", "orders", "--by", "alice")
    assert rest.exit_code == 1, rest.output  # the row the fix did not cover stays held
    assert "1 released by alice" in rest.output and "1 still held" in rest.output
    assert warehouse_keys(warehouse) == [1, 2, 3]

    bad = cli(str(path), "replay", "orders", "--where", "colour=red")
    assert bad.exit_code == 2 and "no column 'colour'" in bad.output
    nothing = cli(str(path), "show", "orders", "--reason", "no_such_check")
    assert nothing.exit_code == 0
    assert "with a reason matching 'no_such_check' (1 held with other reasons)" in nothing.output
    unknown = cli(str(path), "show", "nope")
    assert unknown.exit_code == 2


def quarantine_alerts(warehouse_url):  # type: ignore[no-untyped-def]
    """The outbox's quarantine alerts in order: (kind, status, reason)."""
    wh = sa.create_engine(warehouse_url)
    with wh.connect() as conn:
        rows = conn.execute(
            sa.text(
                'SELECT kind, status, reason FROM pipewarden_alerts WHERE "check" = '
                "'quarantine' ORDER BY id"
            )
        ).all()
    wh.dispose()
    return [tuple(r) for r in rows]


def test_held_rows_open_one_incident_that_a_replay_releasing_the_last_row_closes(
    sqlite_url, warehouse_url
):
    source, engine = held_three(sqlite_url, warehouse_url)
    ((kind, status, reason),) = quarantine_alerts(warehouse_url)
    assert (kind, status) == ("opened", "warn")
    assert reason.startswith("3 row(s) held in quarantine")
    assert "currency iso_currency ×3" in reason and "XYZ" in reason
    assert "pipewarden quarantine replay orders" in reason

    # Another sync that holds nothing new while rows stay held: a repeat, not another message.
    sync(make_config(source, warehouse_url, **SCHEMA))
    assert len(quarantine_alerts(warehouse_url)) == 1

    fixed = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)
    replay(fixed, "orders", by="ops")  # order 4 stays held: still open
    assert len(quarantine_alerts(warehouse_url)) == 1

    with engine.begin() as conn:  # fixed in the source: the next sync supersedes the held row
        conn.execute(
            ORDERS.update()
            .where(ORDERS.c.order_id == 4)
            .values(currency="EUR", updated_at=BASE + timedelta(days=1))
        )
    sync(make_config(source, warehouse_url, **SCHEMA))
    assert [a[:2] for a in quarantine_alerts(warehouse_url)] == [
        ("opened", "warn"),
        ("recovered", "ok"),
    ]


def test_a_replay_that_releases_every_held_row_closes_the_incident(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    make_source(source, ORDERS, [order(1), order(2, currency="eur")])
    sync(make_config(source, warehouse_url, **SCHEMA))
    fixed = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)

    replay(fixed, "orders", by="ops", dry_run=True)  # a dry run changes nothing
    assert [a[:2] for a in quarantine_alerts(warehouse_url)] == [("opened", "warn")]
    replay(fixed, "orders", by="ops")
    assert [a[:2] for a in quarantine_alerts(warehouse_url)] == [
        ("opened", "warn"),
        ("recovered", "ok"),
    ]
