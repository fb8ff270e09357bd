"""The profiles deployment: the profile table rebuilt after the syncs, reconciliations and
stream backfills it reads (a deployment trigger in prefect.yaml), checked like a table, its
cache refreshed, its alerts delivered.

The work is `profiles.publish.build_checked`; the flow runs it once (incremental unless
`full`), publishes the build and its checks as a table artifact and ends Failed when a check
fails under `fail_on`, as the checks deployment does.
"""

from typing import Any

from prefect import flow, get_run_logger, tags, task
from prefect.artifacts import create_table_artifact
from prefect.states import State
from prefect.tasks import exponential_backoff

from pipewarden.config import load_config
from pipewarden.flows.alerts import deliver_after
from pipewarden.flows.checks import result_rows
from pipewarden.flows.outcome import finish
from pipewarden.flows.retries import retry_if_transient
from pipewarden.records.evidence import Severity
from pipewarden.verdict import FailOn, check_problems

ARTIFACT_KEY = "pipewarden-profiles"
#: The flows whose completion may have changed what the profiles read (prefect.yaml's trigger).
UPSTREAM_FLOWS = (
    "pipewarden-sync",
    "pipewarden-reconcile",
    "pipewarden-reconcile-all",
    "pipewarden-reconcile-streams",
)


@task(
    task_run_name="build-profiles",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
)
def build_profiles_task(config_path: str | None, full: bool) -> dict[str, Any]:
    """One build in one transaction (a retry after a lost connection builds again from the
    last recorded build), then its checks and the cache."""
    from pipewarden.db.engines import make_engine
    from pipewarden.profiles.publish import build_checked

    config = load_config(config_path)
    engine = make_engine(config.warehouse.url, config.timeouts.engine())
    try:
        result, checks = build_checked(engine, config, full=full)
    finally:
        engine.dispose()
    return {
        "build": {
            "build_id": result.build_id,
            "mode": result.mode,
            "changed": len(result.changed),
            "rows": result.rows,
            "status": result.status,
            "data_as_of": None if result.data_as_of is None else result.data_as_of.isoformat(),
            "unknown_customer_orders": result.unknown_customer_orders,
        },
        "checks": result_rows(checks),
    }


@flow(name="pipewarden-profiles")
def profiles_flow(
    full: bool = False, config_path: str | None = None, fail_on: FailOn | None = None
) -> dict[str, Any] | State[Any]:
    """Build the profile table, check it like a table and refresh the API's cache.

    Args:
        full: Rebuild every customer (default: only those touched since the last build).
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
        fail_on: When the run ends Failed: error (a failed schema, freshness or segment
            check), warn (also warn and anomaly) or never; default: the configuration's.
    """
    config = load_config(config_path)
    logger = get_run_logger()
    if config.profiles is None:
        logger.info("the configuration declares no profiles: nothing to build")
        return {"build": None, "checks": []}
    try:
        with tags("stage:profiles"):
            outcome = build_profiles_task(config_path, full)
    finally:
        deliver_after(config_path)
    rows = outcome["checks"]
    failing = [r for r in rows if Severity.of(r["status"]) > Severity.OK]
    build = outcome["build"]
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=rows,
        description=f"{build['mode']} build {build['build_id']}: {build['changed']} customers "
        f"changed, {build['rows']} profiles, {len(failing)} of {len(rows)} checks need attention",
    )
    logger.info(
        "%s build %s, %d checks need attention", build["mode"], build["build_id"], len(failing)
    )
    return finish(outcome, check_problems(rows), fail_on or config.fail_on)
