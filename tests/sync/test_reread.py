"""Re-read rows dropped before staging by the ledger (`sync.reread`): every change still lands,
and a ledger that may not describe the warehouse skips nothing."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.records.sync_ledgers import forget_ledger
from pipewarden.sync.extract import Position
from pipewarden.sync.reread import RereadLedger, entries_of
from pipewarden.sync.run import SyncOptions, sync_table
from tests.sync.support import SOURCES, WAREHOUSES, WHOLE_SECONDS, rows_of
from tests.sync.test_delta import T0, assert_target_equals_source, row, setup, update

PAIRS = [(s, w) for s in SOURCES for w in WAREHOUSES]


def edit_warehouse(config, order_id, status):
    """A change made in the warehouse by hand, which only a merge of the source's row undoes."""
    with cached_engine(config.warehouse.url).begin() as conn:
        conn.execute(
            sa.text("UPDATE orders SET status = :s WHERE order_id = :i"),
            {"s": status, "i": order_id},
        )


def status_in_warehouse(config, order_id):
    rows = rows_of(cached_engine(config.warehouse.url))
    return next(r[1] for r in rows if r[0] == order_id)


@pytest.mark.parametrize("source_kind,warehouse_kind", PAIRS)
def test_every_change_lands_when_re_read_rows_are_skipped_even_within_one_cursor_second(
    make_url, source_kind, warehouse_kind
):
    """Whole-second cursors: a row changed twice in one second keeps its cursor, and a row that
    goes back to a version an earlier run loaded must land too."""
    rows = [row(i, T0 + timedelta(minutes=i)) for i in range(1, 6)]
    config, source, orders = setup(
        make_url, source_kind, warehouse_kind, timestamp=WHOLE_SECONDS, rows=rows, lookback="1h"
    )
    sync_table(config, "orders")
    quiet = sync_table(config, "orders")
    assert (quiet.rows_read, quiet.rows_loaded, quiet.rows_unchanged) == (5, 0, 5)
    at = T0 + timedelta(minutes=5)
    update(source, orders, 5, status="refunded", updated_at=at)  # same cursor second
    assert sync_table(config, "orders").rows_loaded == 1
    assert_target_equals_source(config, source)
    update(source, orders, 5, status="paid", updated_at=at)  # back to the first run's version
    assert sync_table(config, "orders").rows_loaded == 1
    assert_target_equals_source(config, source)
    update(source, orders, 5, status="void", updated_at=at)  # twice between two runs
    update(source, orders, 5, status=None, amount=None, updated_at=at)
    update(source, orders, 2, amount=Decimal("10.01"))
    again = sync_table(config, "orders")
    assert (again.rows_read, again.rows_loaded, again.rows_unchanged) == (5, 2, 3)
    assert_target_equals_source(config, source)


@pytest.mark.parametrize(
    "source_kind,warehouse_kind", [("postgresql", "postgresql"), ("sqlite", "sqlite")]
)
def test_a_re_read_row_the_ledger_knows_is_skipped_and_a_forgotten_ledger_skips_nothing(
    make_url, source_kind, warehouse_kind
):
    """A row edited by hand in the warehouse shows which re-read rows were merged: the lookback
    no longer puts it back while the ledger stands (reconciliation does); once a writer other
    than the sync forgets the ledger, the next run merges every re-read row again."""
    rows = [row(i, T0 + timedelta(minutes=i)) for i in range(1, 6)]
    config, _, _ = setup(make_url, source_kind, warehouse_kind, rows=rows, lookback="1h")
    sync_table(config, "orders")
    edit_warehouse(config, 2, "edited")
    sync_table(config, "orders")
    assert status_in_warehouse(config, 2) == "edited"
    with cached_engine(config.warehouse.url).begin() as conn:
        forget_ledger(conn, "orders")
    restored = sync_table(config, "orders")
    assert restored.rows_loaded == 1
    assert status_in_warehouse(config, 2) == "paid"


class Stop(RuntimeError):
    pass


@pytest.mark.parametrize(
    "source_kind,warehouse_kind", [("mariadb", "postgresql"), ("postgresql", "sqlite")]
)
def test_a_run_that_failed_after_loading_a_batch_leaves_a_ledger_that_skips_nothing(
    make_url, source_kind, warehouse_kind
):
    rows = [row(i, T0 + timedelta(seconds=i)) for i in range(1, 151)]  # two batches of 100
    config, _, _ = setup(make_url, source_kind, warehouse_kind, rows=rows, lookback="1h")
    sync_table(config, "orders")
    edit_warehouse(config, 2, "edited")

    def stop(run):
        raise Stop("after the first batch")

    with pytest.raises(Stop):
        sync_table(config, "orders", SyncOptions(on_batch=stop))
    sync_table(config, "orders")
    assert status_in_warehouse(config, 2) == "paid"


@pytest.mark.parametrize(
    "source_kind,warehouse_kind", [("sqlite", "postgresql"), ("mariadb", "sqlite")]
)
def test_a_ledger_over_other_columns_skips_nothing(make_url, source_kind, warehouse_kind):
    rows = [row(i, T0 + timedelta(minutes=i)) for i in range(1, 6)]
    config, source, _ = setup(make_url, source_kind, warehouse_kind, rows=rows, lookback="1h")
    sync_table(config, "orders")
    edit_warehouse(config, 2, "edited")
    with source.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN note VARCHAR(20)"))
    sync_table(config, "orders")
    assert status_in_warehouse(config, 2) == "paid"


def test_content_hashes_tell_apart_what_a_load_tells_apart():
    """Values a hash of floats, or a careless rendering, would equate: each pair must differ
    (-0.0 and 0.0 too: the merge, not the ledger, decides that they are one value)."""
    pairs = {
        "f": [0.0, -0.0],
        "n": [float("nan"), None],
        "t": ["", None],
        "z": ["a\x00b", "a"],
        "d": [Decimal("1.10"), Decimal("1.11")],
        "ts": [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)],
        "b": [b"", None],
    }
    for name, (first, second) in pairs.items():
        frame = pl.DataFrame({"id": [1, 1], name: [first, second]})
        entries = entries_of(frame, ["id"])
        assert entries["k"][0] == entries["k"][1], name
        assert (entries["h1"][0], entries["h2"][0]) != (entries["h1"][1], entries["h2"][1]), name
    swapped = pl.DataFrame({"id": [1, 1], "a": [1, 2], "b": [2, 1]})
    assert entries_of(swapped, ["id"])["h1"].n_unique() == 2


def test_content_hashes_are_the_same_in_another_process():
    """A ledger is written by one process and read by the next (each CLI run, each worker's
    flow run): a hash seeded per process would make every re-read row look changed."""
    script = (
        "import json, sys, polars as pl\n"
        "from pipewarden.sync.reread import entries_of\n"
        "frame = pl.DataFrame({'id': [1, 2], 's': ['a', None], 'f': [0.5, -0.0]})\n"
        "print(json.dumps(entries_of(frame, ['id']).rows()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    frame = pl.DataFrame({"id": [1, 2], "s": ["a", None], "f": [0.5, -0.0]})
    assert [tuple(r) for r in json.loads(out.stdout)] == entries_of(frame, ["id"]).rows()


def test_a_cursor_polars_cannot_compare_turns_the_ledger_off_instead_of_failing_the_sync():
    """Skipping is a saving: a cursor value polars cannot compare with the batch's column
    merges every row and leaves no ledger, rather than failing the run."""
    ledger = RereadLedger(["id"], "c", 1, 1, None)
    batch = pl.DataFrame({"id": [1, 2], "c": ["a", "b"]})  # text cursor, a number watermark

    assert ledger.changed(batch, Position(5, (2,))).equals(batch)
    assert ledger.changed(batch, Position(6, (2,))).equals(batch)
    assert ledger.stored("run-1") is None
