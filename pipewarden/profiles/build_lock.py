"""One build of a profile table at a time: the run lock the syncs take, under its own name.

Two builds at once would both create the staged table, or write the same rows, and the loser
would fail with the database's duplicate-key error. A second build waits for the first up to
`timeouts.run_lock`, then gives up with a message saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.dialects import dialect_for

log = logging.getLogger(__name__)


class BuildLocked(Exception):
    """Another build of the profile table kept its lock for longer than `timeouts.run_lock`."""


@contextmanager
def build_lock(engine: sa.Engine, config: PipewardenConfig, table: str) -> Iterator[None]:
    """Hold the lock on building `table` for the `with` block, or raise `BuildLocked`."""
    wait = config.timeouts.run_lock.total_seconds()
    name = f"profiles:{config.warehouse.schema_name or ''}.{table}"
    waiting = (
        f"profiles: another build of profile table {table!r} is running; waiting up to "
        f"{wait:g} s for it to finish (timeouts.run_lock)"
    )
    with engine.connect() as conn:
        dialect = dialect_for(conn.dialect.name)
        with dialect.run_lock(conn, name, wait, lambda: log.warning(waiting)) as held:
            if not held:
                raise BuildLocked(
                    f"profiles: another build of profile table {table!r} is running; gave up "
                    f"after waiting {wait:g} s for it to finish (timeouts.run_lock). Nothing "
                    "was built by this run."
                )
            yield
