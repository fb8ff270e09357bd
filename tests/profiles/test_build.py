"""The profile table against a hand-computed shop (PostgreSQL and SQLite)."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import make_engine
from pipewarden.events.tables import latest_table
from pipewarden.profiles.build import build_profiles
from tests.profiles.support import profile_rows, profiles_config, shop_tables

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
EARLIER = datetime(2026, 1, 1, tzinfo=UTC)

#: customer: (consent, [(day, amount), …]); the window is the 30 days before AS_OF.
SHOP = {
    1: (True, [("2026-05-30", 100), ("2026-05-25", 50), ("2026-05-20", 30)]),
    2: (False, [("2026-05-28", 20), ("2026-06-02", 999)]),  # the second is after AS_OF
    3: (True, [("2026-05-10", 500), ("2026-05-11", 100)]),
    4: (True, [("2026-03-01", 1000)]),  # outside the window
    5: (True, [("2026-05-29", 10), ("2026-05-05", 10), ("2026-05-06", 10), ("2026-05-07", 10)]),
    6: (True, []),
}

#: Worked out by hand: n = 5 buyers, 5 scores, so each score is the customer's rank.
#: R by last order: 4 < 3 < 2 < 5 < 1; F by frequency 0,1,2,3,4: 4,2,3,1,5;
#: M by monetary 0,20,40,180,600: 4,2,5,1,3. Rules in order: champions (r>=4 and f>=4),
#: big_spenders (m>=5), at_risk (r<=2), else other.
EXPECTED = {
    "1": (3, 180.0, "2026-05-30", 5, 4, 4, "champions"),
    "2": (1, 20.0, "2026-05-28", 3, 2, 2, "other"),
    "3": (2, 600.0, "2026-05-11", 2, 3, 5, "big_spenders"),
    "4": (0, 0.0, "2026-03-01", 1, 1, 1, "at_risk"),
    "5": (4, 40.0, "2026-05-29", 4, 5, 3, "champions"),
    "6": (0, 0.0, None, None, None, None, "other"),
}


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _load_shop(engine: sa.Engine) -> None:
    customers, orders = shop_tables()
    customers.metadata.create_all(engine)
    order_id = 0
    with engine.begin() as conn:
        for customer, (consent, placed) in SHOP.items():
            conn.execute(
                sa.insert(customers).values(
                    customer_id=customer, email_consent=consent, updated_at=EARLIER
                )
            )
            for day, amount in placed:
                order_id += 1
                conn.execute(
                    sa.insert(orders).values(
                        order_id=order_id,
                        customer_id=customer,
                        amount=amount,
                        ordered_at=_day(day),
                        updated_at=_day(day),
                    )
                )


def test_rfm_scores_and_segments_match_the_hand_computed_shop(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    config = profiles_config(warehouse_url, cart=True)
    latest = latest_table("shop_latest")
    latest.create(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(latest),
            [
                {
                    "subject": "1",
                    "event_id": "e1",
                    "event_type": "cart.updated",
                    "event_time": _day("2026-05-31"),
                    "payload": '{"total": 42}',
                    "updated_at": _day("2026-05-31"),
                },
                {
                    "subject": "2",
                    "event_id": "e2",
                    "event_type": "order.paid",
                    "event_time": _day("2026-05-28"),
                    "payload": "{}",
                    "updated_at": _day("2026-05-28"),
                },
            ],
        )

    result = build_profiles(engine, config, as_of=AS_OF)

    assert (result.mode, result.status, result.problems) == ("full", "ok", [])
    rows = {row["customer_id"]: row for row in profile_rows(engine, "customer_profiles")}
    got = {
        key: (
            row["frequency"],
            row["monetary"],
            row["last_order_at"].date().isoformat() if row["last_order_at"] else None,
            row["r"],
            row["f"],
            row["m"],
            row["segment"],
        )
        for key, row in rows.items()
    }
    assert got == EXPECTED
    assert [bool(rows[k]["consent"]) for k in "12"] == [True, False]
    assert rows["1"]["cart_event_type"] == "cart.updated"
    assert rows["1"]["cart_payload"] == '{"total": 42}'
    assert rows["2"]["cart_event_type"] is None  # its latest event is no cart
    assert sorted(result.changed) == sorted(EXPECTED)


def test_an_incremental_build_rebuilds_only_the_touched_customers(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    config = profiles_config(warehouse_url)
    build_profiles(engine, config, as_of=AS_OF)
    customers, orders = shop_tables()
    later = AS_OF + timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(orders).values(
                order_id=100, customer_id=6, amount=5, ordered_at=later, updated_at=later
            )
        )

    result = build_profiles(engine, config, as_of=later + timedelta(minutes=1))

    assert result.mode == "incremental"
    # A sixth buyer moves the quantiles of others; customer 4 stays (1, 1, 1), untouched.
    assert "6" in result.changed and "4" not in result.changed
    rows = {row["customer_id"]: row for row in profile_rows(engine, "customer_profiles")}
    assert (rows["6"]["frequency"], rows["6"]["monetary"]) == (1, 5.0)
    assert rows["6"]["r"] == 5  # the newest buyer now


def test_an_unknown_input_table_is_named(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    config = profiles_config(warehouse_url)
    try:
        build_profiles(engine, config, as_of=AS_OF)
    except ValueError as error:
        assert "profiles.customers.table: table 'customers' is not in the warehouse" in str(error)
    else:
        raise AssertionError("the build ran without its input tables")


def test_the_window_edges_are_the_same_on_every_engine(warehouse_url: str) -> None:
    """An order exactly at the window's start is out, one a microsecond later is in, one at
    the build's time is in and one a microsecond after it is out, whatever the engine stores."""
    engine = make_engine(warehouse_url)
    as_of = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    start = as_of - timedelta(days=30)
    tick = timedelta(microseconds=1)
    customers, orders = shop_tables()
    customers.metadata.create_all(engine)
    placed = {1: start, 2: start + tick, 3: as_of, 4: as_of + tick}
    with engine.begin() as conn:
        for customer, at in placed.items():
            conn.execute(
                sa.insert(customers).values(
                    customer_id=customer, email_consent=True, updated_at=EARLIER
                )
            )
            conn.execute(
                sa.insert(orders).values(
                    order_id=customer, customer_id=customer, amount=10, ordered_at=at, updated_at=at
                )
            )

    build_profiles(engine, profiles_config(warehouse_url), as_of=as_of)

    rows = {r["customer_id"]: r for r in profile_rows(engine, "customer_profiles")}
    assert {k: r["frequency"] for k, r in rows.items()} == {"1": 0, "2": 1, "3": 1, "4": 0}
    assert rows["4"]["last_order_at"] is None
    assert rows["3"]["last_order_at"] == as_of.replace(tzinfo=None)
    engine.dispose()


def test_consent_added_to_built_profiles_is_carried_by_the_next_build(warehouse_url: str) -> None:
    """`profiles.customers.consent` set after the first build: the profile table gains the
    column and the next build fills it for every customer; not an error until the table is
    dropped by hand (it read "cannot connect to …" on SQLite)."""
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    customers = {"table": "customers", "key": "customer_id"}
    without = profiles_config(warehouse_url, customers=customers)
    build_profiles(engine, without, as_of=AS_OF)
    assert "consent" not in profile_rows(engine, "customer_profiles")[0]

    result = build_profiles(engine, profiles_config(warehouse_url), as_of=AS_OF)

    consents = {r["customer_id"]: r["consent"] for r in profile_rows(engine, "customer_profiles")}
    assert consents == {str(c): consent for c, (consent, _) in SHOP.items()}
    assert result.mode == "full"
    engine.dispose()


def test_an_amount_that_is_a_time_is_refused_naming_the_key(warehouse_url: str) -> None:
    """`orders.amount: ordered_at` (a timestamp): refused by name before any SQL, not a
    PostgreSQL traceback over sum(timestamp) (nor, on SQLite, sums of dates as money)."""
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    orders = {"table": "orders", "amount": "ordered_at", "updated_at": "updated_at"}
    with pytest.raises(ValueError, match=r"profiles\.orders\.amount: orders\.ordered_at is"):
        build_profiles(engine, profiles_config(warehouse_url, orders=orders), as_of=AS_OF)
    engine.dispose()


def test_a_changed_input_column_rebuilds_every_profile(warehouse_url: str) -> None:
    """`orders.amount` pointed at another column after a build: the next build is full and
    monetary is the new column's sums; an incremental build kept the old sums for every
    customer who had not changed, and said "checks ok"."""
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN net NUMERIC(12, 2)"))
        conn.execute(sa.text("UPDATE orders SET net = amount / 2"))
    build_profiles(engine, profiles_config(warehouse_url), as_of=AS_OF)
    orders = {"table": "orders", "amount": "net", "updated_at": "updated_at"}

    result = build_profiles(engine, profiles_config(warehouse_url, orders=orders), as_of=AS_OF)

    monetary = {r["customer_id"]: r["monetary"] for r in profile_rows(engine, "customer_profiles")}
    assert monetary == {c: e[1] / 2 for c, e in EXPECTED.items()}
    assert result.mode == "full"
    engine.dispose()


def test_the_configured_fields_are_the_profile_tables_columns(warehouse_url: str) -> None:
    """`api.fields` and campaigns are checked against `PROFILE_FIELDS` at load: it must name
    every column the profile table has, and nothing it lacks (bar the cart's age, worked out)."""
    import pytest

    from pipewarden.profiles.tables import profile_table

    with_consent = profiles_config(warehouse_url).profiles
    assert with_consent is not None
    columns = {c.name for c in profile_table("p", None, sa.Boolean()).columns}
    assert set(with_consent.field_names()) == columns | {"cart_age_seconds"}
    plain = {c.name for c in profile_table("p", None, None).columns}
    without = profiles_config(warehouse_url, customers={"table": "customers"}).profiles
    assert without is not None and set(without.field_names()) == plain | {"cart_age_seconds"}

    with pytest.raises(ValueError, match=r"api.fields: no profile field 'segmnt' \(fields: "):
        profiles_config(warehouse_url, api={"fields": ["segment", "segmnt"]})
