"""Schema checks in the sync: bad rows held with reasons, good rows load, counts balance."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from pipewarden.checks.validation.report import failure_lines, failure_summary
from pipewarden.checks.validation.schema_gate import gate_for
from pipewarden.checks.validation.validate import SchemaMismatch
from pipewarden.config import ConfigError
from pipewarden.records.sync_runs import last_runs
from pipewarden.sync.run import SyncOptions, sync_table
from tests.checks.validation.support import (
    BASE,
    ORDERS,
    balanced,
    future,
    held,
    make_config,
    make_source,
    order,
    query,
    scalar,
    sync,
    warehouse_keys,
    with_engine,
)

SCHEMA = {"schema": "pipewarden.checks.schemas.shop:Orders"}


def reasons_of(entries: list) -> dict[int, set[tuple[str, str]]]:
    return {
        e.primary_key["order_id"]: {(r["column"], r["check"]) for r in e.reasons} for e in entries
    }


def test_each_bad_value_is_held_with_its_reason_and_good_rows_load(sqlite_url, warehouse_url):
    rows = [
        order(1),
        order(2, status="shipped?"),
        order(3, currency="XYZ"),
        order(4),
        order(5, amount=Decimal("-5.00")),
        order(6, created_at=BASE + timedelta(days=2)),
        order(7, customer_id=None),
        order(8, created_at=future()),
        order(9, status=None, currency="ABC"),
        order(10),
        order(11, currency="eur"),  # fixed by the normalization
    ]
    source = sqlite_url("shop")
    make_source(source, ORDERS, rows)
    config = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)

    run = sync(config)

    assert (run.rows_read, run.rows_quarantined) == (11, 7)
    assert run.rows_loaded == 4 and balanced(run)
    assert warehouse_keys(warehouse_url) == [1, 4, 10, 11]
    assert scalar(warehouse_url, "SELECT currency FROM orders WHERE order_id = 11") == "EUR"
    assert reasons_of(held(warehouse_url)) == {
        2: {("status", "known_status")},
        3: {("currency", "iso_currency")},
        5: {("amount", "non_negative")},
        6: {("created_at,updated_at", "created_at<=updated_at")},
        7: {("customer_id", "not_nullable")},
        8: {("created_at", "not_in_future"), ("created_at,updated_at", "created_at<=updated_at")},
        9: {("status", "not_nullable"), ("currency", "iso_currency")},
    }
    recorded = with_engine(warehouse_url, lambda e: last_runs(e, "orders"))[0]
    assert (recorded.rows_read, recorded.rows_loaded, recorded.rows_quarantined) == (11, 4, 7)
    assert recorded.new_watermark is not None and "12:11:00" in recorded.new_watermark


def test_the_row_is_kept_exactly_as_read(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    make_source(source, ORDERS, [order(1, currency=" xyz", amount=Decimal("1234.50"))])
    config = make_config(source, warehouse_url, normalize={"currency": ["currency_code"]}, **SCHEMA)

    sync(config)

    (entry,) = held(warehouse_url)
    assert entry.primary_key == {"order_id": 1}
    assert entry.row == {
        "order_id": 1,
        "customer_id": 101,
        "status": "paid",
        "currency": " xyz",  # as read, before normalization
        "amount": "1234.50",
        "created_at": "2025-03-01T12:00:00+00:00",
        "updated_at": "2025-03-01T12:01:00+00:00",
    }
    assert entry.reasons == [{"column": "currency", "check": "iso_currency", "value": "XYZ"}]


def test_run_failures_are_grouped_for_the_summary(sqlite_url, warehouse_url):
    rows = [order(i, currency="XYZ") for i in range(1, 6)] + [order(6, status="lost")]
    rows += [order(7), order(8, currency="QQQ")]
    source = sqlite_url("shop")
    make_source(source, ORDERS, rows)

    run = sync(make_config(source, warehouse_url, **SCHEMA))

    summary = with_engine(warehouse_url, lambda e: failure_summary(e, run.run_id))
    assert [(r["column"], r["check"], r["failures"]) for r in summary] == [
        ("currency", "iso_currency", 6),
        ("status", "known_status", 1),
    ]
    assert summary[0]["examples"] == ["XYZ", "QQQ"]
    assert failure_lines(summary)[1] == "orders.status known_status: 1 row (e.g. 'lost')"


def test_duplicate_keys_in_a_batch_the_newest_loads_and_a_tie_is_held(sqlite_url, warehouse_url):
    no_key = sa.Table(
        "orders",
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in ORDERS.columns),
    )
    source = sqlite_url("shop")
    rows = [order(1), order(2), {**order(2), "updated_at": BASE + timedelta(hours=1)}, order(3)]
    rows.append({**order(3), "amount": Decimal("5.00")})  # the same cursor: which one is right?
    make_source(source, no_key, rows)

    config = make_config(source, warehouse_url, batch_size=100, lookback="1d", **SCHEMA)
    run = sync(config)

    assert (run.rows_loaded, run.rows_unchanged, run.rows_quarantined) == (2, 1, 2)
    assert balanced(run)
    assert warehouse_keys(warehouse_url) == [1, 2]
    assert reasons_of(held(warehouse_url)) == {3: {("order_id", "key.duplicate")}}
    assert len(held(warehouse_url)) == 2
    again = sync(config)  # read again: the same two rows, still held once each, not counted
    assert (again.rows_unchanged, again.rows_quarantined) == (5, 0) and balanced(again)
    assert sorted(e.status for e in held(warehouse_url, status=None)) == ["held", "held"]


def test_fixed_at_the_source_arrives_and_supersedes_the_held_row(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    engine = make_source(source, ORDERS, [order(1), order(2, status="lost"), order(3)])
    config = make_config(source, warehouse_url, **SCHEMA)
    first = sync(config)
    assert first.rows_quarantined == 1 and warehouse_keys(warehouse_url) == [1, 3]

    with engine.begin() as conn:
        conn.execute(
            ORDERS.update()
            .where(ORDERS.c.order_id == 2)
            .values(status="paid", updated_at=BASE + timedelta(hours=2))
        )
    second = sync(config)

    assert second.rows_quarantined == 0 and balanced(second)
    assert warehouse_keys(warehouse_url) == [1, 2, 3]
    (entry,) = held(warehouse_url, status=None)
    assert entry.status == "superseded" and entry.superseded_at is not None
    assert held(warehouse_url) == []


def test_a_newer_bad_version_supersedes_the_older_one(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    engine = make_source(source, ORDERS, [order(1, status="lost")])
    config = make_config(source, warehouse_url, **SCHEMA)
    sync(config)
    with engine.begin() as conn:
        conn.execute(ORDERS.update().values(status="gone", updated_at=BASE + timedelta(hours=2)))

    sync(config)

    statuses = sorted((e.status, e.row["status"]) for e in held(warehouse_url, status=None))
    assert statuses == [("held", "gone"), ("superseded", "lost")]


def test_a_reread_bad_row_is_held_once(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    make_source(source, ORDERS, [order(1), order(2, status="lost")])
    config = make_config(source, warehouse_url, lookback="1d", **SCHEMA)
    sync(config)

    again = sync(config)  # the lookback re-reads both rows

    assert (again.rows_read, again.rows_unchanged, again.rows_quarantined) == (2, 2, 0)
    assert balanced(again)
    assert len(held(warehouse_url, status=None)) == 1


def test_one_bad_row_never_blocks_the_table(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    engine = make_source(source, ORDERS, [order(1, status="lost")])
    config = make_config(source, warehouse_url, **SCHEMA)
    assert sync(config).rows_quarantined == 1
    with engine.begin() as conn:
        conn.execute(ORDERS.insert(), [order(2), order(3)])

    run = sync(config)

    # The watermark row itself is read again (cursor >= watermark): held once, counted once.
    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (3, 2, 0)
    assert warehouse_keys(warehouse_url) == [2, 3]
    assert len(held(warehouse_url)) == 1


def test_a_schema_reference_that_does_not_import_fails_the_run_clearly(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    make_source(source, ORDERS, [order(1)])
    config = make_config(source, warehouse_url, schema="pipewarden.checks.schemas.shop:Ordrs")

    with pytest.raises(ConfigError) as error:
        sync(config)

    assert str(error.value).startswith(
        "tables.orders.schema: cannot import 'pipewarden.checks.schemas.shop:Ordrs': "
        "module has no attribute 'Ordrs' (in "
    )
    assert str(error.value).endswith("shop.py)")  # the file found: a user's may be shadowed
    assert scalar(warehouse_url, "SELECT count(*) FROM orders") == 0


def test_a_model_for_other_columns_fails_before_loading(sqlite_url, warehouse_url):
    source = sqlite_url("shop")
    make_source(source, ORDERS, [order(1)])
    config = make_config(source, warehouse_url, schema="pipewarden.checks.schemas.crm:Customers")

    with pytest.raises(ConfigError, match="column 'email' is not in the table"):
        sync(config)


def test_a_gate_failing_on_a_later_batch_keeps_the_earlier_ones(sqlite_url, warehouse_url):
    """The gate checks a batch ahead, in the reading thread: its error still ends the run there."""
    source = sqlite_url("shop")
    make_source(source, ORDERS, [order(i) for i in range(1, 11)])
    config = make_config(source, warehouse_url, **SCHEMA)

    class Broken(SchemaMismatch):
        pass

    def failing_on_the_second_batch(table, kinds):
        gate = gate_for(table, kinds)
        checked = gate.check

        def check(batch, failures=None):
            if batch["order_id"].min() > 4:
                raise Broken("the second batch")
            return checked(batch, failures)

        gate.check = check
        return gate

    with pytest.raises(Broken, match="the second batch"):
        sync_table(config, "orders", SyncOptions(gate_factory=failing_on_the_second_batch))

    assert warehouse_keys(warehouse_url) == [1, 2, 3, 4]
    watermark = scalar(warehouse_url, "SELECT cursor_value FROM pipewarden_watermarks")
    assert "12:04:00" in str(watermark)


def test_normalized_customers_load_and_unparseable_dates_are_held(sqlite_url, warehouse_url):
    from pipewarden.demo.sources import customers

    base = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "marketing_opt_in": True,
        "lifetime_value": Decimal("10.50"),
        "created_at": BASE,
    }
    rows = [
        {
            "customer_id": 1,
            "email": " Ada@Example.COM ",
            "country": "de",
            "signup_date": "05/03/2024",
            "updated_at": BASE + timedelta(minutes=1),
        },
        {
            "customer_id": 2,
            "email": "b@example.com",
            "country": "",
            "signup_date": "2024-03-05T14:30:00+02:00",
            "updated_at": BASE + timedelta(minutes=2),
        },
        {
            "customer_id": 3,
            "email": "c@example.com",
            "country": "FR",
            "signup_date": "not a date",
            "updated_at": BASE + timedelta(minutes=3),
        },
        {
            "customer_id": 4,
            "email": "d@@example",
            "country": "XX",
            "signup_date": None,
            "updated_at": BASE + timedelta(minutes=4),
        },
        {
            "customer_id": 5,
            "email": None,
            "country": "uk",
            "signup_date": "1709596800",
            "updated_at": BASE + timedelta(minutes=5),
        },
    ]
    source = sqlite_url("crm")
    make_source(source, customers, [{**base, **r} for r in rows])
    config = make_config(
        source,
        warehouse_url,
        table="customers",
        schema="pipewarden.checks.schemas.crm:Customers",
        normalize={
            "email": ["email"],
            "country": ["country_code"],
            "signup_date": ["empty_to_null", "timestamp_utc"],
        },
    )

    run = sync(config, "customers")

    assert (run.rows_loaded, run.rows_quarantined) == (2, 3) and balanced(run)
    sql = "SELECT customer_id, email, country, signup_date FROM customers"
    loaded = {r[0]: r[1:] for r in query(warehouse_url, sql)}
    assert loaded == {
        1: ("ada@example.com", "DE", "2024-03-05T00:00:00+00:00"),
        2: ("b@example.com", None, "2024-03-05T12:30:00+00:00"),
    }
    reasons = {
        e.primary_key["customer_id"]: sorted(
            (r["column"], r["check"], r["value"]) for r in e.reasons
        )
        for e in held(warehouse_url, "customers")
    }
    assert reasons == {
        3: [("signup_date", "normalize.timestamp_utc", "not a date")],
        4: [("country", "iso_country", "XX"), ("email", "email_syntax", "d@@example")],
        5: [("email", "not_nullable", None)],
    }


def test_events_with_bad_json_type_or_url_are_held(sqlite_url, warehouse_url):
    from pipewarden.demo.sources import events

    def event(i: int, **changes: object) -> dict[str, object]:
        return {
            "event_id": i,
            "customer_id": None,
            "event_type": "page_view",
            "url": "https://shop.example/sale",
            "occurred_at": BASE + timedelta(seconds=i),
            "properties": json.dumps({"session": f"s{i}"}),
            **changes,
        }

    rows = [
        event(1),
        event(2, properties="{not json"),
        event(3, event_type="pageview"),
        event(4, url="javascript:alert(1)"),
        event(5, properties=None, url=None),
        event(6, url="/product/42"),
    ]
    source = sqlite_url("web")
    make_source(source, events, rows)
    config = make_config(
        source, warehouse_url, table="events", schema="pipewarden.checks.schemas.web:Events"
    )

    run = sync(config, "events")

    assert (run.rows_loaded, run.rows_quarantined) == (3, 3) and balanced(run)
    assert warehouse_keys(warehouse_url, "events", "event_id") == [1, 5, 6]
    checks = {
        e.primary_key["event_id"]: e.reasons[0]["check"] for e in held(warehouse_url, "events")
    }
    assert checks == {2: "json_object", 3: "known_event_type", 4: "url_syntax"}
