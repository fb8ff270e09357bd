"""Batches as CSV, parsed and written in C by Arrow and polars: the columnar path to PostgreSQL.

PostgreSQL's `COPY … (FORMAT CSV)` writes NULL as an unquoted empty field and an empty string as
`""`; Arrow's reader and polars' writer keep that distinction, so values round-trip exactly:
decimals as decimal128 from their text, instants with their offset, JSON as its text.
"""

import io

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from pipewarden.dialects.kinds import ColumnKind


def arrow_type(kind: ColumnKind) -> pa.DataType | None:
    """The Arrow type a column's CSV text parses into; None where only text is exact."""
    if kind.kind == "integer":
        return pa.int64()
    if kind.kind == "decimal" and kind.scale is not None:
        return pa.decimal128(kind.precision or 38, kind.scale)
    if kind.kind == "float":
        return pa.float64()
    if kind.kind == "boolean":
        return pa.bool_()
    if kind.kind == "date":
        return pa.date32()
    if kind.kind == "timestamp":
        return pa.timestamp("us", "UTC") if kind.timezone else pa.timestamp("us")
    if kind.kind == "binary":
        return None
    return pa.string()


def supports(kinds: dict[str, ColumnKind]) -> bool:
    """Whether every column can travel as CSV (binary and time columns cannot)."""
    return all(arrow_type(k) is not None and k.kind != "time" for k in kinds.values())


def read_csv(data: bytes | memoryview, kinds: dict[str, ColumnKind]) -> pl.DataFrame:
    """Parse PostgreSQL CSV output into a batch typed by `ColumnKind.polars_dtype`."""
    names = list(kinds)
    if not len(data):
        return pl.DataFrame(schema={n: k.polars_dtype() for n, k in kinds.items()})
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: arrow_type(k) for n, k in kinds.items()},
            # NULL is the unquoted empty field and nothing else: Arrow's default list would
            # also read the floats `NaN` and texts such as `NULL`, `NA` or `nan` as NULL.
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    naive = [n for n, k in kinds.items() if k.kind == "timestamp" and not k.timezone]
    if naive:  # wall-clock columns hold UTC
        frame = frame.with_columns(pl.col(n).dt.replace_time_zone("UTC") for n in naive)
    return frame


def write_csv(batch: pl.DataFrame) -> memoryview:
    """CSV that `COPY … FROM STDIN (FORMAT CSV)` reads back to the same values.

    Instants are written as UTC wall-clock text with a literal `+00` offset: polars formats a
    zone-aware column much more slowly than a naive one (bench/sync.py), and a `timestamp
    without time zone` column ignores the offset, as before.
    """
    aware = [n for n, t in batch.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    if aware:
        batch = batch.with_columns(
            pl.col(n).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for n in aware
        )
    buffer = io.BytesIO()
    batch.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f+00")
    return buffer.getbuffer()
