"""The reconciliation deployments: the nightly run and the manual rerun from the Prefect UI.

The flow only wires: the work is `reconcile.run.reconcile_table`, the result is published as a
table artifact (one row per difference, capped) so the Prefect UI shows what was found, and the
alerts it raised are delivered.
"""

from typing import Any

from prefect import flow, get_run_logger, tags, task
from prefect.artifacts import create_table_artifact
from prefect.futures import wait
from prefect.states import State

from pipewarden.config import load_config
from pipewarden.flows.alerts import deliver_after
from pipewarden.flows.outcome import finish, task_errors
from pipewarden.flows.slots import ensure_read_limits, read_slot, task_tags
from pipewarden.verdict import FailOn, reconcile_problems

ARTIFACT_ROWS = 500


@task(task_run_name="reconcile-{table}")
def reconcile_task(
    table: str,
    repair: bool,
    key_range: str | None,
    columns: list[str] | None,
    keys_only: bool,
    max_seconds: float | None,
    max_diffs: int | None,
    config_path: str | None,
) -> dict[str, Any]:
    """Run and record one reconciliation; returns the report as plain data."""
    from pipewarden.reconcile.run import ReconcileOptions, reconcile_table, shown_result

    bounds = None
    if key_range:
        low, _, high = key_range.partition(":")
        bounds = (low or None, high or None)
    options = ReconcileOptions(
        key_range=bounds,
        columns=columns,
        keys_only=keys_only,
        max_seconds=max_seconds,
        max_diffs=max_diffs,
        repair=repair,
    )
    config = load_config(config_path)
    with read_slot(config, config.table(table).source):
        report = reconcile_table(config, table, options)
    # The result is logged, published as an artifact and kept by Prefect: customer keys hidden.
    return {**shown_result(config, table, report.as_dict()), "clean": report.clean}


@flow(name="pipewarden-reconcile")
def reconcile_flow(
    table: str,
    repair: bool = False,
    key_range: str | None = None,
    columns: list[str] | None = None,
    keys_only: bool = False,
    max_seconds: float | None = None,
    max_diffs: int | None = None,
    config_path: str | None = None,
    fail_on: FailOn | None = None,
) -> dict[str, Any] | None | State[Any]:
    """Reconcile one table (a dry run unless `repair`), and publish what was found.

    Args:
        table: The table to compare with its source, by its name in the configuration.
        repair: Make the warehouse equal the source; off: a dry run that changes nothing.
        key_range: Only keys in LOW:HIGH (either side may be empty), for a large table.
        columns: Compare only these columns (default: every column).
        keys_only: Compare keys only: finds rows deleted in the source, cheaply.
        max_seconds: Stop comparing after this many seconds (the run says how far it got).
        max_diffs: Stop after this many differences.
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
        fail_on: When the run ends Failed: error (differences left: found by a dry run, or
            remaining after a repair), warn (also differences repaired, an incomplete
            comparison) or never; default: the configuration's fail_on.
    """
    config = load_config(config_path)
    config.tables_named([table])  # an unknown name fails before anything runs
    ensure_read_limits(config)
    try:
        with tags(*task_tags(config, table, "reconcile")):
            state = reconcile_task(
                table,
                repair,
                key_range,
                columns,
                keys_only,
                max_seconds,
                max_diffs,
                config_path,
                return_state=True,
            )
    finally:
        deliver_after(config_path)
    results = [state.result()] if state.is_completed() else []
    publish(results)
    problems = reconcile_problems(results, task_errors({table: state}))
    return finish(results[0] if results else None, problems, fail_on or config.fail_on)


def publish(results: list[dict[str, Any]]) -> None:
    """One table artifact per reconciled table (what was found, capped), and a log line."""
    for result in results:
        create_table_artifact(
            key=artifact_key(result["table"]),
            table=artifact_rows(result),
            description=summary(result),
        )
        get_run_logger().info(summary(result))


def artifact_key(table: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    cleaned = "".join(c if c.isalnum() else "-" for c in table.lower())
    return f"pipewarden-reconcile-{cleaned}"


def artifact_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind in ("missing", "extra"):
        rows += [{"diff": kind, "key": str(k), "columns": ""} for k in result[kind]]
    rows += [
        {"diff": "changed", "key": str(r["key"]), "columns": ", ".join(r["columns"])}
        for r in result["changed"]
    ]
    # What a repair could not fix comes first: it is what needs a person.
    rows = [
        {"diff": f"remaining {r['diff']}", "key": str(r["key"]), "columns": ""}
        for r in result["repair"].get("remaining_keys", [])
    ] + rows
    if not rows:
        rows = [{"diff": "none", "key": "", "columns": ""}]
    return rows[:ARTIFACT_ROWS]


def summary(result: dict[str, Any]) -> str:
    counts = result["counts"]
    repair = result["repair"]
    verb = "repaired" if repair["applied"] else "would repair"
    text = (
        f"{result['table']}: {counts['missing']} missing, {counts['extra']} extra, "
        f"{counts['changed']} changed over {result['rows_compared']:,} rows "
        f"(coverage {result['coverage']:.1%}); {verb} {repair['upserted'] + repair['deleted']}"
    )
    if repair["applied"] and repair["remaining"]:
        keys = ", ".join(str(r["key"]) for r in repair["remaining_keys"][:10])
        text += f"; {repair['remaining']} remain after the repair (keys {keys})"
    return text


@flow(name="pipewarden-reconcile-all")
def reconcile_all_flow(
    tables: list[str] | None = None,
    repair: bool = True,
    keys_only: bool = False,
    max_seconds: float | None = None,
    config_path: str | None = None,
    fail_on: FailOn | None = None,
) -> list[dict[str, Any]] | State[Any]:
    """The nightly run: every configured table (or the named ones), one task each.

    Args:
        tables: Tables to reconcile, by their names in the configuration; empty: every table.
        repair: Make the warehouse equal the source; off: a dry run that changes nothing.
        keys_only: Compare keys only: finds rows deleted in the source, cheaply.
        max_seconds: Stop comparing a table after this many seconds.
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
        fail_on: When the run ends Failed: error (differences left: found by a dry run, or
            remaining after a repair), warn (also differences repaired, an incomplete
            comparison) or never; default: the configuration's fail_on.
    """
    config = load_config(config_path)
    names = config.tables_named(tables) if tables else list(config.tables)
    ensure_read_limits(config)
    futures = {}
    for name in names:
        with tags(*task_tags(config, name, "reconcile")):
            futures[name] = reconcile_task.submit(
                name, repair, None, None, keys_only, max_seconds, None, config_path
            )
    wait(list(futures.values()))
    deliver_after(config_path)
    states = {name: future.state for name, future in futures.items()}
    results = [f.result() for name, f in futures.items() if states[name].is_completed()]
    publish(results)
    problems = reconcile_problems(results, task_errors(states))
    return finish(results, problems, fail_on or config.fail_on)
