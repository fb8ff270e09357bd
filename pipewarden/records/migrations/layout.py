"""What of pipewarden's tables a warehouse holds: the tables, their columns and indexes by name.

A revision that adopts tables an earlier release created reads this; so does `upgrade --sql`,
which hands it to the revision because a script written offline cannot look.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class TableLayout:
    columns: frozenset[str]
    indexes: frozenset[str]


def read_layout(conn: sa.Connection, names: Iterable[str]) -> dict[str, TableLayout]:
    """The tables of `names` that exist, with their column and index names."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    wanted = [name for name in names if name in present]
    if not wanted:
        return {}
    columns = inspector.get_multi_columns(filter_names=wanted)
    indexes = inspector.get_multi_indexes(filter_names=wanted)
    return {
        name: TableLayout(
            frozenset(c["name"] for c in columns.get((None, name), [])),
            frozenset(str(i["name"]) for i in indexes.get((None, name), [])),
        )
        for name in wanted
    }
