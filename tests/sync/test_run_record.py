"""The runs table tells the truth about a run even when the bookkeeping around it fails."""

import pytest
import sqlalchemy as sa

import pipewarden.sync.run as sync_run
from pipewarden.db.engines import cached_engine
from pipewarden.records.tables import sync_runs
from pipewarden.sync.run import SyncOptions, sync_table
from tests.sync.support import fill_orders, make_config, orders_table


def _source(url: str, count: int = 250) -> None:
    engine = cached_engine(url)
    orders = orders_table()
    orders.create(engine)
    fill_orders(engine, orders, count)


def _recorded(warehouse_url: str) -> list[tuple[str, int]]:
    with cached_engine(warehouse_url).connect() as conn:
        rows = conn.execute(sa.select(sync_runs.c.status, sync_runs.c.rows_loaded))
        return [tuple(r) for r in rows]


def test_a_run_whose_metrics_cannot_be_written_is_still_recorded_as_a_success(
    sqlite_url, monkeypatch
):
    source_url, warehouse_url = sqlite_url("src"), sqlite_url("wh")
    _source(source_url)

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("metrics store unavailable")

    monkeypatch.setattr(sync_run, "write_sync_metrics", broken)
    with pytest.raises(RuntimeError, match="metrics store unavailable"):
        sync_table(make_config(source_url, warehouse_url), "orders")

    assert _recorded(warehouse_url) == [("success", 250)]


def test_a_run_whose_running_marker_was_lost_is_recorded_when_it_ends(postgres):
    source_url, warehouse_url = postgres.new("src"), postgres.new("wh")
    _source(source_url)

    def lose_the_marker(run) -> None:  # type: ignore[no-untyped-def]
        # What a server crash can do to start_run's relaxed commit.
        with cached_engine(warehouse_url).begin() as conn:
            conn.execute(sync_runs.delete().where(sync_runs.c.run_id == run.run_id))

    run = sync_table(
        make_config(source_url, warehouse_url), "orders", SyncOptions(on_batch=lose_the_marker)
    )

    assert run.status == "success"
    assert _recorded(warehouse_url) == [("success", 250)]
