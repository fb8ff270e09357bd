"""The flows' Prefect states tell what the data showed; records keep the flow run's id."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from pipewarden.config import load_config
from pipewarden.flows.checks import checks_flow
from pipewarden.flows.reconcile import reconcile_all_flow, reconcile_flow
from pipewarden.flows.sync import sync_flow
from pipewarden.verdict import NeedsAttention
from tests.fixtures.shop import ORDERS, Shop
from tests.reconcile.support import copy_to_warehouse, create_source, execute, make_config

pytestmark = pytest.mark.prefect


def _shop(sqlite_url: Callable[[str], str], tmp_path: Path, **top: Any) -> tuple[Shop, str]:
    shop = Shop(sqlite_url("shop"), sqlite_url("wh"))
    engine = sa.create_engine(shop.source_url)
    ORDERS.metadata.create_all(engine)
    engine.dispose()
    table = {
        "source": "shop",
        "primary_key": ["order_id"],
        "cursor": "updated_at",
        "schedule": "hourly",
        "freshness": {"warn_after": "30m", "error_after": "2h"},
    }
    config = {
        "warehouse": {"url": shop.warehouse_url},
        "sources": {"shop": {"url": shop.source_url}},
        "tables": {"orders": table},
        **top,
    }
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return shop, str(path)


def _scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def test_a_check_error_fails_the_run_with_table_check_and_what_to_do(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    shop, path = _shop(sqlite_url, tmp_path)
    shop.add(10, minutes_ago=180)  # older than error_after: a freshness error
    shop.sync(load_config(path))

    state = checks_flow(config_path=path, return_state=True)

    assert state.is_failed()
    assert "orders · freshness (error)" in state.message
    assert "pipewarden status" in state.message  # what to do
    # Called directly, the flow raises; the rows it found stay available to the caller.
    rows = state.result(raise_on_failure=False).result
    assert {(r["table"], r["check"], r["status"]) for r in rows} >= {
        ("orders", "freshness", "error")
    }
    assert checks_flow(config_path=path, fail_on="never", return_state=True).is_completed()


def test_a_warning_fails_the_run_only_under_fail_on_warn(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    shop, path = _shop(sqlite_url, tmp_path)
    shop.add(10, minutes_ago=60)  # past warn_after, before error_after
    shop.sync(load_config(path))

    assert checks_flow(config_path=path, return_state=True).is_completed()
    warned = checks_flow(config_path=path, fail_on="warn", return_state=True)
    assert warned.is_failed() and "orders · freshness (warn)" in warned.message

    _, strict = _shop(sqlite_url, tmp_path, fail_on="warn")  # the configuration's default
    assert checks_flow(config_path=strict, return_state=True).is_failed()


def test_a_clean_sync_completes_and_records_its_flow_run(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    shop, path = _shop(sqlite_url, tmp_path)
    shop.add(5, minutes_ago=1)

    state = sync_flow(schedule_class="hourly", config_path=path, return_state=True)

    assert state.is_completed(), state.message
    assert [s["rows_loaded"] for s in state.result()] == [5]
    flow_run_id = str(state.state_details.flow_run_id)
    recorded = _scalar(shop.warehouse_url, "SELECT flow_run_id FROM pipewarden_sync_runs")
    assert recorded == flow_run_id
    checked = checks_flow(config_path=path, return_state=True)
    ids = _scalar(
        shop.warehouse_url, "SELECT count(DISTINCT flow_run_id) FROM pipewarden_check_results"
    )
    assert ids == 1
    assert _scalar(
        shop.warehouse_url, "SELECT min(flow_run_id) FROM pipewarden_check_results"
    ) == str(checked.state_details.flow_run_id)


def test_a_run_outside_prefect_records_no_flow_run(
    sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    shop, path = _shop(sqlite_url, tmp_path)
    shop.add(3, minutes_ago=1)
    shop.sync(load_config(path))
    assert _scalar(shop.warehouse_url, "SELECT count(*) FROM pipewarden_sync_runs") == 1
    assert _scalar(shop.warehouse_url, "SELECT flow_run_id FROM pipewarden_sync_runs") is None


def test_a_failed_table_fails_the_sync_naming_it_while_the_others_load(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    shop, path = _shop(sqlite_url, tmp_path)
    shop.add(4, minutes_ago=1)
    config = yaml.safe_load(Path(path).read_text())
    broken = {**config["tables"]["orders"], "source_table": "no_such_table"}
    config["tables"]["lost"] = broken
    Path(path).write_text(yaml.safe_dump(config))

    state = sync_flow(config_path=path, return_state=True)

    assert state.is_failed()
    assert "lost · sync (error): the sync failed" in state.message
    assert "tables=[lost]" in state.message
    assert "orders" not in state.message
    assert _scalar(shop.warehouse_url, "SELECT count(*) FROM orders") == 4


def test_unknown_tables_fail_at_once_naming_the_known_ones(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    shop, path = _shop(sqlite_url, tmp_path)
    shop.add(2, minutes_ago=1)
    for run in (
        lambda: sync_flow(tables=["ordres", "orders"], config_path=path, return_state=True),
        lambda: checks_flow(tables=["ordres"], config_path=path, return_state=True),
        lambda: reconcile_flow(table="ordres", config_path=path, return_state=True),
        lambda: reconcile_all_flow(tables=["ordres"], config_path=path, return_state=True),
    ):
        state = run()
        assert state.is_failed()
        assert "unknown table 'ordres' (configured: orders)" in state.message
    # Nothing ran: no table was synced, so pipewarden's tables were never created.
    assert not sa.inspect(sa.create_engine(shop.warehouse_url)).has_table("pipewarden_sync_runs")


def test_a_schedule_class_typo_is_rejected_before_the_flow_runs(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    shop, path = _shop(sqlite_url, tmp_path)
    shop.add(2, minutes_ago=1)
    state = sync_flow(schedule_class="hourlyy", config_path=path, return_state=True)
    assert state.is_failed()
    assert "schedule_class: Input should be 'realtime', 'hourly' or 'daily'" in state.message
    assert not sa.inspect(sa.create_engine(shop.warehouse_url)).has_table("orders")


def _reconcile_setup(sqlite_url: Callable[[str], str], tmp_path: Path) -> tuple[str, str]:
    source_url, warehouse_url = sqlite_url("src"), sqlite_url("rwh")
    create_source(source_url, "sqlite").dispose()
    copy_to_warehouse(make_config(source_url, warehouse_url))
    execute(source_url, "DELETE FROM items WHERE id = 2")
    execute(warehouse_url, "UPDATE items SET note = 'typo' WHERE id = 3")
    path = tmp_path / "reconcile.yaml"
    table = {"source": "src", "primary_key": "id", "cursor": "updated_at"}
    config = {
        "warehouse": {"url": warehouse_url},
        "sources": {"src": {"url": source_url}},
        "tables": {"items": table},
    }
    path.write_text(yaml.safe_dump(config))
    return str(path), warehouse_url


def test_a_dry_run_with_differences_fails_and_a_full_repair_completes(
    prefect_harness: None, sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    path, warehouse_url = _reconcile_setup(sqlite_url, tmp_path)

    found = reconcile_flow(table="items", config_path=path, return_state=True)

    assert found.is_failed()
    assert "items · reconcile (error): 2 differences left" in found.message
    assert "keys [2], [3]" in found.message and "repair=true" in found.message
    with pytest.raises(NeedsAttention) as raised:
        reconcile_flow(table="items", config_path=path)
    assert raised.value.result["counts"]["changed"] == 1

    fixed = reconcile_flow(table="items", repair=True, config_path=path, return_state=True)
    assert fixed.is_completed(), fixed.message  # repaired: a warning, not a failure
    assert fixed.result()["repair"]["remaining"] == 0
    assert reconcile_all_flow(config_path=path, return_state=True).is_completed()
    ids = _scalar(
        warehouse_url,
        "SELECT count(*) FROM pipewarden_reconcile_runs WHERE flow_run_id IS NOT NULL",
    )
    assert ids == 4
