"""Column checks written in YAML: compiled to Pandera, rows failing them held with the reason."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest
import sqlalchemy as sa
from pandera.api.polars.types import PolarsData

from pipewarden.checks.schemas import rules
from pipewarden.checks.validation.columns import with_columns
from pipewarden.checks.validation.schema_gate import verify_schema_refs
from pipewarden.checks.validation.validate import validate
from pipewarden.config import ConfigError
from pipewarden.config.load import parse_config
from pipewarden.sync.schema import source_kinds
from tests.checks.validation.support import (
    BASE,
    ORDERS,
    balanced,
    future,
    held,
    make_config,
    make_source,
    order,
    sync,
    warehouse_keys,
)

ACCOUNTS = sa.Table(
    "accounts",
    sa.MetaData(),
    sa.Column("account_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.Text),
    sa.Column("country", sa.String(2)),
    sa.Column("currency", sa.String(3)),
    sa.Column("plan", sa.Text),
    sa.Column("code", sa.Text),
    sa.Column("seats", sa.Integer),
    sa.Column("balance", sa.Numeric(12, 4)),
    sa.Column("homepage", sa.Text),
    sa.Column("settings", sa.Text),
    sa.Column("handle", sa.Text),
    sa.Column("signed_up", sa.Text),
    sa.Column("updated_at", sa.DateTime, index=True),
)

COLUMNS: dict[str, Any] = {
    "email": {"nullable": False, "max_length": 40, "rules": ["email"]},
    "country": {"rules": ["iso_country"]},
    "currency": {"rules": "iso_currency"},
    "plan": {"in": ["free", "team", "enterprise"]},
    "code": {"regex": r"^[A-Z]{3}-\d+$"},
    "seats": {"between": [1, 500]},
    "balance": {"rules": ["non_negative", "two_decimals"]},
    "homepage": {"rules": ["url"]},
    "settings": {"rules": ["json_object"]},
    "handle": {"unique": True},
    "signed_up": {"rules": ["iso_timestamp_not_in_future"]},
    "updated_at": {"rules": ["not_in_future"]},
}

#: Each bad account: what is wrong with it, and the reason it must be held with.
BAD: dict[int, tuple[dict[str, Any], set[tuple[str, str]]]] = {
    2: ({"email": None}, {("email", "not_nullable")}),
    3: ({"email": "ana@@example"}, {("email", "email_syntax")}),
    4: ({"email": "a" * 40 + "@example.com"}, {("email", "str_length(None, 40)")}),
    5: ({"country": "XX"}, {("country", "iso_country")}),
    6: ({"currency": "ABC"}, {("currency", "iso_currency")}),
    7: ({"plan": "gold"}, {("plan", "isin(['free', 'team', 'enterprise'])")}),
    8: ({"code": "abc-1"}, {("code", r"str_contains('^[A-Z]{3}-\d+$')")}),
    9: ({"seats": 0}, {("seats", "in_range(1, 500)")}),
    10: ({"balance": Decimal("-1")}, {("balance", "non_negative")}),
    11: ({"balance": Decimal("1.2345")}, {("balance", "two_decimals")}),
    12: ({"homepage": "not a url"}, {("homepage", "url_syntax")}),
    13: ({"settings": "[1, 2]"}, {("settings", "json_object")}),
    14: ({"handle": "twice"}, {("handle", "unique")}),
    15: ({"handle": "twice"}, {("handle", "unique")}),
    16: ({"signed_up": "2999-01-01T00:00:00Z"}, {("signed_up", "iso_timestamp_not_in_future")}),
    17: ({"updated_at": future()}, {("updated_at", "not_in_future")}),
}


def account(account_id: int, **changes: Any) -> dict[str, Any]:
    row = {
        "account_id": account_id,
        "email": f"user{account_id}@example.com",
        "country": "DE",
        "currency": "EUR",
        "plan": "team",
        "code": f"ABC-{account_id}",
        "seats": 5,
        "balance": Decimal("10.5000"),
        "homepage": "https://example.com/welcome",
        "settings": '{"theme": "dark"}',
        "handle": f"h{account_id}",
        "signed_up": "2024-01-01T00:00:00+00:00",
        "updated_at": BASE + timedelta(minutes=account_id),
    }
    return row | changes


def accounts_config(source: str, warehouse: str, columns: dict[str, Any]) -> Any:
    return parse_config(
        {
            "warehouse": {"url": warehouse},
            "sources": {"src": {"url": source}},
            "tables": {
                "accounts": {
                    "source": "src",
                    "primary_key": "account_id",
                    "cursor": "updated_at",
                    "batch_size": 50,
                    "columns": columns,
                }
            },
        },
        Path("test.yaml"),
    )


def reasons_by_key(warehouse: str, table: str, key: str) -> dict[int, set[tuple[str, str]]]:
    return {
        e.primary_key[key]: {(r["column"], r["check"]) for r in e.reasons}
        for e in held(warehouse, table)
    }


def test_rows_failing_each_yaml_rule_are_held_with_its_reason(sqlite_url, warehouse_url):
    source = sqlite_url("crm")
    rows = [account(1), *(account(i, **bad) for i, (bad, _) in BAD.items()), account(18)]
    make_source(source, ACCOUNTS, rows)
    config = accounts_config(source, warehouse_url, COLUMNS)
    verify_schema_refs(config)

    run = sync(config, "accounts")

    assert balanced(run) and run.rows_quarantined == len(BAD)
    assert warehouse_keys(warehouse_url, "accounts", "account_id") == [1, 18]
    assert reasons_by_key(warehouse_url, "accounts", "account_id") == {
        i: reasons for i, (_, reasons) in BAD.items()
    }


def test_yaml_checks_add_to_a_python_model(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    rows = [
        order(1),
        order(2, currency="XYZ"),  # the model's iso_currency
        order(3, status="delivered"),  # a known status, but not one this YAML allows
        order(4, customer_id=500),  # outside the YAML range
        order(5, status="shipped"),
    ]
    make_source(source, ORDERS, rows)
    columns = {"status": {"in": ["paid", "shipped"]}, "customer_id": {"between": [100, 200]}}
    config = make_config(
        source, warehouse_url, schema="pipewarden.checks.schemas.shop:Orders", columns=columns
    )

    run = sync(config)

    assert balanced(run) and warehouse_keys(warehouse_url) == [1, 5]
    assert reasons_by_key(warehouse_url, "orders", "order_id") == {
        2: {("currency", "iso_currency")},
        3: {("status", "isin(['paid', 'shipped'])")},
        4: {("customer_id", "in_range(100, 200)")},
    }


class SameInPython(pa.DataFrameModel):
    """What an analyst's YAML says, written as a Python model."""

    email: pl.String = pa.Field(nullable=False, str_length={"max_value": 40})
    plan: pl.String = pa.Field(nullable=True, isin=["free", "team", "enterprise"])
    seats: pl.Int64 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 500})
    code: pl.String = pa.Field(nullable=True, str_contains=r"^[A-Z]{3}-\d+$")
    handle: pl.String = pa.Field(nullable=True, unique=True)

    @pa.check("email", name="email_syntax")
    def _email(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.email(data.key))


def test_yaml_and_a_python_model_give_the_same_reasons():
    names = ["email", "plan", "seats", "code", "handle"]
    columns = {n: COLUMNS[n] | {"rules": ["email"] if n == "email" else []} for n in names}
    table = accounts_config("sqlite://", "sqlite://", columns).tables["accounts"]
    rows = [account(1), *(account(i, **bad) for i, (bad, _) in BAD.items())]
    batch = pl.DataFrame([{n: r[n] for n in names} for r in rows])
    compiled = with_columns(None, table, batch.schema)

    from_yaml = validate(compiled, batch).sort("row", "column", "check")
    from_python = validate(SameInPython.to_schema(), batch).sort("row", "column", "check")

    assert from_yaml.height >= 7
    assert from_yaml.equals(from_python)


@pytest.mark.parametrize(
    "columns,message",
    [
        ({"email": {"rules": ["emial"]}}, "tables.accounts.columns.email.rules: unknown rule"),
        ({"code": {"regex": "([A-Z"}}, "tables.accounts.columns.code.regex: '([A-Z' is not a"),
    ],
)
def test_unknown_rules_and_bad_regexes_fail_when_the_configuration_loads(columns, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        verify_schema_refs(accounts_config("sqlite://", "sqlite://", columns))


@pytest.mark.parametrize(
    "columns,message",
    [
        ({"seats": {"between": [500, 1]}}, "columns.seats.between: Value error, low bound 500"),
        ({"seats": {"between": [None, None]}}, "columns.seats.between: .*give a low or a high"),
        ({"seats": {"betwen": [1, 5]}}, "columns.seats.betwen: Extra inputs are not permitted"),
        ({"plan": {"in": []}}, "columns.plan.in: "),
        ({"email": {"max_length": 0}}, "columns.email.max_length: "),
    ],
)
def test_malformed_column_checks_fail_to_parse_by_key(columns, message):
    with pytest.raises(ConfigError, match=message.replace("Value error, ", "")):
        accounts_config("sqlite://", "sqlite://", columns)


@pytest.mark.parametrize(
    "columns,message",
    [
        ({"colour": {"in": ["red"]}}, "tables.accounts.columns.colour: no such column"),
        ({"seats": {"rules": ["email"]}}, "columns.seats.rules: 'email' applies to text columns"),
        ({"seats": {"max_length": 3}}, "columns.seats.max_length: applies to text columns"),
        ({"seats": {"between": ["a", "b"]}}, "columns.seats: 'a' is not a number"),
    ],
)
def test_checks_that_do_not_fit_the_table_fail_at_the_first_sync(sqlite_url, columns, message):
    source, warehouse = sqlite_url("crm"), sqlite_url("wh")
    make_source(source, ACCOUNTS, [account(1)])
    config = accounts_config(source, warehouse, columns)
    verify_schema_refs(config)  # nothing here needs the table
    with pytest.raises(ConfigError, match=message):
        sync(config, "accounts")
    with pytest.raises(ConfigError, match=message):
        verify_schema_refs(config, source_kinds=partial(source_kinds, config))


def test_between_on_a_timestamp_column_takes_dates():
    table = accounts_config(
        "sqlite://", "sqlite://", {"at": {"between": ["2024-01-01", None]}}
    ).tables["accounts"]
    batch = pl.DataFrame(
        {"at": [datetime(2023, 12, 31, 23, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)]}
    )
    failures = validate(with_columns(None, table, batch.schema), batch)
    assert failures["row"].to_list() == [0]
