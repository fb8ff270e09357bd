"""Alembic revisions of pipewarden's own tables, run without an alembic.ini (`runner`).

The revisions live in `versions/`, one file each, in a line from `0001` (the tables of release
0.1.0, which adopts a warehouse an earlier pipewarden created without a version table). Adding
a column or a table to a record module means adding a revision here that makes the same change,
and setting `HEAD` to its id: `ensure_tables` compares the warehouse's version row with `HEAD`
alone, so a run at head never imports Alembic. Write ALTERs inside `op.batch_alter_table(…)`:
SQLite alters a table by copying it, and batch mode does that; PostgreSQL alters in place.

This module imports no Alembic: what every run needs is here, the rest in `runner`.
"""

import sqlalchemy as sa

#: The newest revision in `versions/` (a test holds it equal to Alembic's own head).
HEAD = "0005"

#: pipewarden's version table, so a user's own `alembic_version` in the schema is left alone.
VERSION_TABLE = "pipewarden_alembic_version"


def stored_version(conn: sa.Connection) -> str | None:
    """The warehouse's revision of pipewarden's tables; None where no version table exists."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    version = sa.column("version_num", sa.String)
    query = sa.select(version).select_from(sa.table(VERSION_TABLE))
    versions = list(conn.execute(query).scalars())
    return versions[0] if len(versions) == 1 else None
