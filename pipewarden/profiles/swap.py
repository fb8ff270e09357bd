"""A full build's rows go into a fresh table, indexed after its rows, that replaces the old one.

Filling a table without indexes and building each index once after (a sort) costs a fraction
of keeping four indexes row by row, and leaves no dead copy of every old row behind as a
delete and re-insert does. The swap happens in the build's transaction: readers see the old
table until it commits; from the drop of the old table to the commit (the index builds, the
checks) they wait for the lock. Grants and views on the profile table do not carry over to
the new one (a view on it makes the drop fail: the build fails, the old table stays).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pipewarden.dialects import dialect_of
from pipewarden.profiles.tables import profile_indexes


def staged_table(profiles: sa.Table, late_primary_key: bool) -> sa.Table:
    """An empty copy of `profiles` under another name, without its indexes; without its
    primary key too where the engine can add one later."""
    columns = []
    for column in profiles.columns:
        copy = column._copy()
        if late_primary_key:
            copy.primary_key = False
            copy.nullable = column.nullable and not column.primary_key
        columns.append(copy)
    name = f"{profiles.name}_next"[:63]
    return sa.Table(name, sa.MetaData(schema=profiles.schema), *columns)


def fill_and_swap(conn: sa.Connection, profiles: sa.Table, rows: sa.Select[Any]) -> None:
    """Insert `rows` into a fresh table and put it in `profiles`' place, indexed."""
    late = dialect_of(conn).late_primary_key
    staged = staged_table(profiles, late)
    staged.drop(conn, checkfirst=True)  # none unless an earlier build died between statements
    staged.create(conn)
    conn.execute(sa.insert(staged).from_select(list(rows.selected_columns.keys()), rows))
    quote = conn.dialect.identifier_preparer
    profiles.drop(conn, checkfirst=True)
    conn.execute(
        sa.text(f"ALTER TABLE {quote.format_table(staged)} RENAME TO {quote.quote(profiles.name)}")
    )
    if late:
        keys = ", ".join(quote.quote(c.name) for c in profiles.primary_key.columns)
        conn.execute(
            sa.text(f"ALTER TABLE {quote.format_table(profiles)} ADD PRIMARY KEY ({keys})")
        )
    for index in profile_indexes(profiles):
        index.create(conn)
