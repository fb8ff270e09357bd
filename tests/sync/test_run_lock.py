"""Runs of one table take turns: two first syncs at once both succeed, one after the other, and
a run that cannot get its turn in time gives up with a message naming the run it waited for."""

import threading
from typing import Any

import pytest

from pipewarden.db.engines import cached_engine
from pipewarden.sync.run import RunLocked, SyncOptions, sync_table
from tests.sync.support import (
    WAREHOUSES,
    make_config,
    normalized,
    orders_source,
    rows_of,
    sync_runs_of,
)


def config_for(source_url: str, warehouse_url: str, run_lock: str = "5m") -> Any:
    return make_config(source_url, warehouse_url, {"run_lock": run_lock}, batch_size=40)


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_two_first_syncs_at_once_take_turns_and_both_succeed(make_url, warehouse_kind):
    source_url, warehouse_url = make_url("postgresql", "src"), make_url(warehouse_kind, "wh")
    source, _ = orders_source(source_url, 800)
    config = config_for(source_url, warehouse_url)
    start = threading.Barrier(2)
    batches: list[str] = []
    outcomes: dict[str, Any] = {}

    def sync(name: str) -> None:
        start.wait()
        try:
            outcomes[name] = sync_table(
                config, "orders", SyncOptions(on_batch=lambda _run: batches.append(name))
            ).status
        except Exception as error:  # noqa: BLE001 - the test reports any failure by its run
            outcomes[name] = error

    threads = [threading.Thread(target=sync, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == {"a": "success", "b": "success"}
    first = batches[0]
    # One run did all its batches before the other began: turns, not interleaving.
    assert batches == [first] * batches.count(first) + [b for b in batches if b != first]
    assert batches.count(first) == 20
    warehouse = cached_engine(warehouse_url)
    assert normalized(rows_of(warehouse)) == normalized(rows_of(source))


@pytest.mark.parametrize("warehouse_kind", WAREHOUSES)
def test_a_run_that_waits_too_long_gives_up_naming_the_run_it_waited_for(
    make_url, warehouse_kind, caplog
):
    source_url, warehouse_url = make_url("postgresql", "src"), make_url(warehouse_kind, "wh")
    source, _ = orders_source(source_url, 100)
    holding, release = threading.Event(), threading.Event()
    first: dict[str, Any] = {}

    def hold(run: Any) -> None:
        first["run_id"] = run.run_id
        holding.set()
        release.wait(timeout=120)

    def slow() -> None:
        first["run"] = sync_table(
            config_for(source_url, warehouse_url), "orders", SyncOptions(on_batch=hold)
        )

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert holding.wait(timeout=120)
        impatient = config_for(source_url, warehouse_url, run_lock="0.3s")
        with pytest.raises(RunLocked) as refused:
            sync_table(impatient, "orders")
    finally:
        release.set()
        thread.join()
    waited = "another sync of warehouse table 'orders' is running; waiting up to 0.3 s"
    assert f"table orders: {waited}" in caplog.text
    message = str(refused.value)
    assert "table orders" in message and first["run_id"] in message
    assert "0.3 s" in message and "timeouts.run_lock" in message
    assert first["run"].status == "success"
    warehouse = cached_engine(warehouse_url)
    statuses = {run_id: (status, error) for run_id, status, error in sync_runs_of(warehouse)}
    assert statuses.pop(first["run_id"]) == ("success", None)
    [(status, error)] = statuses.values()
    assert status == "failed" and error == message
    assert normalized(rows_of(warehouse)) == normalized(rows_of(source))
