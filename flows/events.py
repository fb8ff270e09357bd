"""The stream reconciliation deployment: every stream against its source table, hourly.

The work is `events.source_audit.reconcile_stream`; the flow runs it per stream with retries
on transient errors (a rerun backfills nothing twice: backfilled events have fixed ids),
publishes what it found as a table artifact, and delivers the alerts it raised.
"""

from typing import Any

from prefect import flow, get_run_logger, tags, task
from prefect.artifacts import create_table_artifact
from prefect.states import State
from prefect.tasks import exponential_backoff

from pipewarden.config import load_config
from pipewarden.flows.alerts import deliver_after
from pipewarden.flows.outcome import finish
from pipewarden.flows.retries import retry_if_transient
from pipewarden.records.evidence import Severity
from pipewarden.verdict import FailOn, Problem

ARTIFACT_KEY = "pipewarden-reconcile-streams"


@task(
    task_run_name="reconcile-stream-{stream}",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
)
def reconcile_stream_task(stream: str, repair: bool, config_path: str | None) -> dict[str, Any]:
    """Compare one stream with its source (backfilling with `repair`); the audit as data."""
    from pipewarden.events.source_audit import reconcile_stream

    audit = reconcile_stream(load_config(config_path), stream, repair=repair)
    return {**audit.as_dict(), "problems": [p.__dict__ for p in audit.problems()]}


@flow(name="pipewarden-reconcile-streams")
def reconcile_streams_flow(
    streams: list[str] | None = None,
    repair: bool = True,
    config_path: str | None = None,
    fail_on: FailOn | None = None,
) -> list[dict[str, Any]] | State[Any]:
    """Reconcile event streams with the source tables they mirror over their window.

    Args:
        streams: Streams to reconcile, by name; empty: every stream with a `reconcile` section.
        repair: Backfill missed deliveries from the source, marked as backfilled.
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
        fail_on: When the run ends Failed: error (missed deliveries left), warn (also events
            the source does not have, backfills done) or never; default: the configuration's.
    """
    config = load_config(config_path)
    names = streams or [n for n, s in config.streams.items() if s.reconcile is not None]
    unknown = [n for n in names if n not in config.streams or config.streams[n].reconcile is None]
    if unknown:
        raise ValueError(f"no stream with a reconcile section called {', '.join(unknown)}")
    results: list[dict[str, Any]] = []
    problems: list[Problem] = []
    try:
        with tags("stage:reconcile", "events"):
            states = {
                n: reconcile_stream_task(n, repair, config_path, return_state=True) for n in names
            }
    finally:
        deliver_after(config_path)
    for name, state in states.items():
        if not state.is_completed():
            problems.append(
                Problem(
                    name,
                    "reconcile",
                    Severity.ERROR,
                    state.message or "failed",
                    "see the task's log",
                )
            )
            continue
        result = state.result()
        results.append(result)
        problems += [Problem(**{**p, "level": Severity(p["level"])}) for p in result["problems"]]
    rows = [
        {"stream": r["stream"], "finding": kind, "key": str(k)}
        for r in results
        for kind in ("missed", "unexpected", "backfilled")
        for k in r[kind]
    ]
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=rows[:500] or [{"stream": "", "finding": "none", "key": ""}],
        description=f"{len(results)} streams reconciled, {len(problems)} findings",
    )
    get_run_logger().info("%d streams reconciled, %d findings", len(results), len(problems))
    return finish(results, problems, fail_on or config.fail_on)
