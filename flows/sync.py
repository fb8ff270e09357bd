"""The sync deployment: one task per table, retried with backoff on transient errors only."""

from typing import Any, Literal

from prefect import flow, get_run_logger, tags, task
from prefect.futures import wait
from prefect.states import State
from prefect.tasks import exponential_backoff

from pipewarden.checks.validation.schema_gate import verify_schema_refs
from pipewarden.config import load_config
from pipewarden.db.engines import cached_engine
from pipewarden.flows.alerts import deliver_after
from pipewarden.flows.outcome import finish, task_errors
from pipewarden.flows.retries import retry_if_transient
from pipewarden.flows.slots import ensure_read_limits, read_slot, task_tags
from pipewarden.sync.run import SyncOptions, sync_table
from pipewarden.sync.summary import run_summary
from pipewarden.verdict import FailOn, sync_problems

ScheduleClass = Literal["realtime", "hourly", "daily"]


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
    from pipewarden.checks.validation.report import failure_summary, publish_failure_artifact

    config = load_config(config_path)
    with read_slot(config, config.table(table).source):
        run = sync_table(
            config,
            table,
            SyncOptions(full_refresh=full_refresh, backfill_columns=backfill_columns or []),
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
    schedule_class: ScheduleClass | None = None,
    config_path: str | None = None,
    full_refresh: bool = False,
    backfill_columns: list[str] | None = None,
    fail_on: FailOn | None = None,
) -> list[dict[str, Any]] | State[Any]:
    """Sync the named tables, or those of one schedule class, or all configured tables.

    Args:
        tables: Tables to sync, by their names in the configuration; empty: by schedule_class.
        schedule_class: Sync the tables of this schedule (realtime, hourly or daily) when no
            tables are named; neither: every configured table.
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
        full_refresh: Re-read each table from the start instead of from its watermark.
        backfill_columns: Columns to fill for rows loaded before the column was added.
        fail_on: When the run ends Failed: error (a table's sync failed), warn (also rows held
            in quarantine) or never; default: the configuration's fail_on.
    """
    config = load_config(config_path)
    names = config.tables_named(tables) if tables else config.tables_of(schedule_class)
    verify_schema_refs(config)  # a bad schema reference fails before any table runs
    ensure_read_limits(config)
    futures = {}
    for name in names:
        with tags(*task_tags(config, name, "sync")):
            futures[name] = sync_table_task.submit(
                config_path, name, full_refresh, backfill_columns
            )
    wait(list(futures.values()))
    deliver_after(config_path)  # a failed sync's alert goes out before the flow fails
    states = {name: future.state for name, future in futures.items()}
    summaries = [f.result() for name, f in futures.items() if states[name].is_completed()]
    if not names:
        get_run_logger().info("no table has schedule %s", schedule_class)
    problems = sync_problems(summaries, task_errors(states))
    return finish(summaries, problems, fail_on or config.fail_on)
