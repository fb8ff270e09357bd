"""An incremental build gives the table a full rebuild gives, over random shop histories
(orders, consent changes, and customers deleted by a reconciliation's repair)."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import build_profiles
from pipewarden.reconcile.keys import json_key
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.reconcile_runs import RepairRecord, record_repairs
from tests.profiles.support import profile_rows, profiles_config, shop_tables, unique_suffix

START = datetime(2026, 3, 1, tzinfo=UTC)

#: One order: customer, the day it is placed relative to its batch, amount in cents.
ORDER = st.tuples(st.integers(1, 6), st.integers(-40, 0), st.integers(0, 50_000))
#: One batch between builds: new orders, consent flips, days until the build, deletions.
BATCH = st.tuples(
    st.lists(ORDER, max_size=6),
    st.lists(st.integers(1, 6), max_size=2),
    st.integers(0, 20),
    st.lists(st.integers(1, 6), max_size=2, unique=True),
)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(BATCH, min_size=1, max_size=4))
def test_incremental_builds_equal_a_full_rebuild(
    make_url,
    kind: str,
    batches: list[tuple[list[tuple[int, int, int]], list[int], int, list[int]]],
) -> None:
    url = make_url(kind, "pwprofiles")
    suffix = unique_suffix()
    engine = make_engine(url)
    customers, orders = shop_tables(suffix)
    customers.metadata.create_all(engine)
    config = profiles_config(url, suffix, synced=True)
    ensure_tables(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(customers),
            [{"customer_id": c, "email_consent": True, "updated_at": START} for c in range(1, 7)],
        )
    now, order_id, consent = START, 0, dict.fromkeys(range(1, 7), True)
    for new_orders, flips, days, deletions in batches:
        with engine.begin() as conn:
            for customer, offset, cents in new_orders:
                order_id += 1
                conn.execute(
                    sa.insert(orders).values(
                        order_id=order_id,
                        customer_id=customer,
                        amount=cents / 100,
                        ordered_at=now + timedelta(days=offset),
                        updated_at=now,
                    )
                )
            for customer in flips:
                consent[customer] = not consent[customer]
                conn.execute(
                    sa.update(customers)
                    .where(customers.c.customer_id == customer)
                    .values(email_consent=consent[customer], updated_at=now)
                )
            # As a repair deletes a row its source lost: the delete and its audit together.
            conn.execute(sa.delete(customers).where(customers.c.customer_id.in_(deletions)))
            audit = [RepairRecord(json_key((c,)), "delete", None, None) for c in deletions]
            record_repairs(conn, "run", customers.name, audit)
        now += timedelta(days=days, minutes=10)
        build_profiles(engine, config, as_of=now)
    incremental = profile_rows(engine, config.profiles.table)  # type: ignore[union-attr]

    build_profiles(engine, config, full=True, as_of=now)

    assert profile_rows(engine, config.profiles.table) == incremental  # type: ignore[union-attr]
    engine.dispose()


def test_changed_rules_rescore_everyone_at_the_next_build(postgres) -> None:
    """The cuts are kept with the scores and rules they were made by: other rules, and an
    incremental build scores every customer again, as a full build would."""
    url = postgres.new("pwrules")
    engine = make_engine(url)
    customers, orders = shop_tables()
    customers.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(customers),
            [{"customer_id": c, "email_consent": True, "updated_at": START} for c in range(1, 7)],
        )
        conn.execute(
            sa.insert(orders),
            [
                {
                    "order_id": c,
                    "customer_id": c,
                    "amount": c * 10,
                    "ordered_at": START - timedelta(days=c),
                    "updated_at": START,
                }
                for c in range(1, 7)
            ],
        )
    build_profiles(engine, profiles_config(url), full=True, as_of=START)
    other = profiles_config(url, segments={"loyal": "f >= 1"}, scores=3)

    build_profiles(engine, other, as_of=START + timedelta(hours=1))
    incremental = profile_rows(engine, other.profiles.table)  # type: ignore[union-attr]
    build_profiles(engine, other, full=True, as_of=START + timedelta(hours=1))

    assert {row["segment"] for row in incremental} == {"loyal"}
    assert profile_rows(engine, other.profiles.table) == incremental  # type: ignore[union-attr]
    engine.dispose()
