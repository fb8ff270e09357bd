"""The sync deployment: one task per table, retried with backoff on transient errors only."""

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.futures import wait
from prefect.tasks import exponential_backoff

from checks.gate import verify_schema_refs
from flows.alerts import deliver_after
from flows.retries import retry_if_transient
from pipewarden.config import load_config
from pipewarden.db.engines import cached_engine
from pipewarden.sync.run import SyncOptions, sync_table
from pipewarden.sync.summary import run_summary


@task(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    task_run_name="sync-{table}",
)
def sync_table_task(
    config_path: str | None,
    table: str,
    full_refresh: bool = False,
    backfill_columns: list[str] | None = None,
) -> dict[str, Any]:
    """Sync one table; returns the run's summary (a plain dict, so Prefect can persist it)."""
    from checks.gate import gate_for
    from checks.report import failure_summary, publish_failure_artifact

    config = load_config(config_path)
    run = sync_table(
        config,
        table,
        SyncOptions(
            full_refresh=full_refresh,
            backfill_columns=backfill_columns or [],
            gate_factory=gate_for,
        ),
    )
    summary = run_summary(run)
    summary["failures"] = failure_summary(
        cached_engine(config.warehouse.url, config.timeouts.engine()), run.run_id
    )
    publish_failure_artifact(summary["failures"], table)
    get_run_logger().info("%s", {k: v for k, v in summary.items() if k != "failures"})
    return summary


@flow(name="pipewarden-sync")
def sync_flow(
    tables: list[str] | None = None,
    schedule_class: str | None = None,
    config_path: str | None = None,
    full_refresh: bool = False,
    backfill_columns: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Sync the named tables, or those of one schedule class, or all configured tables."""
    config = load_config(config_path)
    names = tables or [
        name
        for name, table in config.tables.items()
        if schedule_class is None or table.schedule == schedule_class
    ]
    for name in names:
        config.table(name)  # unknown names fail before any table runs
    verify_schema_refs(config)  # a bad schema reference fails before any table runs
    futures = [
        sync_table_task.submit(config_path, name, full_refresh, backfill_columns) for name in names
    ]
    wait(futures)
    deliver_after(config_path)  # a failed sync's alert goes out before the flow fails
    return [future.result() for future in futures]
