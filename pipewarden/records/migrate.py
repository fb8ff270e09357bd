"""Bringing pipewarden's own tables in a warehouse to this release: on first use, or by
`pipewarden upgrade`.

`ensure_tables` runs before every warehouse run; at the head it costs one read of the version
row and imports no Alembic. Otherwise `upgrade` takes the warehouse's upgrade lock (the run
lock of the dialect, under its own name), reads the version again (another process may have
done the work meanwhile) and, in one transaction: on a new warehouse creates every table as
this release declares them and records the head; on one that is behind runs the revisions in
`records/migrations/versions/` (the first adopts the tables of releases before migrations).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

from pipewarden.config.urls import display_url
from pipewarden.db.engines import connect
from pipewarden.dialects import dialect_for
from pipewarden.records.migrations import HEAD, stored_version

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

#: How long an upgrade waits for another process's upgrade of the same warehouse.
UPGRADE_WAIT_SECONDS = 300.0
_UPGRADE_LOCK = "pipewarden:upgrade"

log = logging.getLogger(__name__)
_current: set[str] = set()
_lock = threading.Lock()


class UpgradeFailed(RuntimeError):
    """The warehouse's pipewarden tables could not be brought to this release; says why."""


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade found and did."""

    before: str | None  #: the warehouse's revision before (None: no version table)
    after: str
    action: Literal["current", "created", "upgraded"]
    applied: list[tuple[str, str]] = field(default_factory=list)  #: (revision, what it does)

    def describe(self) -> str:
        if self.action == "current":
            return f"pipewarden's tables are at revision {self.after} (head): nothing to do"
        if self.action == "created":
            return f"created pipewarden's tables at revision {self.after} (head)"
        start = f"revision {self.before}" if self.before else "a release before migrations"
        steps = "; ".join(f"{revision} ({doc.rstrip('.')})" for revision, doc in self.applied)
        return f"upgraded pipewarden's tables from {start} to {self.after} (head), ran {steps}"


def ensure_tables(engine: sa.Engine) -> None:
    """Make pipewarden's tables current in this warehouse: a version check after the first
    call per process; the upgrade (and Alembic) only when the warehouse is behind."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _current:
            return
        with connect(engine) as conn, conn.begin():
            at_head = stored_version(conn) == HEAD
        if not at_head:
            upgrade(engine)
        _current.add(key)


def upgrade(
    engine: sa.Engine,
    wait: float = UPGRADE_WAIT_SECONDS,
    on_wait: Callable[[], None] | None = None,
    extra_versions: Sequence[str | Path] = (),
) -> Upgrade:
    """Bring the warehouse's pipewarden tables to the head, one process at a time: `on_wait`
    is called once if another process is upgrading it. `extra_versions`: folders of further
    revisions (a test's own)."""
    from pipewarden.records.migrations import runner

    script = runner.script_directory(extra_versions)
    dialect = dialect_for(engine.dialect.name)
    where = display_url(engine.url)
    with (
        connect(engine) as conn,
        dialect.run_lock(conn, _UPGRADE_LOCK, wait, on_wait or _log_wait(where, wait)) as held,
    ):
        if not held:
            raise UpgradeFailed(
                f"{where}: another process kept the upgrade lock of pipewarden's tables "
                f"for {wait:g} s; nothing was changed (try again when it has finished)"
            )
        with conn.begin():
            dialect.lock_for_write(conn)
            return _upgrade_locked(conn, script, where)


def _upgrade_locked(conn: sa.Connection, script: ScriptDirectory, where: str) -> Upgrade:
    from pipewarden.records.all_tables import metadata
    from pipewarden.records.migrations import runner
    from pipewarden.records.migrations.layout import read_layout

    head = str(script.get_current_head())
    before = _single(runner.current_heads(conn), where)
    if before == head:
        return Upgrade(before, head, "current")
    if before is not None and not runner.known(script, before):
        raise UpgradeFailed(
            f"{where}: pipewarden's tables are at revision {before}, which this pipewarden "
            f"does not know (its newest is {head}): a newer release upgraded them; run that "
            "release or a later one"
        )
    if before is None and not read_layout(conn, metadata.tables):
        metadata.create_all(conn)
        return Upgrade(None, runner.stamp_head(conn, script), "created")
    applied = runner.upgrade(conn, script)
    return Upgrade(before, head, "upgraded", [(s.revision, s.doc) for s in applied])


def upgrade_sql(engine: sa.Engine, extra_versions: Sequence[str | Path] = ()) -> str:
    """The SQL `upgrade` would run on this warehouse now, changing nothing (`upgrade --sql`)."""
    from pipewarden.records.all_tables import metadata
    from pipewarden.records.migrations import runner
    from pipewarden.records.migrations.layout import read_layout

    script = runner.script_directory(extra_versions)
    where = display_url(engine.url)
    with connect(engine) as conn, conn.begin():
        before = _single(runner.current_heads(conn), where)
        present = read_layout(conn, metadata.tables)
    if before == str(script.get_current_head()):
        return ""
    if before is None and not present:
        return runner.create_sql(engine.url, metadata, script)
    return runner.upgrade_sql(engine.url, script, before, present)


def _log_wait(where: str, wait: float) -> Callable[[], None]:
    return lambda: log.warning(
        "%s: another process is upgrading pipewarden's tables; waiting up to %g s for it",
        where,
        wait,
    )


def _single(heads: tuple[str, ...], where: str) -> str | None:
    if len(heads) > 1:
        raise UpgradeFailed(
            f"{where}: pipewarden's version table holds several revisions ({', '.join(heads)})"
        )
    return heads[0] if heads else None
