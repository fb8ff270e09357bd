"""A full build's rows go into a fresh table, indexed after its rows, that replaces the old one.

Filling a table without indexes and building each index once after (a sort) costs a fraction
of keeping four indexes row by row, and leaves no dead copy of every old row behind as a
delete and re-insert does. The swap happens in the build's transaction: readers see the old
table until it commits; from the drop of the old table to the commit (the index builds, the
checks) they wait for the lock. The privileges others held on the old table are granted on
the new one. A table that views read is not replaced (it cannot be dropped under them): it is
emptied and refilled in place, with its indexes, as before the swap.
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
    return sa.Table(name, sa.MetaData(schema=profiles.schema), *columns, **profiles.dialect_kwargs)


def fill_and_swap(conn: sa.Connection, profiles: sa.Table, rows: sa.Select[Any]) -> None:
    """Insert `rows` into a fresh table and put it in `profiles`' place, indexed, with the
    privileges others held on the old one. Where views read the table it is rewritten in place
    instead (slower, but the views and the grants stay as they are)."""
    dialect = dialect_of(conn)
    names = list(rows.selected_columns.keys())
    if dialect.views_reading(conn, profiles):
        conn.execute(sa.delete(profiles))
        conn.execute(sa.insert(profiles).from_select(names, rows))
        return
    grants = dialect.table_grants(conn, profiles)
    late = dialect.late_primary_key
    staged = staged_table(profiles, late)
    staged.drop(conn, checkfirst=True)  # none unless an earlier build died between statements
    staged.create(conn)
    conn.execute(sa.insert(staged).from_select(names, rows))
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
    dialect.grant(conn, profiles, grants)
