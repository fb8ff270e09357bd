"""The checks deployment: freshness and anomaly checks of every table, shown as an artifact,
then the alerts they raised delivered."""

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from flows.alerts import deliver_after
from pipewarden.config import load_config
from pipewarden.records.metrics import FAILING, CheckResult

ARTIFACT_KEY = "pipewarden-checks"


def result_rows(results: list[CheckResult]) -> list[dict[str, Any]]:
    """Check results as plain rows: what Prefect persists and the artifact table shows."""
    return [
        {
            "table": r.table_name,
            "check": r.check,
            "status": r.status,
            "observed": r.observed,
            "expected_low": r.expected_low,
            "expected_high": r.expected_high,
            "reason": (r.reason or "")[:300],
        }
        for r in results
    ]


@task(task_run_name="run-checks")
def run_checks_task(config_path: str | None, tables: list[str] | None) -> list[dict[str, Any]]:
    """Run and record the checks (retrying would only record them twice: no retries)."""
    from checks.monitor import run_checks

    return result_rows(run_checks(load_config(config_path), tables))


@flow(name="pipewarden-checks")
def checks_flow(
    tables: list[str] | None = None, config_path: str | None = None
) -> list[dict[str, Any]]:
    """Check the named tables (default: all) and publish the results as a table artifact."""
    try:
        rows = run_checks_task(config_path, tables)
    finally:
        deliver_after(config_path)
    failing = [r for r in rows if r["status"] in FAILING]
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=rows,
        description=f"{len(failing)} of {len(rows)} checks need attention",
    )
    get_run_logger().info("%d checks, %d need attention", len(rows), len(failing))
    return rows
