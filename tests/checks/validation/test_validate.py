"""Pandera validation turned into row reasons; schema references; the gate's split."""

from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest

from pipewarden.checks.schemas import rules
from pipewarden.checks.schemas.shop import Orders
from pipewarden.checks.validation.report import artifact_key, publish_failure_artifact
from pipewarden.checks.validation.row_json import frame_from_json, row_json
from pipewarden.checks.validation.schema_gate import (
    SchemaGate,
    gate_for,
    load_schema,
    schema_problems,
    verify_schema_refs,
)
from pipewarden.checks.validation.validate import SchemaMismatch, reasons_by_row, validate
from pipewarden.config import ConfigError
from pipewarden.config.load import parse_config
from pipewarden.sync.schema import source_kinds
from tests.checks.validation.support import BATCH_SCHEMA as SCHEMA
from tests.checks.validation.support import NOW
from tests.checks.validation.support import order_batch as orders


def test_every_failure_is_collected_and_counted_per_row():
    batch = orders(
        {},
        {"status": "lost", "amount": Decimal("-1.00")},
        {"created_at": NOW + timedelta(days=1)},
        {"currency": None},
    )
    failures = validate(Orders.to_schema(), batch)
    rows, reasons = reasons_by_row(failures)
    assert rows == [1, 2, 3]
    assert sorted((r["column"], r["check"]) for r in reasons[0]) == [
        ("amount", "non_negative"),
        ("status", "known_status"),
    ]
    assert sorted((r["column"], r["check"]) for r in reasons[1]) == [
        ("created_at", "not_in_future"),
        ("created_at,updated_at", "created_at<=updated_at"),
    ]
    assert reasons[2] == [{"column": "currency", "check": "not_nullable", "value": None}]


def test_a_clean_batch_has_no_failures():
    assert validate(Orders.to_schema(), orders({}, {}, {})).height == 0


def test_duplicate_keys_fail_every_copy():
    batch = orders({}, {}, {}).with_columns(order_id=pl.Series([1, 2, 1]))
    failures = validate(Orders.to_schema(), batch)
    assert failures.select("row", "column", "check", "value").rows() == [
        (0, "order_id", "unique", "1"),
        (2, "order_id", "unique", "1"),
    ]


def test_failing_values_are_truncated():
    batch = orders({"status": "x" * 500})
    (value,) = validate(Orders.to_schema(), batch)["value"].to_list()
    assert len(value) == 120 and value.endswith("…")


def test_a_column_of_another_type_is_a_schema_mismatch_not_bad_rows():
    batch = orders({}).with_columns(pl.col("amount").cast(pl.Float64))
    with pytest.raises(SchemaMismatch, match="amount"):
        validate(Orders.to_schema(), batch)


def test_shared_rules():
    frame = pl.DataFrame(
        {
            "e": ["a@b.co", "a@@b.co", "a..b@c.de", None],
            "d": [Decimal("1.20"), Decimal("1.25"), Decimal("1.255"), None],
            "j": ['{"a": 1}', "[1]", "{oops", None],
        },
        schema={"e": pl.String, "d": pl.Decimal(12, 3), "j": pl.String},
    )
    out = frame.select(
        rules.email("e").alias("e"), rules.two_decimals("d").alias("d"), rules.json_object("j")
    )
    assert out.rows() == [
        (True, True, True),
        (False, True, False),
        (False, False, False),
        (True, True, True),
    ]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "pipewarden.checks.schemas.shop:Ordrs",
            "tables.orders.schema: cannot import 'pipewarden.checks.schemas.shop:Ordrs': "
            "module has no attribute 'Ordrs'",
        ),
        (
            "pipewarden.checks.schemas.shopp:Orders",
            "tables.orders.schema: cannot import 'pipewarden.checks.schemas.shopp:Orders': "
            "No module named 'pipewarden.checks.schemas.shopp'",
        ),
        ("pipewarden.checks.schemas.shop.Orders", "expected 'module.path:ClassName'"),
        (
            "pipewarden.checks.schemas.shop:STATUSES",
            "is a list, not a pandera.polars DataFrameModel",
        ),
    ],
)
def test_schema_references_that_do_not_import_say_why(ref, message):
    with pytest.raises(ConfigError) as error:
        load_schema(ref, "tables.orders.schema")
    assert message in str(error.value)


def config(**table: object):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "warehouse": {"url": "sqlite://"},
            "sources": {"s": {"url": "sqlite://"}},
            "tables": {
                "orders": {
                    "source": "s",
                    "primary_key": "order_id",
                    "cursor": "updated_at",
                    **table,
                }
            },
        },
        Path("pipewarden.yaml"),
    )


def test_verify_schema_refs_at_config_load():
    verify_schema_refs(
        config(schema="pipewarden.checks.schemas.shop:Orders", normalize={"currency": "upper"})
    )
    with pytest.raises(ConfigError) as error:
        verify_schema_refs(
            config(schema="pipewarden.checks.schemas.shop:Ordrs", normalize={"c": "shout"})
        )
    text = str(error.value)
    assert "tables.orders.schema: cannot import 'pipewarden.checks.schemas.shop:Ordrs'" in text
    assert "tables.orders.normalize.c: unknown step 'shout'" in text


def test_a_model_that_does_not_match_the_table_is_described():
    dtypes = {**SCHEMA, "amount": pl.Float64()}
    dtypes.pop("status")
    problems = schema_problems(Orders.to_schema(), dtypes)
    assert problems[0] == "column 'status' is not in the table"
    assert problems[1].startswith("column 'amount' is Float64 in the table")


def test_tables_without_checks_get_a_gate_that_only_quarantines():
    gate = gate_for(config().tables["orders"], {})
    assert isinstance(gate, SchemaGate) and not gate.transforms
    batch = orders({}, {})
    assert gate.check(batch).valid.equals(batch)


def test_the_gate_splits_and_keeps_rows_as_read():
    gate = SchemaGate(Orders.to_schema(), {"currency": ["currency_code"]}, ["order_id"])
    batch = orders({"currency": "eur"}, {"currency": "XYZ"}, {})
    gated = gate.check(batch)
    assert gated.valid["order_id"].to_list() == [1, 3]
    assert gated.valid["currency"].to_list() == ["EUR", "EUR"]
    assert gated.rejected is not None and gated.rejected["order_id"].to_list() == [2]
    assert gated.reasons == [[{"column": "currency", "check": "iso_currency", "value": "XYZ"}]]


def test_a_failed_normalization_is_not_reported_twice():
    schema = pa.DataFrameSchema({"d": pa.Column(pl.String, nullable=False)}, name="T")
    gate = SchemaGate(schema, {"d": ["timestamp_utc"]}, ["d"])
    gated = gate.check(pl.DataFrame({"d": ["2024-01-01", "never"]}))
    assert gated.reasons == [
        [{"column": "d", "check": "normalize.timestamp_utc", "value": "never"}]
    ]


def test_rows_round_trip_through_json_exactly():
    batch = orders({"amount": Decimal("1234.56")}, {"currency": None})
    texts = row_json(batch).to_list()
    assert '"amount":"1234.56"' in texts[0] and '"currency":null' in texts[1]
    assert frame_from_json(texts, dict(batch.schema)).equals(batch)


def test_artifact_keys_and_no_artifact_outside_a_flow_run():
    assert artifact_key("Orders_EU.v2") == "check-failures-orders-eu-v2"
    rows = [{"column": "c", "check": "x", "failures": 1, "examples": ["a"]}]
    assert publish_failure_artifact(rows, "orders") is None


def test_verify_schema_refs_against_the_source_tables(sqlite_url):
    import sqlalchemy as sa

    from tests.checks.validation.support import ORDERS

    source = sqlite_url("shop")
    ORDERS.create(sa.create_engine(source))

    def checked(**table: object) -> None:
        cfg = parse_config(
            {
                "warehouse": {"url": "sqlite://"},
                "sources": {"s": {"url": source}},
                "tables": {
                    "orders": {
                        "source": "s",
                        "primary_key": "order_id",
                        "cursor": "updated_at",
                        **table,
                    }
                },
            },
            Path("pipewarden.yaml"),
        )
        verify_schema_refs(cfg, source_kinds=partial(source_kinds, cfg))

    checked(schema="pipewarden.checks.schemas.shop:Orders", normalize={"currency": "currency_code"})
    with pytest.raises(ConfigError) as error:
        checked(schema="pipewarden.checks.schemas.web:Events", normalize={"amount": "lower"})
    text = str(error.value)
    assert "tables.orders.normalize.amount: step 'lower' cannot apply to Decimal" in text
    assert (
        "tables.orders.schema (pipewarden.checks.schemas.web:Events): column 'event_id' is not in"
        in text
    )


def test_a_schema_named_as_before_0_2_still_loads_and_says_its_new_name(caplog):
    """Configurations name pipewarden's own schemas `checks.schemas...` from before the rename."""
    with caplog.at_level("WARNING"):
        schema = load_schema("checks.schemas.shop:Orders", "tables.orders.schema")
    assert (
        schema.columns.keys() == load_schema("pipewarden.checks.schemas.shop:Orders").columns.keys()
    )
    assert "'pipewarden.checks.schemas.shop'" in caplog.text
    assert "tables.orders.schema" in caplog.text
