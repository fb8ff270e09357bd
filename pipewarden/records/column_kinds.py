"""What each warehouse column holds, as pipewarden created it.

A warehouse may store a kind coarser than it is (SQLite keeps decimals and instants as text), so
reflection alone cannot tell a decimal column from a text one; this catalog can.
"""

import json
from dataclasses import asdict

import sqlalchemy as sa

from pipewarden.dialects.kinds import ColumnKind
from pipewarden.records.tables import column_kinds


def read_kinds(conn: sa.Connection, table_name: str) -> dict[str, ColumnKind]:
    rows = conn.execute(
        sa.select(column_kinds.c.column_name, column_kinds.c.kind).where(
            column_kinds.c.table_name == table_name
        )
    )
    return {str(name): ColumnKind(**json.loads(str(kind))) for name, kind in rows}


def write_kinds(conn: sa.Connection, table_name: str, kinds: dict[str, ColumnKind]) -> None:
    """Record (or replace) the kinds of the given columns."""
    if not kinds:
        return
    conn.execute(
        column_kinds.delete().where(
            column_kinds.c.table_name == table_name,
            column_kinds.c.column_name.in_(list(kinds)),
        )
    )
    conn.execute(
        column_kinds.insert(),
        [
            {"table_name": table_name, "column_name": n, "kind": json.dumps(asdict(k))}
            for n, k in kinds.items()
        ],
    )
