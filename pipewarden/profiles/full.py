"""A full build's rows: every customer's aggregates computed once, then counted, ranked, scored.

The orders grouped by customer id are joined with the customers both ways into a temporary
table, so one pass over the orders gives every customer's row and, on the rows of ids that
name no customer, the orders credited to no one (counted from about a million groups instead
of an anti-join over every order). The cuts are ranked off that table one measure at a time,
and the rows go into the profile table scored by them: the scores a ranking of every customer
gives, with the cuts an incremental build moves. (The join both ways is a FULL JOIN; where the
database has none, SQLite before 3.39, the rows come from a LEFT JOIN without counts and the
caller counts the orders naming no customer apart.)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pipewarden.config import ProfilesConfig
from pipewarden.profiles.quantiles import Cuts, ranked_cuts
from pipewarden.profiles.rewrite import scores_by
from pipewarden.profiles.swap import fill_and_swap

#: The column of the orders per customer id, beside the profile's own.
ORDER_COUNT = "order_count"


def _rows_table(profiles: sa.Table, names: list[str]) -> sa.Table:
    """A temporary table for `names` of the profile's columns, the key nullable (the rows of
    ids no customer has), with the order count."""
    columns = []
    for name in names:
        if name == ORDER_COUNT:
            columns.append(sa.Column(ORDER_COUNT, sa.BigInteger))
            continue
        copy = profiles.c[name]._copy()
        copy.primary_key, copy.nullable = False, True
        columns.append(copy)
    name = f"pw_rows_{profiles.name}"[:60]
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])


def build_full(
    conn: sa.Connection, spec: ProfilesConfig, profiles: sa.Table, rows: sa.Select[Any]
) -> tuple[Cuts, int]:
    """Fill `profiles` from `rows` (every customer joined both ways with the orders grouped by
    customer id, with their count); returns the cuts it was scored by and the orders whose id
    names no customer (0 when `rows` has no count)."""
    names = list(rows.selected_columns.keys())
    staged = _rows_table(profiles, names)
    staged.create(conn)
    conn.execute(sa.insert(staged).from_select(names, rows))
    # Its values counted, the planner ranks a measure of a million distinct values by sorting
    # them rather than hashing (and spilling) first.
    conn.execute(sa.text("ANALYZE " + conn.dialect.identifier_preparer.format_table(staged)))
    # A row from the orders' side alone: no key, and its orders counted. A customer has no
    # order count (no orders) or its own, and is a profile even with a NULL key (refused by
    # the profile's key, as any build refuses it).
    no_customer: sa.ColumnElement[bool] = sa.false()
    unknown: Any = 0
    if ORDER_COUNT in staged.c:
        no_customer = sa.and_(staged.c.customer_id.is_(None), staged.c[ORDER_COUNT].is_not(None))
        unknown = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(staged.c[ORDER_COUNT]), 0)).where(no_customer)
        )
    customers = sa.select(*(c for c in staged.c if c.name != ORDER_COUNT)).where(~no_customer)
    known = customers.subquery("known")
    cuts = ranked_cuts(conn, known, spec.scores)
    scores = scores_by(spec, dict(known.c.items()), cuts)
    fill_and_swap(
        conn,
        profiles,
        sa.select(*known.c, *(value.label(name) for name, value in scores.items())),
    )
    staged.drop(conn)
    return cuts, int(unknown or 0)
