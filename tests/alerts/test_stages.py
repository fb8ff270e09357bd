"""The stages raise their alerts: checks, syncs and reconciliations, each in its own transaction."""

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pipewarden.checks.monitoring.run import run_checks
from pipewarden.config.models import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.reconcile.run import ReconcileOptions, reconcile_table
from pipewarden.records.alerts import NOTICE, OPENED, RECOVERED, Alert, alerts, recent_alerts
from pipewarden.records.metrics import check_results
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.sync_runs import sync_runs
from tests.fixtures.shop import Shop
from tests.reconcile.support import copy_to_warehouse, create_source, execute, make_config


def _outbox(config: PipewardenConfig, check: str | None = None) -> list[Alert]:
    with cached_engine(config.warehouse.url).connect() as conn:
        found = recent_alerts(conn)
    return [a for a in found if check is None or a.evidence.check == check]


def test_a_stale_table_is_told_once_and_its_recovery_too(shop: Shop) -> None:
    config = shop.config(owner="#shop-data")
    shop.add(20, minutes_ago=180)
    shop.sync(config)
    run_checks(config)
    run_checks(config)
    (stale,) = _outbox(config, "freshness")
    seen = stale.evidence
    assert (stale.kind, seen.status, stale.channel) == (OPENED, "error", "#shop-data")
    assert seen.observed is not None and 3 * 3600 - 60 < seen.observed < 3 * 3600 + 600
    assert seen.expected_high == 30 * 60 and "over error_after 2h" in (seen.reason or "")
    assert seen.method and seen.run_id

    shop.add(5, minutes_ago=1)
    shop.sync(config)
    run_checks(config)
    assert [a.kind for a in _outbox(config, "freshness")] == [OPENED, RECOVERED]


def test_a_check_run_and_its_alerts_commit_together(shop: Shop) -> None:
    config = shop.config()
    shop.add(20, minutes_ago=180)
    shop.sync(config)
    engine = cached_engine(config.warehouse.url)
    alerts.drop(engine)  # writing the alert now fails inside the check run's transaction
    with pytest.raises(sa.exc.DBAPIError):
        run_checks(config)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(check_results)).scalar() == 0

    alerts.create(engine)
    results = run_checks(config)
    with engine.connect() as conn:
        recorded = conn.execute(sa.select(sa.func.count()).select_from(check_results)).scalar()
    assert recorded == len(results)
    assert [a.evidence.check for a in _outbox(config)] == ["freshness"]


def test_a_failed_sync_is_told_and_the_next_success_ends_it(shop: Shop) -> None:
    broken = shop.config(source_table="no_such_table")
    with pytest.raises(Exception, match="not found"):
        shop.sync(broken)
    (failed,) = _outbox(broken)
    assert failed.kind == OPENED
    assert (failed.evidence.check, failed.evidence.status) == ("sync", "failed")
    assert "no_such_table" in (failed.evidence.reason or "")
    with cached_engine(broken.warehouse.url).connect() as conn:
        (run_id,) = conn.execute(sa.select(sync_runs.c.run_id)).scalars()
    assert failed.evidence.run_id == run_id

    shop.add(3, minutes_ago=5)
    shop.sync(shop.config())
    shop.sync(shop.config())
    assert [a.kind for a in _outbox(broken, "sync")] == [OPENED, RECOVERED]


def test_a_new_source_column_is_a_notice(shop: Shop) -> None:
    config = shop.config()
    shop.add(3, minutes_ago=5)
    shop.sync(config)
    execute(shop.source_url, "ALTER TABLE orders ADD COLUMN coupon TEXT")
    shop.add(2, minutes_ago=1)
    shop.sync(config)
    (notice,) = _outbox(config, "schema")
    assert notice.kind == NOTICE and notice.incident_id is None
    assert notice.details["added"] == ["coupon"] and "coupon" in (notice.evidence.reason or "")


def test_a_sync_failure_after_the_batches_rolls_back_its_alerts_with_its_outcome(
    shop: Shop,
) -> None:
    config = shop.config(source_table="no_such_table")
    engine = cached_engine(config.warehouse.url)
    ensure_tables(engine)
    alerts.drop(engine)
    with pytest.raises(sa.exc.DBAPIError):
        shop.sync(config)
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(sync_runs.c.status)).scalars().all()
    assert statuses == ["running"]  # the outcome did not commit without its alert


def test_reconciliation_differences_open_and_a_whole_clean_run_recovers(
    warehouse_url: str, sqlite_url: Callable[[str], str]
) -> None:
    source_url = sqlite_url("src")
    create_source(source_url, "sqlite").dispose()
    config = make_config(source_url, warehouse_url, owner="#shop-data")
    copy_to_warehouse(config)
    execute(warehouse_url, "UPDATE items SET note = 'typo' WHERE id = 3")

    reconcile_table(config, "items")
    (opened,) = _outbox(config, "reconcile")
    assert opened.kind == OPENED
    assert (opened.evidence.status, opened.evidence.observed) == ("differences", 1.0)
    assert "0 missing, 0 extra, 1 changed" in (opened.evidence.reason or "")

    # Neither a keys-only sweep nor a clean part of the table can say the table is clean.
    reconcile_table(config, "items", ReconcileOptions(keys_only=True))
    reconcile_table(config, "items", ReconcileOptions(key_range=("4", None)))
    assert [a.kind for a in _outbox(config, "reconcile")] == [OPENED]
    assert _outbox(config, "reconcile:keys") == []

    reconcile_table(config, "items", ReconcileOptions(repair=True))
    opened_again, recovered = _outbox(config, "reconcile")
    assert recovered.kind == RECOVERED and "repaired 1 rows" in (recovered.evidence.reason or "")

    # Found and repaired in one run, with nothing open: told once as a notice.
    execute(warehouse_url, "DELETE FROM items WHERE id = 2")
    reconcile_table(config, "items", ReconcileOptions(repair=True))
    assert [a.kind for a in _outbox(config, "reconcile")] == [OPENED, RECOVERED, NOTICE]
