"""The quarantine: every row a check held back, with its reasons, until it is fixed and released.

A held row stays `held` until a replay loads it (`released`, with who and when) or a newer
version of the same key arrives from the source (`superseded`). Nothing is ever deleted here.
`pipewarden_check_failures` keeps one row per run, table, column and check: the counts and a few
examples that the metrics stage, the CLI summary and the Prefect artifact show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pipewarden.dialects import dialect_for
from pipewarden.records.tables import RowId, metadata

if TYPE_CHECKING:  # polars loads with the first held row, not with the table (`pipewarden status`)
    import polars as pl

HELD, RELEASED, SUPERSEDED = "held", "released", "superseded"
#: Examples kept per run, column and check.
MAX_EXAMPLES = 3


#: One reason of a held row, as the gate hands them to `hold`.
def __getattr__(name: str) -> Any:
    """`REASON`, the polars type of one reason, made on first use."""
    if name == "REASON":
        import polars as pl

        return pl.Struct({"column": pl.String, "check": pl.String, "value": pl.String})
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


quarantine = sa.Table(
    "pipewarden_quarantine",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("primary_key", sa.Text, nullable=False),
    sa.Column("row_json", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    # ",check_a,check_b," so that `--reason` filters in SQL without parsing JSON.
    sa.Column("checks", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True)),
    sa.Column("released_by", sa.String(200)),
    sa.Column("superseded_at", sa.DateTime(timezone=True)),
    sa.Column("superseded_by_run", sa.String(36)),
    sa.Index("ix_pipewarden_quarantine_table_status", "table_name", "status"),
)

check_failures = sa.Table(
    "pipewarden_check_failures",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("column_name", sa.String(500), nullable=False),
    sa.Column("check_name", sa.String(500), nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False),
    sa.Column("examples", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class QuarantineEntry:
    """One row of the quarantine, decoded."""

    id: int
    table_name: str
    run_id: str
    primary_key: dict[str, Any]
    row: dict[str, Any]
    row_json: str
    reasons: list[dict[str, Any]]
    status: str
    quarantined_at: datetime
    released_at: datetime | None
    released_by: str | None
    superseded_at: datetime | None


@dataclass(frozen=True)
class FailureGroup:
    """Rows of one run that failed one check on one column."""

    column: str
    check: str
    failures: int
    examples: list[Any]


def check_base(check: str) -> str:
    """`isin(['a', 'b'])` → `isin`: the name a person filters by."""
    return check.split("(", 1)[0]


def hold(conn: sa.Connection, table_name: str, run_id: str, rows: pl.DataFrame) -> None:
    """Insert held rows (in the caller's transaction): `primary_key`, `row_json`, `reasons`.

    `reasons` is a list of `REASON` per row. The records are built by polars and written by the
    warehouse's bulk path (COPY on PostgreSQL): many bad rows cost no statement and no Python
    object per row.
    """
    import polars as pl

    if rows.height == 0:
        return
    reasons = pl.col("reasons")
    checks = reasons.list.eval(pl.element().struct.field("check").str.split("(").list.first())
    frame = rows.select(
        pl.lit(table_name, pl.String).alias("table_name"),
        pl.lit(run_id, pl.String).alias("run_id"),
        "primary_key",
        "row_json",
        pl.concat_str(
            pl.lit("["),
            reasons.list.eval(pl.element().struct.json_encode()).list.join(","),
            pl.lit("]"),
        ).alias("reasons"),
        pl.concat_str(
            pl.lit(","), checks.list.unique(maintain_order=True).list.join(","), pl.lit(",")
        ).alias("checks"),
        pl.lit(HELD, pl.String).alias("status"),
        pl.lit(datetime.now(UTC), pl.Datetime("us", "UTC")).alias("quarantined_at"),
    )
    dialect_for(conn.dialect.name).append(conn, quarantine, frame)


def _checks_text(reasons: Iterable[dict[str, Any]]) -> str:
    names = dict.fromkeys(check_base(str(r["check"])) for r in reasons)
    return "," + ",".join(names) + ","


def held_keys(conn: sa.Connection, table_name: str) -> list[tuple[int, str, str]]:
    """`(id, primary_key, row)` of every held row of a table."""
    q = sa.select(quarantine.c.id, quarantine.c.primary_key, quarantine.c.row_json).where(
        quarantine.c.table_name == table_name, quarantine.c.status == HELD
    )
    return [(r.id, r.primary_key, r.row_json) for r in conn.execute(q)]


def mark_superseded(conn: sa.Connection, ids: Sequence[int], run_id: str | None) -> int:
    """A newer version of these rows' keys arrived: they need no release any more."""
    done = 0
    for chunk in _chunks(ids):
        done += conn.execute(
            quarantine.update()
            .where(quarantine.c.id.in_(chunk), quarantine.c.status == HELD)
            .values(status=SUPERSEDED, superseded_at=datetime.now(UTC), superseded_by_run=run_id)
        ).rowcount
    return done


def mark_superseded_rows(
    conn: sa.Connection, table_name: str, rows: Sequence[tuple[str, str]], run_id: str | None
) -> int:
    """Supersede the held rows given as `(primary_key, row_json)` pairs: one UPDATE per chunk.

    A row's JSON holds its key's values, so no row of one pair can carry another pair's key:
    matching both lists matches exactly the pairs.
    """
    c = quarantine.c
    done = 0
    for chunk in _chunks(rows):
        done += conn.execute(
            quarantine.update()
            .where(
                c.table_name == table_name,
                c.status == HELD,
                c.primary_key.in_({k for k, _ in chunk}),
                c.row_json.in_([r for _, r in chunk]),
            )
            .values(status=SUPERSEDED, superseded_at=datetime.now(UTC), superseded_by_run=run_id)
        ).rowcount
    return done


def mark_released(conn: sa.Connection, ids: Sequence[int], by: str) -> int:
    """These rows loaded on replay: record who released them and when."""
    done = 0
    for chunk in _chunks(ids):
        done += conn.execute(
            quarantine.update()
            .where(quarantine.c.id.in_(chunk), quarantine.c.status == HELD)
            .values(status=RELEASED, released_at=datetime.now(UTC), released_by=by)
        ).rowcount
    return done


def update_reasons(conn: sa.Connection, entry_id: int, reasons: list[dict[str, Any]]) -> None:
    """A replay found the row still failing: keep the reasons it fails for now."""
    conn.execute(
        quarantine.update()
        .where(quarantine.c.id == entry_id)
        .values(reasons=json.dumps(reasons, default=str), checks=_checks_text(reasons))
    )


def _chunks(ids: Sequence[Any], size: int = 500) -> Iterable[list[Any]]:
    ids = list(ids)
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def entries(
    conn: sa.Connection,
    table_name: str,
    *,
    status: str | None = HELD,
    reason: str | None = None,
    limit: int | None = None,
) -> list[QuarantineEntry]:
    """Quarantined rows of a table, oldest first; `reason` matches a check by its base name."""
    q = sa.select(quarantine).where(quarantine.c.table_name == table_name)
    if status is not None:
        q = q.where(quarantine.c.status == status)
    if reason:
        q = q.where(quarantine.c.checks.contains(f",{check_base(reason)},", autoescape=True))
    q = q.order_by(quarantine.c.id)
    if limit is not None:
        q = q.limit(limit)
    return [_entry(r) for r in conn.execute(q)]


def _entry(r: Any) -> QuarantineEntry:
    return QuarantineEntry(
        id=r.id,
        table_name=r.table_name,
        run_id=r.run_id,
        primary_key=json.loads(r.primary_key),
        row=json.loads(r.row_json),
        row_json=r.row_json,
        reasons=json.loads(r.reasons),
        status=r.status,
        quarantined_at=r.quarantined_at,
        released_at=r.released_at,
        released_by=r.released_by,
        superseded_at=r.superseded_at,
    )


def counts(conn: sa.Connection, table_name: str | None = None) -> list[dict[str, Any]]:
    """Per table: rows held, released and superseded, and the oldest held row's time."""
    c = quarantine.c
    q = sa.select(
        c.table_name,
        c.status,
        sa.func.count().label("n"),
        sa.func.min(c.quarantined_at).label("oldest"),
    ).group_by(c.table_name, c.status)
    if table_name:
        q = q.where(c.table_name == table_name)
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(q):
        row = out.setdefault(
            r.table_name,
            {"table": r.table_name, HELD: 0, RELEASED: 0, SUPERSEDED: 0, "oldest_held": None},
        )
        row[r.status] = r.n
        if r.status == HELD:
            row["oldest_held"] = r.oldest
    return [out[k] for k in sorted(out)]


def held_count(conn: sa.Connection, table_name: str) -> int:
    """How many of a table's rows are held now."""
    c = quarantine.c
    q = sa.select(sa.func.count()).where(c.table_name == table_name, c.status == HELD)
    return int(conn.execute(q).scalar_one())


def record_failures(
    conn: sa.Connection, run_id: str, table_name: str, groups: Sequence[FailureGroup]
) -> None:
    """Add one batch's failure counts to the run's rows (one per column and check)."""
    if not groups:
        return
    c = check_failures.c
    existing = {
        (r.column_name, r.check_name): r
        for r in conn.execute(
            sa.select(check_failures).where(c.run_id == run_id, c.table_name == table_name)
        )
    }
    now = datetime.now(UTC)
    for g in groups:
        old = existing.get((g.column, g.check))
        if old is None:
            conn.execute(
                check_failures.insert().values(
                    run_id=run_id,
                    table_name=table_name,
                    column_name=g.column,
                    check_name=g.check,
                    failures=g.failures,
                    examples=json.dumps(g.examples[:MAX_EXAMPLES], default=str),
                    recorded_at=now,
                )
            )
            continue
        examples = json.loads(old.examples)
        for e in g.examples:
            if len(examples) < MAX_EXAMPLES and e not in examples:
                examples.append(e)
        conn.execute(
            check_failures.update()
            .where(c.id == old.id)
            .values(
                failures=old.failures + g.failures,
                examples=json.dumps(examples, default=str),
                recorded_at=now,
            )
        )


def failures_of_run(conn: sa.Connection, run_id: str) -> list[dict[str, Any]]:
    """The run's failure groups, most failures first."""
    c = check_failures.c
    q = (
        sa.select(c.table_name, c.column_name, c.check_name, c.failures, c.examples)
        .where(c.run_id == run_id)
        .order_by(c.failures.desc(), c.column_name, c.check_name)
    )
    return [
        {
            "table": r.table_name,
            "column": r.column_name,
            "check": r.check_name,
            "failures": r.failures,
            "examples": json.loads(r.examples),
        }
        for r in conn.execute(q)
    ]
