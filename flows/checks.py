"""The checks deployment: freshness and anomaly checks of every table, shown as an artifact,
then the alerts they raised delivered."""

from typing import Any

from prefect import flow, get_run_logger, tags, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from prefect.utilities.annotations import quote

from pipewarden.config import PipewardenConfig, load_config
from pipewarden.flows.alerts import deliver_after
from pipewarden.flows.outcome import finish
from pipewarden.records.evidence import Severity
from pipewarden.records.metrics import CheckResult
from pipewarden.verdict import FailOn, check_problems

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


@task(task_run_name="run-checks", cache_policy=NO_CACHE)
def run_checks_task(
    config_path: str | None,
    tables: list[str] | None,
    config: PipewardenConfig | None = None,
) -> list[dict[str, Any]]:
    """Run and record the checks (retrying would only record them twice: no retries).

    `config` is the flow's, already loaded (at 2,000 tables a load costs 0.4 s), passed quoted
    so that Prefect neither walks nor hashes it; never cached, as nothing is persisted."""
    from pipewarden.checks.monitoring.run import run_checks

    return result_rows(run_checks(config or load_config(config_path), tables))


@task(task_run_name="check-streams")
def check_streams_task(config_path: str | None) -> list[dict[str, Any]]:
    """Freshness and anomalies of every event stream, recorded like the tables' checks."""
    from pipewarden.events.watch import check_streams

    return result_rows(check_streams(load_config(config_path)))


@flow(name="pipewarden-checks")
def checks_flow(
    tables: list[str] | None = None,
    config_path: str | None = None,
    fail_on: FailOn | None = None,
) -> list[dict[str, Any]] | State[Any]:
    """Check the named tables (default: all, and every event stream) and publish the results
    as a table artifact.

    Args:
        tables: Tables to check, by their names in the configuration; empty: every table.
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
        fail_on: When the run ends Failed: error (a check with status error), warn (also warn
            and anomaly) or never; default: the configuration's fail_on.
    """
    config = load_config(config_path)
    if tables:
        config.tables_named(tables)  # unknown names fail before anything runs
    try:
        with tags("stage:check"):
            # Prefect unwraps the quote before the task runs; its typing does not say so.
            rows = run_checks_task(config_path, tables, quote(config))  # type: ignore[call-overload]
            if config.streams and not tables:
                rows += check_streams_task(config_path)
    finally:
        deliver_after(config_path, config)
    failing = [r for r in rows if Severity.of(r["status"]) > Severity.OK]
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=rows,
        description=f"{len(failing)} of {len(rows)} checks need attention",
    )
    get_run_logger().info("%d checks, %d need attention", len(rows), len(failing))
    return finish(rows, check_problems(rows), fail_on or config.fail_on)
