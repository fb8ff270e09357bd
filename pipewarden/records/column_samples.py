"""Per sync run and column: exact null counts and a bounded sample, what column monitors compare.

One row per (run, column): the rows profiled and their nulls (exact), and either a uniform
sample of at most `SAMPLE_SIZE` numbers (float32, zlib-compressed: about 4 kB) or, for a column
with few distinct values, its exact value counts (JSON). Full loads are labelled `load = 'full'`:
a first load is the whole table, not a batch of changes, and no monitor compares against it.
Only a table's newest `KEEP_RUNS` runs are kept, which is more than the monitors read.
"""

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from pipewarden.records.tables import metadata

SAMPLE_SIZE = 1000
KEEP_RUNS = 48
FULL, DELTA = "full", "delta"

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

column_samples = sa.Table(
    "pipewarden_column_samples",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("load", sa.String(10), nullable=False),
    sa.Column("column_name", sa.String(200), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("nulls", sa.BigInteger, nullable=False),
    sa.Column("sample", sa.LargeBinary),
    sa.Column("counts", sa.Text),
    sa.Index("ix_pipewarden_column_samples_table", "table_name", "measured_at"),
)


@dataclass(frozen=True)
class ColumnSample:
    """One column of one run: counts, and numbers or category counts when the column has them."""

    measured_at: datetime
    table_name: str
    run_id: str
    column: str
    rows: int
    nulls: int
    values: np.ndarray | None = None
    counts: dict[str, int] | None = None
    load: str = DELTA


def write_samples(
    conn: sa.Connection, samples: Sequence[ColumnSample], keep_runs: int = KEEP_RUNS
) -> int:
    """Insert samples (in the caller's transaction); drop each table's runs beyond `keep_runs`."""
    rows = [
        {
            "measured_at": _utc(s.measured_at),
            "table_name": s.table_name,
            "run_id": s.run_id,
            "load": s.load,
            "column_name": s.column,
            "rows": s.rows,
            "nulls": s.nulls,
            "sample": None if s.values is None else _pack(s.values),
            "counts": None if s.counts is None else json.dumps(s.counts, sort_keys=True),
        }
        for s in samples
    ]
    if not rows:
        return 0
    conn.execute(column_samples.insert(), rows)
    c = column_samples.c
    for table_name in {s.table_name for s in samples}:
        oldest_kept = conn.execute(
            sa.select(c.measured_at)
            .where(c.table_name == table_name)
            .distinct()
            .order_by(c.measured_at.desc())
            .offset(keep_runs - 1)
            .limit(1)
        ).scalar()
        if oldest_kept is not None:
            conn.execute(
                column_samples.delete().where(
                    c.table_name == table_name, c.measured_at < oldest_kept
                )
            )
    return len(rows)


def read_samples(
    conn: sa.Connection, table_names: Sequence[str], load: str = DELTA
) -> dict[str, list[ColumnSample]]:
    """Every kept sample of the named tables, newest run first: `{table: samples}`."""
    c = column_samples.c
    out: dict[str, list[ColumnSample]] = defaultdict(list)
    if not table_names:
        return {}
    q = (
        sa.select(column_samples)
        .where(c.table_name.in_(list(table_names)), c.load == load)
        .order_by(c.table_name, c.measured_at.desc(), c.id)
    )
    for row in conn.execute(q).mappings():
        out[row["table_name"]].append(
            ColumnSample(
                measured_at=_utc(row["measured_at"]),
                table_name=row["table_name"],
                run_id=row["run_id"],
                column=row["column_name"],
                rows=int(row["rows"]),
                nulls=int(row["nulls"]),
                values=None if row["sample"] is None else _unpack(row["sample"]),
                counts=None if row["counts"] is None else json.loads(row["counts"]),
                load=row["load"],
            )
        )
    return dict(out)


def by_run(samples: Iterable[ColumnSample]) -> list[list[ColumnSample]]:
    """Samples grouped per run, in the order the runs first appear."""
    runs: dict[str, list[ColumnSample]] = {}
    for s in samples:
        runs.setdefault(s.run_id, []).append(s)
    return list(runs.values())


def _pack(values: np.ndarray) -> bytes:
    return zlib.compress(np.asarray(values, dtype="<f4").tobytes())


def _unpack(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").astype(np.float64)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC, as written."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
