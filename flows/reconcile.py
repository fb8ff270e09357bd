"""The reconciliation deployments: the nightly run and the manual rerun from the Prefect UI.

The flow only wires: the work is `reconcile.run.reconcile_table`, the result is published as a
table artifact (one row per difference, capped) so the Prefect UI shows what was found, and the
alerts it raised are delivered.
"""

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.futures import wait

from flows.alerts import deliver_after
from pipewarden.config import load_config

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
    from reconcile.run import ReconcileOptions, reconcile_table

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
    report = reconcile_table(load_config(config_path), table, options)
    return {**report.as_dict(), "clean": report.clean}


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
) -> dict[str, Any]:
    """Reconcile one table (a dry run unless `repair`), and publish what was found."""
    try:
        result = reconcile_task(
            table, repair, key_range, columns, keys_only, max_seconds, max_diffs, config_path
        )
    finally:
        deliver_after(config_path)
    create_table_artifact(
        key=artifact_key(table),
        table=artifact_rows(result),
        description=summary(result),
    )
    get_run_logger().info(summary(result))
    return result


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
) -> list[dict[str, Any]]:
    """The nightly run: every configured table (or the named ones), one task each."""
    names = tables or list(load_config(config_path).tables)
    futures = [
        reconcile_task.submit(name, repair, None, None, keys_only, max_seconds, None, config_path)
        for name in names
    ]
    wait(futures)
    deliver_after(config_path)
    results = [future.result() for future in futures]
    for result in results:
        create_table_artifact(
            key=artifact_key(result["table"]),
            table=artifact_rows(result),
            description=summary(result),
        )
        get_run_logger().info(summary(result))
    return results
