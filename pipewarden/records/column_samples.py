"""Per sync run and column: exact null counts and a bounded sample, what column monitors compare.

One row per (run, column): the rows profiled and their nulls (exact), and either a uniform
sample of at most `SAMPLE_SIZE` numbers (little-endian float32 after a format byte: 4 kB) or,
for a column with few distinct values, its exact value counts (JSON). Full loads are labelled
`load = 'full'`: a first load is the whole table, not a batch of changes, and no monitor
compares against it. Only a table's newest `KEEP_RUNS` runs are kept, which is more than the
monitors read.

Samples were zlib-compressed until the format byte; those rows still read. Compression saved
a tenth of the bytes and cost every check run its decompression (the README's figures). The
column monitors read `StoredSample`s, decoded a column at a time
(`sample_values`, `summed_counts`), rather than a `ColumnSample` with its arrays per row.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

import sqlalchemy as sa

from pipewarden.dialects import dialect_for
from pipewarden.records.tables import RowId, metadata
from pipewarden.records.values import utc

if TYPE_CHECKING:  # numpy loads with the first sample, not with the table (`pipewarden status`)
    import numpy as np

SAMPLE_SIZE = 1000
#: First byte of a sample stored raw. A zlib stream's first byte has 8 in its low four bits.
RAW_FLOAT32 = b"\x01"
KEEP_RUNS = 48
FULL, DELTA = "full", "delta"


column_samples = sa.Table(
    "pipewarden_column_samples",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
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
            "measured_at": utc(s.measured_at),
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


class StoredSample(NamedTuple):
    """One column of one run as read, its numbers and counts still encoded."""

    measured_at: datetime
    run_id: str
    column: str
    rows: int
    nulls: int
    sample: bytes | None
    counts: str | None


def read_stored(
    conn: sa.Connection, table_names: Sequence[str], load: str = DELTA
) -> dict[str, list[StoredSample]]:
    """Every kept sample of the named tables, newest run first: `{table: samples}`."""
    if not table_names:
        return {}
    c = column_samples.c
    q = (
        sa.select(c.table_name, c.measured_at, c.run_id, c.column_name)
        .add_columns(c.rows, c.nulls, c.sample, c.counts)
        .where(c.table_name.in_(list(table_names)), c.load == load)
        .order_by(c.table_name, c.measured_at.desc(), c.id)
    )
    rows = dialect_for(conn.dialect.name).fetch_tuples(conn, q)
    return {
        name: [StoredSample(utc(r[1]), *r[2:]) for r in table_rows]
        for name, table_rows in groupby(rows, key=itemgetter(0))
    }


def read_samples(
    conn: sa.Connection, table_names: Sequence[str], load: str = DELTA
) -> dict[str, list[ColumnSample]]:
    """Every kept sample of the named tables, newest run first, decoded: `{table: samples}`."""
    return {
        name: [
            ColumnSample(
                measured_at=s.measured_at,
                table_name=name,
                run_id=s.run_id,
                column=s.column,
                rows=s.rows,
                nulls=s.nulls,
                values=None if s.sample is None else sample_values([s.sample]),
                counts=None if s.counts is None else summed_counts([s.counts]),
                load=load,
            )
            for s in stored
        ]
        for name, stored in read_stored(conn, table_names, load).items()
    }


def sample_values(blobs: Sequence[bytes]) -> np.ndarray:
    """The numbers of stored samples, one after another, as float64."""
    import numpy as np

    if all(blob[:1] == RAW_FLOAT32 for blob in blobs):
        joined = b"".join(memoryview(blob)[1:] for blob in blobs)
        return np.frombuffer(joined, dtype="<f4").astype(np.float64)
    return np.concatenate([_unpack(blob) for blob in blobs])


def summed_counts(documents: Sequence[str]) -> dict[str, int]:
    """Stored value counts added up (parsed as one JSON array: a call per document costs more)."""
    total: dict[str, int] = {}
    for counts in json.loads(f"[{','.join(documents)}]"):
        for value, n in counts.items():
            total[value] = total.get(value, 0) + n
    return total


class _Run(Protocol):
    @property
    def run_id(self) -> str: ...


_S = TypeVar("_S", bound=_Run)


def by_run(samples: Iterable[_S]) -> list[list[_S]]:
    """Samples grouped per run, in the order the runs first appear."""
    runs: dict[str, list[_S]] = {}
    for s in samples:
        runs.setdefault(s.run_id, []).append(s)
    return list(runs.values())


def _pack(values: np.ndarray) -> bytes:
    import numpy as np

    return RAW_FLOAT32 + np.asarray(values, dtype="<f4").tobytes()


def _unpack(blob: bytes) -> np.ndarray:
    import numpy as np

    if blob[:1] == RAW_FLOAT32:
        return np.frombuffer(blob, dtype="<f4", offset=1).astype(np.float64)
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").astype(np.float64)
