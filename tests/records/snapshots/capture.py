"""Write the DDL a pipewarden release runs on a new warehouse: the snapshot of its tables.

Run with the release's code on an empty database of each warehouse engine, for example
`python tests/records/snapshots/capture.py sqlite:////tmp/empty.sqlite sqlite-release-X.sql`;
`release-0.1.0` was captured at commit 2e2659c (where `ensure_tables` was `records.tables`').
"""

import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipewarden.db.engines import make_engine
from pipewarden.records.migrate import ensure_tables


def capture(url: str) -> list[str]:
    engine = make_engine(url)
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def keep(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("CREATE", "ALTER")):
            statements.append(statement.strip())

    ensure_tables(engine)
    engine.dispose()
    return statements


if __name__ == "__main__":
    url, name = sys.argv[1:3]
    text = "".join(f"{statement};\n\n" for statement in capture(url))
    (Path(__file__).parent / name).write_text(text)
