"""R, F and M scores from cuts kept between builds, so an incremental build reads what moved.

A score is ceil(q · cume_dist) over the scored customers (those who ever bought). With n of
them and K_s = floor(s·n/q), a customer scores at most s exactly when at most K_s scored values
are ≤ its own; so each s < q has a cut t_s with score(x) = 1 + #{s : x > t_s}. The cuts, each
with the count of scored values at or below it, and n are kept in `pipewarden_profile_cuts`
for the build that wrote them. An incremental build corrects the counts by the touched
customers' old and new values, moves each cut along the measure's index by the difference
(about as many index entries as customers changed, plus one tie group), and rescores the
touched customers and those whose value lies between a cut's old and new place: exactly the
customers whose score changed. A full build scores with window functions and reads the cuts
off the scores; an incremental build that finds no cuts of the previous build, or cuts of
other scores or segment rules (the configuration changed), scores everyone again.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

CUTS_TABLE = "pipewarden_profile_cuts"
#: score column -> the measure it ranks
MEASURES = {"r": "last_order_at", "f": "frequency", "m": "monetary"}


@dataclass(frozen=True)
class Cut:
    value: Any  # None: below every value
    count: int  # scored values at or below `value`


@dataclass
class Cuts:
    n: int
    #: score column -> cuts for s = 1 … q-1
    cuts: dict[str, list[Cut]]


@lru_cache(maxsize=16)
def cuts_table(schema: str | None) -> sa.Table:
    return sa.Table(
        CUTS_TABLE,
        sa.MetaData(schema=schema),
        sa.Column("profile_table", sa.String(200), primary_key=True),
        sa.Column("score", sa.String(1), primary_key=True),  # r, f, m; n for the count
        sa.Column("s", sa.Integer, primary_key=True),
        sa.Column("build_id", sa.Integer, nullable=False),
        sa.Column("cut", sa.Text),
        sa.Column("below", sa.BigInteger, nullable=False),
    )


def scored(p: sa.FromClause) -> sa.ColumnElement[bool]:
    return p.c.last_order_at.is_not(None)


def _decode(score: str, text: str | None) -> Any:
    if text is None:
        return None
    if score == "r":
        return datetime.fromisoformat(text)
    return int(text) if score == "f" else float(text)


def _encode(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def _bound(value: Any) -> Any:
    """A float monetary value bound as the exact decimal it was read from (numeric compares
    with numeric, and its index is used)."""
    return Decimal(repr(value)) if isinstance(value, float) else value


def _above(x: sa.ColumnElement[Any], cut: Any) -> sa.ColumnElement[bool]:
    return sa.true() if cut is None else x > _bound(cut)


def score_expression(x: sa.ColumnElement[Any], cuts: Sequence[Cut]) -> sa.ColumnElement[Any]:
    """1 + the number of cuts below x."""
    expression: sa.ColumnElement[Any] = sa.literal(1, sa.Integer)
    for cut in cuts:
        if cut.value is None:
            expression = expression + 1
        else:
            expression = expression + sa.case((x > _bound(cut.value), 1), else_=0)
    return expression


def read_cuts(
    conn: sa.Connection, schema: str | None, table: str, build_id: int, scoring: str
) -> Cuts | None:
    """The cuts written by build `build_id` for `scoring` (the scores and rules), or None
    (another build's, another scoring's, or none kept)."""
    c = cuts_table(schema)
    if not sa.inspect(conn).has_table(c.name, schema=schema):
        return None
    rows = conn.execute(
        sa.select(c.c.score, c.c.s, c.c.cut, c.c.below, c.c.build_id)
        .where(c.c.profile_table == table)
        .order_by(c.c.score, c.c.s)
    ).all()
    if not rows or any(row.build_id != build_id for row in rows):
        return None
    n, kept = next(((row.below, row.cut) for row in rows if row.score == "n"), (None, None))
    if n is None or kept != scoring:
        return None
    cuts: dict[str, list[Cut]] = {score: [] for score in MEASURES}
    for row in rows:
        if row.score in cuts:
            cuts[row.score].append(Cut(_decode(row.score, row.cut), int(row.below)))
    return Cuts(int(n), cuts)


def read_inputs(conn: sa.Connection, schema: str | None, table: str, build_id: int) -> str | None:
    """What build `build_id` read its profiles from (`write_cuts`' `inputs`), or None."""
    c = cuts_table(schema)
    if not sa.inspect(conn).has_table(c.name, schema=schema):
        return None
    mine = sa.and_(c.c.profile_table == table, c.c.build_id == build_id)
    query = sa.select(c.c.cut).where(mine, c.c.score == "n", c.c.s == 1)
    return conn.execute(query).scalar()


def write_cuts(
    conn: sa.Connection,
    schema: str | None,
    table: str,
    build_id: int,
    cuts: Cuts,
    scoring: str,
    inputs: str | None = None,
) -> None:
    """The build's cuts, its scoring (the `n` row) and, beside it, its inputs (`n`, place 1)."""
    c = cuts_table(schema)
    c.create(conn, checkfirst=True)
    conn.execute(sa.delete(c).where(c.c.profile_table == table))
    rows: list[dict[str, Any]] = [
        {"score": "n", "s": 0, "cut": scoring, "below": cuts.n},
        *([{"score": "n", "s": 1, "cut": inputs, "below": 0}] if inputs is not None else []),
        *(
            {"score": score, "s": s, "cut": _encode(cut.value), "below": cut.count}
            for score, listed in cuts.cuts.items()
            for s, cut in enumerate(listed, start=1)
        ),
    ]
    conn.execute(
        sa.insert(c), [{**row, "profile_table": table, "build_id": build_id} for row in rows]
    )


def cuts_from_scores(conn: sa.Connection, p: sa.Table, q: int) -> Cuts:
    """The cuts the stored scores were given by: per score, its count and largest value (one
    pass over the table for every score and place)."""
    columns: list[sa.ColumnElement[Any]] = [sa.func.count()]
    for score, measure in MEASURES.items():
        for s in range(1, q):
            at = p.c[score] == s
            columns.append(sa.func.sum(sa.case((at, 1), else_=0)))
            columns.append(sa.func.max(sa.case((at, p.c[measure]))))
    found = iter(conn.execute(sa.select(*columns).where(scored(p))).one())
    n = int(next(found))
    cuts: dict[str, list[Cut]] = {}
    for score in MEASURES:
        listed, below, value = [], 0, None
        for _ in range(1, q):
            count, top = next(found), next(found)
            if count:
                below += int(count)
                value = top
            listed.append(Cut(value, below))
        cuts[score] = listed
    return Cuts(n, cuts)


def ranked_cuts(conn: sa.Connection, rows: sa.FromClause, q: int) -> Cuts:
    """The cuts of the scored values in `rows`, ranked in the warehouse one measure at a time:
    per place s, the largest value with at most floor(s·n/q) scored values at or below it
    (what `cuts_from_scores` reads off scores given by ceil(q · cume_dist))."""
    n = int(conn.scalar(sa.select(sa.func.count()).select_from(rows).where(scored(rows))) or 0)
    cuts: dict[str, list[Cut]] = {}
    for score, measure in MEASURES.items():
        x = rows.c[measure]
        # Counted per distinct value first: a measure of few values (frequency) sorts those.
        distinct = (
            sa.select(x.label("x"), sa.func.count().label("n"))
            .where(scored(rows))
            .group_by(x)
            .subquery("distinct_values")
        )
        at_or_below = sa.func.sum(distinct.c.n).over(order_by=distinct.c.x)
        ranked = sa.select(distinct.c.x, at_or_below.label("at_or_below")).subquery("ranked")
        columns: list[sa.ColumnElement[Any]] = []
        for s in range(1, q):
            within = ranked.c.at_or_below <= s * n // q
            columns.append(sa.func.max(sa.case((within, ranked.c.x))))
            columns.append(sa.func.max(sa.case((within, ranked.c.at_or_below))))
        found = conn.execute(sa.select(*columns)).one()
        values, counts = found[0::2], found[1::2]
        cuts[score] = [Cut(v, int(c or 0)) for v, c in zip(values, counts, strict=True)]
    return Cuts(n, cuts)


def _values(conn: sa.Connection, p: sa.Table, keys: sa.Select[Any] | None) -> dict[str, list[Any]]:
    """The scored values per score column, sorted: of the customers `keys`, or of every row."""
    query = sa.select(*(p.c[m] for m in MEASURES.values())).where(scored(p))
    if keys is not None:
        query = query.where(p.c.customer_id.in_(keys))
    rows = conn.execute(query).all()
    return {score: sorted(row[i] for row in rows) for i, score in enumerate(MEASURES)}


class StaleCuts(Exception):
    """The kept cuts do not fit the table: the build scores from scratch instead."""


class Mover:
    """Moves the cuts from the old table to the new one (see the module's docstring)."""

    def __init__(self, conn: sa.Connection, p: sa.Table, keys: sa.Select[Any]) -> None:
        self.conn, self.p, self.keys = conn, p, keys

    def before(self) -> None:
        """Call before the touched rows are rewritten."""
        self.old = _values(self.conn, self.p, self.keys)

    def after(self, cuts: Cuts, q: int, rows: sa.Table | None = None) -> Cuts:
        """Call after: the new cuts. `rows`, when given, holds the touched customers' new rows
        (read there instead of looking each up in the profile table)."""
        new = (
            _values(self.conn, self.p, self.keys)
            if rows is None
            else _values(self.conn, rows, None)
        )
        n = cuts.n - len(self.old["r"]) + len(new["r"])
        moved: dict[str, list[Cut]] = {}
        for score, measure in MEASURES.items():
            old_values, new_values = self.old[score], new[score]
            moved[score] = []
            for s, cut in enumerate(cuts.cuts[score], start=1):
                count = cut.count
                if cut.value is not None:
                    count += bisect.bisect_right(new_values, cut.value)
                    count -= bisect.bisect_right(old_values, cut.value)
                moved[score].append(
                    self._move(self.p.c[measure], Cut(cut.value, count), s * n // q)
                )
        return Cuts(n, moved)

    def _first(self, query: sa.Select[Any]) -> list[Any]:
        return list(self.conn.execute(query).scalars())

    def _count(self, *where: sa.ColumnElement[bool]) -> int:
        return int(self.conn.scalar(sa.select(sa.func.count()).where(scored(self.p), *where)) or 0)

    def _move(self, x: sa.ColumnElement[Any], cut: Cut, k: int) -> Cut:
        """The largest cut with at most k scored values at or below it, from `cut`."""
        t, c = cut.value, cut.count
        if c <= k:
            if c == k:
                return cut
            above = _above(x, t)
            found = self._first(
                sa.select(x).where(scored(self.p), above).order_by(x).offset(k - c - 1).limit(2)
            )
            if not found:
                raise StaleCuts(f"no value {k - c} places above {t!r}")
            if len(found) == 1 or found[1] != found[0]:
                return Cut(found[0], k)
            # a tie across k: the cut goes below the tie group
            lower = self.conn.scalar(
                sa.select(sa.func.max(x)).where(scored(self.p), above, x < _bound(found[0]))
            )
            if lower is None:
                return cut
            return Cut(lower, c + self._count(above, x <= _bound(lower)))
        within = x <= _bound(t)
        found = self._first(
            sa.select(x).where(scored(self.p), within).order_by(x.desc()).offset(c - k - 1).limit(2)
        )
        if not found:
            raise StaleCuts(f"no value {c - k} places at or below {t!r}")
        if len(found) == 1:
            return Cut(None, 0)
        if found[1] != found[0]:
            return Cut(found[1], k)
        lower = self.conn.scalar(
            sa.select(sa.func.max(x)).where(scored(self.p), x < _bound(found[0]))
        )
        if lower is None:
            return Cut(None, 0)
        return Cut(lower, c - self._count(x > _bound(lower), within))


def moved_between(
    x: sa.ColumnElement[Any], old: Sequence[Cut], new: Sequence[Cut]
) -> list[sa.ColumnElement[bool]]:
    """Conditions on x for the values whose score a cut's move changed."""
    ranges = []
    for before, after in zip(old, new, strict=True):
        if before.value == after.value:
            continue
        if before.value is None or after.value is None:
            ranges.append(x <= _bound(before.value if after.value is None else after.value))
        else:
            low, high = sorted((before.value, after.value))
            ranges.append(sa.and_(x > _bound(low), x <= _bound(high)))
    return ranges
