"""An incremental build's writes: only the rows whose values changed, each written once.

The touched customers' new rows are computed into a temporary table, scored by the previous
build's cuts; the profile table then gets an update for each row that differs, an insert for
each new customer and a delete for each one gone. Once the cuts have moved, a value between a
cut's old and new place is the only one whose score the move changes (a score is 1 + the cuts
below the value), so rescoring those rows, and writing only the ones whose scores or segment
differ, leaves every row as a full build scores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from pipewarden.config import ProfilesConfig
from pipewarden.profiles.quantiles import MEASURES, Cuts, moved_between, score_expression, scored
from pipewarden.profiles.rules import segment_expression

#: The columns a build computes; the rest of a profile row is its key.
SCORES = ("r", "f", "m", "segment")


def scores_by(
    spec: ProfilesConfig, columns: Mapping[str, sa.ColumnElement[Any]], cuts: Cuts | None
) -> dict[str, sa.ColumnElement[Any]]:
    """R, F, M and the segment of a row with these `columns`, from `cuts`; none for a customer
    who never bought (the default segment), and no scores at all without cuts."""
    if cuts is None:
        return {name: sa.null() for name in SCORES}
    buyer = columns["last_order_at"].is_not(None)
    values: dict[str, sa.ColumnElement[Any]] = {
        score: score_expression(columns[measure], cuts.cuts[score])
        for score, measure in MEASURES.items()
    }
    segment = segment_expression(spec.segments, spec.default_segment, {**columns, **values})
    return {
        **{score: sa.case((buyer, value)) for score, value in values.items()},
        "segment": sa.case((buyer, segment), else_=sa.literal(spec.default_segment)),
    }


def fresh_table(profiles: sa.Table) -> sa.Table:
    """A temporary table shaped as the profile table, for the touched customers' new rows."""
    columns = [column._copy() for column in profiles.columns]
    name = f"pw_fresh_{profiles.name}"[:60]
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])


def fill_fresh(
    conn: sa.Connection,
    spec: ProfilesConfig,
    fresh: sa.Table,
    rows: sa.Select[Any],
    cuts: Cuts | None,
) -> None:
    """The touched customers' rows, scored by the previous build's `cuts`."""
    agg = rows.subquery("agg")
    columns = dict(agg.c.items())
    scores = scores_by(spec, columns, cuts)
    query = sa.select(*agg.c, *(value.label(name) for name, value in scores.items()))
    conn.execute(sa.insert(fresh).from_select(list(query.selected_columns.keys()), query))
    quote = conn.dialect.identifier_preparer
    conn.execute(sa.text("ANALYZE " + quote.format_table(fresh)))


def write_changed(
    conn: sa.Connection, p: sa.Table, fresh: sa.Table, keys: sa.Select[Any]
) -> list[str]:
    """Update the rows that differ from `fresh`, insert the new ones, delete the touched
    customers (`keys`) it has no row for; returns the keys written."""
    same_key = p.c.customer_id == fresh.c.customer_id
    values = [c.name for c in p.columns if c.name != "customer_id"]
    differs = sa.or_(*(p.c[name].is_distinct_from(fresh.c[name]) for name in values))
    written: list[str] = list(
        conn.execute(
            sa.update(p)
            .where(same_key, differs)
            .values({name: fresh.c[name] for name in values})
            .returning(p.c.customer_id)
        ).scalars()
    )
    new = sa.select(fresh).where(~sa.exists().where(same_key))
    written += conn.execute(
        sa.insert(p).from_select([c.name for c in fresh.columns], new).returning(p.c.customer_id)
    ).scalars()
    # The touched keys without a fresh row, found among the temporary tables' few rows (not by
    # looking every touched customer up in the profile table).
    key = keys.selected_columns[0]
    gone = keys.where(~sa.exists().where(fresh.c.customer_id == key))
    written += conn.execute(
        sa.delete(p).where(p.c.customer_id.in_(gone)).returning(p.c.customer_id)
    ).scalars()
    return written


def rescore_moved(
    conn: sa.Connection, spec: ProfilesConfig, p: sa.Table, old: Cuts, new: Cuts
) -> list[str]:
    """Rescore the customers whose value lies between a cut's old and new place, writing those
    whose scores or segment changed; returns their keys."""
    ranges = [
        condition
        for score, measure in MEASURES.items()
        for condition in moved_between(p.c[measure], old.cuts[score], new.cuts[score])
    ]
    if not ranges:
        return []
    values = scores_by(spec, dict(p.c.items()), new)
    changed = sa.or_(*(p.c[name].is_distinct_from(value) for name, value in values.items()))
    return list(
        conn.execute(
            sa.update(p)
            .where(scored(p), sa.or_(*ranges), changed)
            .values(values)
            .returning(p.c.customer_id)
        ).scalars()
    )
