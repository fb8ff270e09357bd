"""Who owns each table, as the configuration said at the latest check run.

One row per table (or stream): the configured owner as text and its display name, so the
dashboards can filter and label by owner with a join on `table_name` instead of carrying the
owner on every metric and result row. A check run refreshes the rows of the tables it checked
in its own transaction; a row is written only where the owner changed, so a run with the same
configuration writes nothing, and `since` says from when the current owner holds.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pipewarden.dialects import dialect_for
from pipewarden.records.tables import metadata

table_owners = sa.Table(
    "pipewarden_table_owners",
    metadata,
    sa.Column("table_name", sa.String(200), primary_key=True),
    #: The configured owner as text; NULL when the table has none.
    sa.Column("owner", sa.String(500)),
    #: How people call that owner (config.owners.owner_name); NULL when the table has none.
    sa.Column("owner_name", sa.String(500)),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Owner:
    """A table's owner: the configured text and the name shown for it."""

    owner: str | None
    name: str | None


def record_owners(conn: sa.Connection, owners: Mapping[str, Owner], at: datetime) -> int:
    """Make the rows of these tables say these owners (in the caller's transaction); returns
    how many rows were written. A concurrent run's insert of the same table is waited for."""
    if not owners:
        return 0
    c = table_owners.c
    held = {
        row.table_name: Owner(row.owner, row.owner_name)
        for row in conn.execute(
            sa.select(c.table_name, c.owner, c.owner_name).where(c.table_name.in_(list(owners)))
        )
    }
    new = [
        {"table_name": name, "owner": o.owner, "owner_name": o.name, "since": at}
        for name, o in owners.items()
        if name not in held
    ]
    if new:
        conn.execute(
            dialect_for(conn.dialect.name).insert_or_skip(table_owners, [c.table_name]), new
        )
    changed = [name for name, o in owners.items() if name in held and held[name] != o]
    for name in changed:
        o = owners[name]
        conn.execute(
            table_owners.update()
            .where(c.table_name == name)
            .values(owner=o.owner, owner_name=o.name, since=at)
        )
    return len(new) + len(changed)


def owners_of(conn: sa.Connection) -> dict[str, Owner]:
    """Every recorded table's owner."""
    c = table_owners.c
    return {
        row.table_name: Owner(row.owner, row.owner_name)
        for row in conn.execute(sa.select(c.table_name, c.owner, c.owner_name))
    }
