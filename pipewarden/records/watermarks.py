"""The watermark: how far a table has been copied. Written in the load's own transaction."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.records.tables import watermarks
from pipewarden.records.values import dumps, dumps_key, loads, loads_key


@dataclass(frozen=True)
class Watermark:
    """The last `(cursor, key)` position loaded, and the run that moved it there."""

    table_name: str
    cursor: Any
    key: tuple[Any, ...] | None
    run_id: str
    updated_at: datetime

    def describe(self) -> str:
        return "none" if self.cursor is None else f"{self.cursor}"


def read_watermark(conn: sa.Connection, table_name: str) -> Watermark | None:
    row = conn.execute(sa.select(watermarks).where(watermarks.c.table_name == table_name)).first()
    if row is None:
        return None
    return Watermark(
        table_name=row.table_name,
        cursor=loads(row.cursor_value),
        key=loads_key(row.key_value),
        run_id=row.run_id,
        updated_at=row.updated_at,
    )


def write_watermark(
    conn: sa.Connection, table_name: str, cursor: Any, key: tuple[Any, ...] | None, run_id: str
) -> None:
    """Move the watermark; the caller's transaction makes it atomic with the rows it covers."""
    values = {
        "cursor_value": dumps(cursor),
        "key_value": None if key is None else dumps_key(key),
        "run_id": run_id,
        "updated_at": datetime.now(UTC),
    }
    updated = conn.execute(
        watermarks.update().where(watermarks.c.table_name == table_name).values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(watermarks.insert().values(table_name=table_name, **values))
