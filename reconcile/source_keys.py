"""Keys the source cannot be compared by: NULL keys and keys held by more than one row.

A source without a primary key constraint can hold both. Compared as they are, a NULL key fails
the bucket pass (a row in no bucket) and duplicate keys collapse into one row whose twin is
never compared, so the run would call the table equal. They are counted and named here first
(one aggregate per kind, only when the source's constraints do not already rule them out);
NULL-key rows are then left out of the comparison, and the run reports itself incomplete.
"""

import json
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa

from pipewarden.reconcile.keys import Key, json_key
from pipewarden.reconcile.plan import Side

#: Keys named per finding: enough to find the rows, few enough for a message.
SAMPLE_KEYS = 10
#: Duplicate keys read to leave their rows out of the differences (a repair cannot upsert two
#: rows into one key); past this many, the rest may still show up as differences.
MAX_KEYS = 100_000


@dataclass(frozen=True)
class KeyFinding:
    """Source rows the comparison cannot match by key: `null_key` or `duplicate_key`."""

    kind: str
    rows: int
    keys: int
    sample: list[Key] = field(default_factory=list)
    #: Every key read (up to MAX_KEYS): differences on these keys are not reported.
    found: set[Key] = field(default_factory=set, repr=False)

    def as_dict(self, key: list[str]) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "keys": self.keys,
            "sample": [json_key(k) for k in self.sample],
            "message": self.describe(key),
        }

    def describe(self, key: list[str]) -> str:
        columns = ", ".join(key)
        named = ", ".join(json.dumps(json_key(k)) for k in self.sample)
        more = " …" if self.keys > len(self.sample) else ""
        if self.kind == "null_key":
            return (
                f"{self.rows} source rows have a NULL in key ({columns}), not compared: "
                f"{named}{' …' if self.rows > len(self.sample) else ''}"
            )
        return (
            f"{self.keys} keys ({columns}) are each held by more than one source row "
            f"({self.rows} rows), not compared: {named}{more}"
        )


def constrained(side: Side) -> tuple[bool, bool]:
    """(no NULL possible, no duplicate possible) in the key, from the table's own constraints."""
    table = side.table
    key = set(side.key)
    not_null = all(not table.c[k].nullable for k in side.key)
    unique_sets = [{c.name for c in table.primary_key.columns}] if table.primary_key else []
    unique_sets += [
        {c.name for c in constraint.columns}
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    ]
    unique_sets += [{c.name for c in index.columns} for index in table.indexes if index.unique]
    unique = any(s and s <= key for s in unique_sets)
    return not_null, unique


def key_is_null(side: Side) -> Any:
    """Rows with a NULL in any key column."""
    return sa.or_(*(side.table.c[k].is_(None) for k in side.key))


def find_key_problems(conn: sa.Connection, side: Side, where: Any) -> list[KeyFinding]:
    """NULL and duplicate keys among the source rows `where` selects (None: all of them)."""
    not_null, unique = constrained(side)
    findings: list[KeyFinding] = []
    columns = [side.table.c[k] for k in side.key]
    if not not_null:
        null = key_is_null(side)
        condition = null if where is None else sa.and_(where, null)
        count = sa.select(sa.func.count()).select_from(side.table).where(condition)
        rows = conn.execute(count).scalar() or 0
        if rows:
            picked = sa.select(*columns).where(condition).distinct().limit(SAMPLE_KEYS)
            sample = [tuple(r) for r in conn.execute(picked)]
            findings.append(KeyFinding("null_key", int(rows), 0, sample, set(sample)))
    if not unique:
        # Keys as the comparison orders them (bytewise across engines): MariaDB's default
        # collation would otherwise call 'a' and 'A' one key.
        ordered = [c.label(k) for c, k in zip(side.key_columns, side.key)]
        grouped = sa.select(*ordered, sa.func.count().label("pw_rows"))
        if where is not None:
            grouped = grouped.where(where)
        if not not_null:
            grouped = grouped.where(sa.not_(key_is_null(side)))
        groups = grouped.group_by(*side.key_columns).having(sa.func.count() > 1).subquery()
        totals = sa.select(sa.func.count(), sa.func.sum(groups.c.pw_rows))
        keys, duplicates = cast(tuple[int, Any], conn.execute(totals).one())
        if keys:
            picked = sa.select(*(groups.c[k] for k in side.key))
            first = picked.order_by(*(groups.c[k] for k in side.key)).limit(MAX_KEYS)
            held = [tuple(r) for r in conn.execute(first)]
            findings.append(
                KeyFinding(
                    "duplicate_key", int(duplicates), int(keys), held[:SAMPLE_KEYS], set(held)
                )
            )
    return findings
