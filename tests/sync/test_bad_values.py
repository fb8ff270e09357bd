"""One bad value never blocks a table: it loads exactly, or its row goes to the quarantine with a
reason naming the column and the problem, and the rest of the batch loads (issue 10).

Sources are created with raw DDL (no primary key: real sources without the constraint) so that
the bad values a database accepts can be written as it stores them.
"""

import json
from collections.abc import Callable
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest
import sqlalchemy as sa

from pipewarden.records import quarantine as q
from tests.sync.support import (
    PERMISSIVE,
    SOURCES,
    WAREHOUSES,
    held,
    insert,
    make_config,
    prepared,
    stamp,
    sync,
)


class Orders(pa.DataFrameModel):
    """The `schema:` variant: the key may not be NULL nor repeat, as a user would write it."""

    order_id: pl.Int64 = pa.Field(nullable=False, unique=True)
    status: pl.String = pa.Field(nullable=True)


CHECKS = {"no-checks": {}, "schema": {"schema": f"{__name__}:Orders"}}


def warehouse_rows(url: str, columns: str = "order_id, status") -> list[tuple[Any, ...]]:
    with sa.create_engine(url).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT {columns} FROM orders ORDER BY 1"))]


def reasons_of(entries: list[q.QuarantineEntry]) -> list[tuple[str, str, str | None]]:
    return sorted((r["column"], r["check"], r["value"]) for e in entries for r in e.reasons)


def assert_second_run_counts_nothing_again(
    source: sa.Engine, src_url: str, wh_url: str, checks: dict[str, Any], before: int
) -> None:
    insert(source, [{"order_id": 99, "status": "late", "updated_at": stamp(59)}])
    again = sync(src_url, wh_url, {**checks, "lookback": "1h"})  # every row read again
    assert (again.rows_loaded, again.rows_quarantined) == (1, 0)
    with source.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar()
    assert again.rows_read == again.rows_loaded + again.rows_unchanged == rows
    assert len(held(wh_url)) == before


#: Per case: source rows, then what the warehouse holds, the held rows' statuses and reasons,
#: and the run's (read, loaded, unchanged, quarantined).
KEYS: dict[str, tuple[list[dict[str, Any]], list[tuple[Any, ...]], list[str], list[Any], Any]] = {
    "null-key": (
        [
            {"order_id": 1, "status": "paid", "updated_at": stamp(1)},
            {"order_id": None, "status": "orphan", "updated_at": stamp(2)},
            {"order_id": 3, "status": "paid", "updated_at": stamp(3)},
        ],
        [(1, "paid"), (3, "paid")],
        ["orphan"],
        [("order_id", "key.null", "null")],
        (3, 2, 0, 1),
    ),
    # One key twice: the newest cursor wins, the older version is skipped; a tie is ambiguous.
    "duplicate-key": (
        [
            {"order_id": 1, "status": "old", "updated_at": stamp(1)},
            {"order_id": 1, "status": "new", "updated_at": stamp(5)},
            {"order_id": 2, "status": "this", "updated_at": stamp(3)},
            {"order_id": 2, "status": "that", "updated_at": stamp(3)},
            {"order_id": 3, "status": "paid", "updated_at": stamp(4)},
        ],
        [(1, "new"), (3, "paid")],
        ["that", "this"],
        [("order_id", "key.duplicate", "2")] * 2,
        (5, 2, 1, 2),
    ),
}


@pytest.mark.parametrize("checks", CHECKS)
@pytest.mark.parametrize("warehouse", WAREHOUSES)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("case", KEYS)
def test_keys_the_merge_cannot_take_are_held_and_the_rest_loads(
    make_url: Callable[[str, str], str], case: str, source: str, warehouse: str, checks: str
) -> None:
    rows, loaded, statuses, reasons, counts = KEYS[case]
    engine, src_url, wh_url = prepared(make_url, source, warehouse, rows)
    run = sync(src_url, wh_url, CHECKS[checks])
    assert warehouse_rows(wh_url) == loaded
    entries = held(wh_url)
    assert sorted(e.row["status"] for e in entries) == statuses
    assert reasons_of(entries) == reasons
    assert (run.rows_read, run.rows_loaded, run.rows_unchanged, run.rows_quarantined) == counts
    assert_second_run_counts_nothing_again(engine, src_url, wh_url, CHECKS[checks], len(entries))


#: Per case: the source, its extra columns (type, a good value), the bad values it stores
#: (column, value, the check that holds the row), and the session set-up that lets it store them.
UNREADABLE: dict[str, tuple[str, dict[str, tuple[str, str]], list[tuple[str, str, str]], Any]] = {
    "postgresql-infinity": (
        "postgresql",
        {
            "valid_to": ("timestamp", "2030-01-01 00:00:00+00"),
            "valid_on": ("date", "2030-01-01"),
            "seen": ("naive", stamp(0)),
        },
        [
            ("valid_to", "infinity", "unreadable.out_of_range"),
            ("valid_on", "-infinity", "unreadable.out_of_range"),
            ("seen", "infinity", "unreadable.out_of_range"),
        ],
        None,
    ),
    "mariadb-zero-dates": (
        "mariadb",
        {"born": ("date", "1990-05-01"), "seen": ("naive", "2026-01-01 00:00:00")},
        [
            ("born", "0000-00-00", "unreadable.invalid_date"),
            ("seen", "0000-00-00 00:00:00", "unreadable.invalid_date"),
            ("born", "2020-02-00", "unreadable.invalid_date"),
        ],
        PERMISSIVE,
    ),
    "sqlite-text": (
        "sqlite",
        {
            "shipped": ("naive", "2026-01-01 00:00:00.000000"),
            "due": ("date", "2026-02-01"),
            "doc": ("json", '{"a": [1]}'),
        },
        [
            ("shipped", "not a date", "unreadable.not_a_timestamp"),
            ("shipped", "2026-02-30 10:00:00.000000", "unreadable.not_a_timestamp"),
            ("due", "soon", "unreadable.not_a_date"),
            ("due", "2026-04-31", "unreadable.not_a_date"),
            ("doc", "{bad", "unreadable.not_json"),
            ("doc", "NaN", "unreadable.not_json"),
        ],
        None,
    ),
}


@pytest.mark.parametrize("checks", CHECKS)
@pytest.mark.parametrize("warehouse", WAREHOUSES)
@pytest.mark.parametrize("case", UNREADABLE)
def test_values_no_batch_can_hold_are_held_by_name(
    make_url: Callable[[str, str], str], case: str, warehouse: str, checks: str
) -> None:
    source, columns, bad, setup = UNREADABLE[case]
    good = {name: value for name, (_, value) in columns.items()}
    last = len(bad) + 2
    rows = [{**good, "order_id": 1, "status": "paid", "updated_at": stamp(1)}]
    rows += [
        {**good, "order_id": i, "status": "odd", "updated_at": stamp(i), column: value}
        for i, (column, value, _) in enumerate(bad, start=2)
    ]
    rows.append({**good, "order_id": last, "status": "paid", "updated_at": stamp(last)})
    extra = {name: kind for name, (kind, _) in columns.items()}
    engine, src_url, wh_url = prepared(make_url, source, warehouse, rows, extra, setup)
    run = sync(src_url, wh_url, CHECKS[checks])
    assert warehouse_rows(wh_url) == [(1, "paid"), (last, "paid")]
    assert reasons_of(held(wh_url)) == sorted((c, check, v) for c, v, check in bad)
    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (last, 2, len(bad))
    assert_second_run_counts_nothing_again(engine, src_url, wh_url, CHECKS[checks], len(bad))


@pytest.mark.parametrize("warehouse", WAREHOUSES)
@pytest.mark.parametrize("source", ["sqlite", "mariadb"])
def test_text_holding_nul_loads_exactly_where_the_warehouse_can_store_it(
    make_url: Callable[[str, str], str], source: str, warehouse: str
) -> None:
    rows = [
        {"order_id": 1, "status": "paid", "updated_at": stamp(1)},
        {"order_id": 2, "status": "nul\x00inside", "updated_at": stamp(2)},
        {"order_id": 3, "status": "paid", "updated_at": stamp(3)},
    ]
    engine, src_url, wh_url = prepared(make_url, source, warehouse, rows)
    run = sync(src_url, wh_url, {})
    if warehouse == "sqlite":  # SQLite text holds NUL: carried exactly
        assert warehouse_rows(wh_url) == [(1, "paid"), (2, "nul\x00inside"), (3, "paid")]
        assert held(wh_url) == []
        assert (run.rows_loaded, run.rows_quarantined) == (3, 0)
    else:  # PostgreSQL text cannot hold it
        assert warehouse_rows(wh_url) == [(1, "paid"), (3, "paid")]
        entries = held(wh_url)
        assert [e.row["status"] for e in entries] == ["nul\x00inside"]
        assert reasons_of(entries) == [("status", "refused.nul_character", "nul\x00inside")]
        assert (run.rows_loaded, run.rows_quarantined) == (2, 1)
    assert_second_run_counts_nothing_again(engine, src_url, wh_url, {}, len(held(wh_url)))


def test_rows_a_run_held_are_in_the_runs_check_failures(
    make_url: Callable[[str, str], str],
) -> None:
    row = {"order_id": 1, "status": "x", "updated_at": stamp(1), "doc": "{bad"}
    _, src_url, wh_url = prepared(make_url, "sqlite", "sqlite", [row], {"doc": "json"})
    run = sync(src_url, wh_url, {})
    with sa.create_engine(wh_url).connect() as conn:
        failures = q.failures_of_run(conn, run.run_id)
    assert [(f["column"], f["check"], f["failures"]) for f in failures] == [
        ("doc", "unreadable.not_json", 1)
    ]
    assert json.loads(held(wh_url)[0].row_json)["doc"] is None


@pytest.mark.parametrize("warehouse", WAREHOUSES)
def test_a_replay_keeps_rows_whose_value_was_never_read(
    make_url: Callable[[str, str], str], warehouse: str
) -> None:
    from pipewarden.sync.quarantine_replay import replay

    good = {"shipped": "2026-01-01 00:00:00.000000", "doc": "{}"}
    rows = [
        {**good, "order_id": 1, "status": "a", "updated_at": stamp(1), "doc": "{bad"},
        {**good, "order_id": 2, "status": "b", "updated_at": stamp(2), "shipped": "soon"},
        {**good, "order_id": None, "status": "c", "updated_at": stamp(3)},
        {**good, "order_id": 4, "status": "paid", "updated_at": stamp(4)},
    ]
    extra = {"shipped": "naive", "doc": "json"}
    _, src_url, wh_url = prepared(make_url, "sqlite", warehouse, rows, extra)
    sync(src_url, wh_url, {})
    before = reasons_of(held(wh_url))
    result = replay(make_config(src_url, wh_url), "orders", by="test")
    assert (result.examined, result.released, result.still_held) == (3, 0, 3)
    assert warehouse_rows(wh_url) == [(4, "paid")]
    assert reasons_of(held(wh_url)) == before


@pytest.mark.parametrize("source", ["postgresql", "sqlite"])
def test_a_cursor_no_batch_can_hold_is_held_and_not_the_newest(
    make_url: Callable[[str, str], str], source: str
) -> None:
    bad = "infinity" if source == "postgresql" else "not a date"
    rows = [
        {"order_id": 1, "status": "paid", "updated_at": stamp(1)},
        {"order_id": 2, "status": "odd", "updated_at": bad},
        {"order_id": 3, "status": "paid", "updated_at": stamp(3)},
    ]
    _, src_url, wh_url = prepared(make_url, source, "sqlite", rows)
    run = sync(src_url, wh_url, {})
    assert warehouse_rows(wh_url) == [(1, "paid"), (3, "paid")]
    assert [e.row["order_id"] for e in held(wh_url)] == [2]
    assert (run.rows_loaded, run.rows_quarantined) == (2, 1)
    assert run.newest_source_cursor is not None and "10:00:03" in str(run.newest_source_cursor)
