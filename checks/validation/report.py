"""One run's check failures where people look: the CLI summary and a Prefect table artifact.

Failures are grouped by column and check, with the number of rows and up to three examples, each
cut short: a failing value can be a whole JSON document, and it must not flood a terminal, an
artifact or a Slack message.
"""

import re
from typing import Any

import sqlalchemy as sa

from pipewarden.records.quarantine import failures_of_run

#: Characters of an example shown in a summary (values are stored cut at 120).
EXAMPLE_CHARS = 40


def _short(value: Any, limit: int = EXAMPLE_CHARS) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_summary(engine: sa.Engine, run_id: str) -> list[dict[str, Any]]:
    """`[{table, column, check, failures, examples}]` for one run, most failures first."""
    with engine.connect() as conn:
        groups = failures_of_run(conn, run_id)
    return [{**g, "examples": [_short(e) for e in g["examples"][:3]]} for g in groups]


def failure_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Plain lines for a terminal: `orders.currency iso_currency: 12 rows (e.g. 'eur', 'XYZ')`."""
    return [
        f"{r['table']}.{r['column']} {r['check']}: {r['failures']} row"
        f"{'' if r['failures'] == 1 else 's'} (e.g. {', '.join(repr(e) for e in r['examples'])})"
        for r in rows
    ]


def artifact_key(table_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", table_name.lower()).strip("-") or "table"
    return f"check-failures-{slug}"


def publish_failure_artifact(rows: list[dict[str, Any]], table_name: str) -> str | None:
    """Publish the summary as a table artifact of the current flow run; None outside a run."""
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    from prefect.artifacts import create_table_artifact

    table = [
        {
            "column": r["column"],
            "check": r["check"],
            "failures": r["failures"],
            "examples": ", ".join(r["examples"]),
        }
        for r in rows
    ]
    total = sum(r["failures"] for r in rows)
    description = (
        f"{table_name}: {total} failing value(s) held in quarantine"
        if rows
        else f"{table_name}: every row passed its checks"
    )
    artifact_id = create_table_artifact(
        table=table or [{"column": "", "check": "", "failures": 0, "examples": ""}],
        key=artifact_key(table_name),
        description=description,
    )
    return str(artifact_id)
