"""Alembic driven from code: the revisions in `versions/` on one connection, or as a script.

No alembic.ini and no env.py: the package's folders are handed to Alembic's ScriptDirectory,
and EnvironmentContext is configured here, so a wheel install runs them as a clone does.
The caller holds the transaction (and the upgrade lock): Alembic runs inside it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from pipewarden.records.migrations import VERSION_TABLE
from pipewarden.records.migrations.layout import TableLayout

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Step:
    """A revision applied: its id and the first line of its docstring."""

    revision: str
    doc: str


def script_directory(extra_locations: Sequence[str | Path] = ()) -> ScriptDirectory:
    """pipewarden's revisions; `extra_locations` adds folders of more (a test's own)."""
    locations = [str(HERE / "versions"), *map(str, extra_locations)]
    return ScriptDirectory(str(HERE), version_locations=locations)


def current_heads(conn: sa.Connection) -> tuple[str, ...]:
    """The revisions the warehouse's version table holds (none without one)."""
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_heads()


def known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def stamp_head(conn: sa.Connection, script: ScriptDirectory) -> str:
    """Record the head as the warehouse's revision (its tables were just made as head has them)."""
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    context.stamp(script, "head")
    return str(script.get_current_head())


def upgrade(conn: sa.Connection, script: ScriptDirectory) -> list[Step]:
    """Run every revision from the warehouse's to the head on `conn`; returns those it ran."""
    applied: list[Step] = []

    def note(*, step: MigrationInfo, **_: Any) -> None:
        applied.append(_step(script, step.up_revision_id))

    _run(script, {"connection": conn, "on_version_apply": note})
    return applied


def create_sql(url: sa.URL, metadata: sa.MetaData, script: ScriptDirectory) -> str:
    """The SQL that creates a new warehouse's tables as `metadata` declares them and records
    the head, in one transaction: what `upgrade` runs on a warehouse without pipewarden tables."""
    output = io.StringIO()

    def create_tables(environment: EnvironmentContext) -> None:
        for table in metadata.sorted_tables:
            environment.execute(sa.schema.CreateTable(table))
            for index in table.indexes:
                environment.execute(sa.schema.CreateIndex(index))

    _run(
        script,
        {"url": url, "output_buffer": output, "transactional_ddl": True},
        as_sql=True,
        to=script._stamp_revs,
        first=create_tables,
    )
    return output.getvalue()


def upgrade_sql(
    url: sa.URL,
    script: ScriptDirectory,
    starting: str | None,
    present: dict[str, TableLayout],
) -> str:
    """The SQL an upgrade from `starting` to the head runs, as a script in one transaction as
    `upgrade` runs it, SQLite too (`upgrade --sql`);
    `present` is what the warehouse holds, for a revision that adopts existing tables."""
    output = io.StringIO()
    _run(
        script,
        {"url": url, "output_buffer": output, "literal_binds": True, "transactional_ddl": True},
        as_sql=True,
        starting=starting,
        attributes={"present_layout": present},
    )
    return output.getvalue()


def _run(
    script: ScriptDirectory,
    options: dict[str, Any],
    *,
    as_sql: bool = False,
    starting: str | None = None,
    attributes: dict[str, Any] | None = None,
    to: Callable[[str, Any], Any] | None = None,
    first: Callable[[EnvironmentContext], None] | None = None,
) -> None:
    """Run Alembic towards the head as `alembic upgrade` does (or `alembic stamp`: `to` is the
    script's stamp steps), with `options` for `EnvironmentContext.configure`; `first` runs
    statements of its own in the same transaction, before."""
    config = Config()
    config.attributes.update(attributes or {})
    towards = to or script._upgrade_revs

    def steps(revision: Any, context: MigrationContext) -> Any:
        return towards("head", revision)

    environment = EnvironmentContext(
        config,
        script,
        fn=steps,
        as_sql=as_sql,
        starting_rev=starting,
        destination_rev="head",
    )
    with environment:
        environment.configure(version_table=VERSION_TABLE, **options)
        with environment.begin_transaction():
            if first is not None:
                first(environment)
            environment.run_migrations()


def _step(script: ScriptDirectory, revision: str | None) -> Step:
    found = script.get_revision(revision) if revision else None
    doc = (found.doc or "").strip().splitlines() if found is not None else []
    return Step(revision or "", doc[0] if doc else "")
