"""SQLite's statement timeout: with no server to end a statement, each connection looks at a
deadline from SQLite's progress handler and interrupts the statement past it.

The deadline is set when SQLAlchemy sends a statement and lasts until the next one or until the
connection goes back to the pool, so fetching a statement's rows (SQLite works as rows are
fetched) counts too. Waiting for the write lock runs no instruction: `timeouts.lock` bounds it.
"""

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

#: SQLite virtual-machine instructions between two looks at the clock: a look is a Python call,
#: and a million instructions take a few milliseconds.
STEPS_BETWEEN_LOOKS = 100_000
#: The key of the running statement's deadline (`time.monotonic()`) in the pool record's info.
_DEADLINE = "pipewarden_statement_deadline"
#: What sqlite3 says of a statement its progress handler ended.
INTERRUPTED = "interrupted"


def limit_statements(engine: sa.Engine, seconds: float) -> None:
    """Interrupt any statement of `engine` still running `seconds` after it was sent."""

    def watch(dbapi_connection: Any, record: Any) -> None:
        info = record.info

        def past_deadline() -> int:
            deadline = info.get(_DEADLINE)
            return int(deadline is not None and time.monotonic() > deadline)

        dbapi_connection.set_progress_handler(past_deadline, STEPS_BETWEEN_LOOKS)

    def start(conn: sa.Connection, *_: Any) -> None:
        conn.info[_DEADLINE] = time.monotonic() + seconds

    def done(dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_DEADLINE, None)

    event.listen(engine, "connect", watch)
    event.listen(engine, "before_cursor_execute", start)
    event.listen(engine, "checkin", done)
