"""The gate's writes to the quarantine on every warehouse engine: each bad row, every reason,
superseding.

These call `SchemaGate.keep_rejected` directly, as the loader does, in a transaction of their
own, with batches big enough for the bulk paths (COPY on PostgreSQL, chunked superseding).
"""

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from pipewarden.checks.validation.row_json import row_json
from pipewarden.checks.validation.schema_gate import SchemaGate, load_schema
from pipewarden.db.engines import make_engine
from pipewarden.records import quarantine as q
from pipewarden.records.migrate import ensure_tables
from tests.checks.validation.support import NOW, order_batch

ORDERS = load_schema("pipewarden.checks.schemas.shop:Orders")
#: Text that CSV must quote, escape or keep apart from NULL.
AWKWARD = 'lost, "maybe"\nsecond line é ✓ \\N'

#: A bad variant of an order, and the (column, check) reasons it must be held for.
BAD: list[tuple[dict[str, Any], set[tuple[str, str]]]] = [
    ({"status": AWKWARD}, {("status", "known_status")}),
    ({"amount": Decimal("-1.50")}, {("amount", "non_negative")}),
    ({"currency": None, "status": ""}, {("currency", "not_nullable"), ("status", "known_status")}),
    (
        {"created_at": NOW - timedelta(minutes=1)},
        {("created_at,updated_at", "created_at<=updated_at")},
    ),
]


def orders(keys: range, **changes: Any) -> pl.DataFrame:
    """Valid orders with these keys, each changed by `changes`."""
    batch = order_batch(*[changes] * len(keys))
    return batch.with_columns(order_id=pl.Series(keys, dtype=pl.Int64))


#: The engines that can be a warehouse (MariaDB is a source only: it has no run lock, so
#: pipewarden's own tables cannot be created or upgraded there).
@pytest.fixture(params=["postgresql", "sqlite"])
def warehouse(
    request: pytest.FixtureRequest, make_url: Callable[[str, str], str]
) -> Iterator[sa.Engine]:
    engine = make_engine(make_url(request.param, "pwkeep"))
    ensure_tables(engine)
    yield engine
    engine.dispose()


def gate() -> SchemaGate:
    return SchemaGate(ORDERS, {}, ["order_id"])


def keep(engine: sa.Engine, gate: SchemaGate, batch: pl.DataFrame, run_id: str) -> int:
    with engine.connect() as conn, conn.begin():
        return gate.keep_rejected(conn, "orders", run_id, gate.check(batch))


def statuses(engine: sa.Engine) -> dict[tuple[int, str], list[tuple[str, str | None]]]:
    """(order_id, status in the row) → [(quarantine status, superseding run)] per entry."""
    c = q.quarantine.c
    out: dict[tuple[int, str], list[tuple[str, str | None]]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.primary_key, c.row_json, c.status, c.superseded_by_run).order_by(c.id)
        )
        for r in rows:
            key = (json.loads(r.primary_key)["order_id"], json.loads(r.row_json)["status"])
            out.setdefault(key, []).append((r.status, r.superseded_by_run))
    return out


def test_every_bad_row_is_held_once_with_all_its_reasons(warehouse):
    batch = pl.concat(
        [
            orders(range(k, k + 1), **BAD[k % 5][0]) if k % 5 < 4 else orders(range(k, k + 1))
            for k in range(1, 1201)
        ]
    )
    expected = {k: BAD[k % 5][1] for k in range(1, 1201) if k % 5 < 4}

    kept = keep(warehouse, gate(), batch, "run-1")

    with warehouse.connect() as conn:
        entries = q.entries(conn, "orders")
        by_reason = {
            e.primary_key["order_id"] for e in q.entries(conn, "orders", reason="known_status")
        }
    assert kept == len(expected) == len(entries)
    assert {
        e.primary_key["order_id"]: {(r["column"], r["check"]) for r in e.reasons} for e in entries
    } == expected
    rows = dict(zip(batch["order_id"].to_list(), row_json(batch).to_list(), strict=True))
    assert all(e.row_json == rows[e.primary_key["order_id"]] for e in entries)
    assert {e.run_id for e in entries} == {"run-1"}
    assert by_reason == {k for k, r in expected.items() if ("status", "known_status") in r}
    awkward = next(e for e in entries if e.primary_key["order_id"] == 5)
    assert awkward.row["status"] == AWKWARD
    assert awkward.reasons == [{"column": "status", "check": "known_status", "value": AWKWARD}]
    empty = next(e for e in entries if e.primary_key["order_id"] == 2)
    assert empty.row["status"] == "" and empty.row["currency"] is None


def test_rows_are_held_in_the_callers_transaction(warehouse):
    checked = gate().check(orders(range(1, 101), status="lost"))
    with warehouse.connect() as conn:
        with conn.begin() as txn:
            assert gate().keep_rejected(conn, "orders", "run-1", checked) == 100
            txn.rollback()
        assert q.entries(conn, "orders", status=None) == []
        assert q.failures_of_run(conn, "run-1") == []


def test_superseding_within_a_run_and_across_runs(warehouse):
    first = gate()
    keep(warehouse, first, orders(range(1, 611), status="lost"), "run-a")
    # Same run, later batch: 1..600 arrive valid (more than one chunk of the UPDATE), 601 is
    # read again unchanged, 602 arrives as another bad version.
    later = pl.concat(
        [
            orders(range(1, 601)),
            orders(range(601, 602), status="lost"),
            orders(range(602, 603), status="gone"),
        ]
    )
    assert keep(warehouse, first, later, "run-a") == 1  # 601 is held already
    # A new run reads the held rows from the database: 603 valid, 604 unchanged, 602 again.
    batch = pl.concat(
        [
            orders(range(603, 604)),
            orders(range(604, 605), status="lost"),
            orders(range(602, 603), status="gone"),
        ]
    )
    assert keep(warehouse, gate(), batch, "run-b") == 0  # both held as they are

    found = statuses(warehouse)
    assert all(found[(k, "lost")] == [("superseded", "run-a")] for k in range(1, 601))
    assert found[(601, "lost")] == [("held", None)]
    assert found[(602, "lost")] == [("superseded", "run-a")]
    assert found[(602, "gone")] == [("held", None)]
    assert found[(603, "lost")] == [("superseded", "run-b")]
    assert all(found[(k, "lost")] == [("held", None)] for k in range(604, 611))
    assert len(found) == 611
