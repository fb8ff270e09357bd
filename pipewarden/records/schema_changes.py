"""Schema drift as it was noticed: columns that appeared in a source, and their backfills."""

import json
from dataclasses import asdict
from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.dialects.kinds import ColumnKind
from pipewarden.records.tables import schema_changes


def record_added_columns(
    conn: sa.Connection,
    table_name: str,
    run_id: str,
    names: list[str],
    kinds: dict[str, ColumnKind],
) -> None:
    now = datetime.now(UTC)
    conn.execute(
        schema_changes.insert(),
        [
            {
                "table_name": table_name,
                "run_id": run_id,
                "column_name": n,
                "change": "added",
                "detail": json.dumps(asdict(kinds[n])),
                "detected_at": now,
            }
            for n in names
        ],
    )


def mark_backfilled(conn: sa.Connection, table_name: str, names: list[str]) -> None:
    conn.execute(
        schema_changes.update()
        .where(
            schema_changes.c.table_name == table_name,
            schema_changes.c.column_name.in_(names),
            schema_changes.c.backfilled_at.is_(None),
        )
        .values(backfilled_at=datetime.now(UTC))
    )
