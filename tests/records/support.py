"""Warehouses as an earlier release left them, built from the DDL snapshots in `snapshots/`,
and what a warehouse's pipewarden tables look like, for comparing one with another."""

from pathlib import Path
from typing import Any

import sqlalchemy as sa

SNAPSHOTS = Path(__file__).parent / "snapshots"
#: The release users have, and the same before `add_missing_columns` added `flow_run_id` to
#: three tables (commit 9da3a24): its DDL, captured too, differed by exactly those columns.
RELEASES = ["release-0.1.0", "before-flow-run-id"]


def build_from_snapshot(url: str, kind: str, release: str) -> None:
    """Run the snapshot's statements on an empty database, as that release's first run did."""
    lines = (SNAPSHOTS / f"{kind}-release-0.1.0.sql").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.startswith("--"))
    statements = [s for s in text.split(";\n") if s.strip()]
    if release == "before-flow-run-id":
        statements = [_without_flow_run_id(s) for s in statements]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _without_flow_run_id(statement: str) -> str:
    tables = ("pipewarden_sync_runs", "pipewarden_check_results", "pipewarden_reconcile_runs")
    if not statement.strip().startswith(tuple(f"CREATE TABLE {t} " for t in tables)):
        return statement
    lines = statement.splitlines()
    return "\n".join(line for line in lines if not line.strip().startswith("flow_run_id "))


#: A few rows in tables of every kind (a key of its own, a serial id, a partial unique index),
#: written as that release would; timestamps as text, which both engines read as their type.
ROWS: dict[str, dict[str, Any]] = {
    "pipewarden_watermarks": {
        "table_name": "orders",
        "cursor_value": '"2026-03-01T10:00:00"',
        "run_id": "r1",
        "updated_at": "2026-03-01 10:00:00",
    },
    "pipewarden_sync_runs": {
        "run_id": "r1",
        "table_name": "orders",
        "started_at": "2026-03-01 09:59:00",
        "status": "success",
        "full_refresh": False,
        "rows_read": 5,
        "rows_loaded": 5,
        "rows_unchanged": 0,
        "rows_quarantined": 1,
        "batches": 1,
    },
    "pipewarden_incidents": {
        "table_name": "orders",
        "check": "freshness",
        "status": "warn",
        "severity": 1,
        "opened_at": "2026-03-01 10:00:00",
        "last_seen_at": "2026-03-01 10:05:00",
        "occurrences": 2,
    },
    "pipewarden_quarantine": {
        "table_name": "orders",
        "run_id": "r1",
        "primary_key": "[3]",
        "row_json": '{"id": 3}',
        "reasons": "[]",
        "checks": ",amount_positive,",
        "status": "held",
        "quarantined_at": "2026-03-01 10:00:00",
    },
}
_TIMES = ("updated_at", "started_at", "opened_at", "last_seen_at", "quarantined_at")


def add_rows(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, row in ROWS.items():
            conn.execute(sa.table(name, *map(sa.column, row)).insert().values(**row))
    engine.dispose()


def kept_rows(url: str) -> dict[str, dict[str, Any]]:
    """The rows of `ROWS` as the warehouse holds them now (times left out: their form is the
    driver's); equal to `expected_rows()` when nothing was lost."""
    engine = sa.create_engine(url)
    found = {}
    with engine.connect() as conn:
        for name, row in expected_rows().items():
            table = sa.table(name, *map(sa.column, row))
            [found[name]] = [dict(r._mapping) for r in conn.execute(sa.select(table))]
    engine.dispose()
    return found


def expected_rows() -> dict[str, dict[str, Any]]:
    return {name: {k: v for k, v in row.items() if k not in _TIMES} for name, row in ROWS.items()}


def describe(url: str) -> dict[str, Any]:
    """pipewarden's tables as the database reports them: each column's type (as this engine
    writes it), nullability and default; primary keys; indexes with columns, uniqueness and
    condition. Everything a fresh install and an upgraded warehouse must agree on."""
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    names = sorted(n for n in inspector.get_table_names() if n.startswith("pipewarden_"))
    described: dict[str, Any] = {}
    for name in names:
        columns = {
            c["name"]: (
                c["type"].compile(dialect=engine.dialect),
                c["nullable"],
                c.get("default"),
            )
            for c in inspector.get_columns(name)
        }
        indexes = {
            i["name"]: (
                tuple(i["column_names"]),
                bool(i["unique"]),
                {k: str(v) for k, v in i.get("dialect_options", {}).items()},
            )
            for i in inspector.get_indexes(name)
        }
        primary_key = tuple(inspector.get_pk_constraint(name)["constrained_columns"])
        described[name] = {"columns": columns, "indexes": indexes, "primary_key": primary_key}
    engine.dispose()
    return described
