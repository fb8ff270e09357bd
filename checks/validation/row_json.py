"""A batch's rows as JSON text and back, vectorized: how the quarantine keeps a row exactly.

Values keep their exact form: decimals as their digits in a string (never through float),
timestamps as ISO 8601 in UTC, dates and times as ISO text, binary as hex; integers, booleans
and floats as JSON numbers and booleans. Decoding with the batch's schema gives the same frame
back, so a held row can be normalized and validated again as if it had just been read.
"""

from collections.abc import Sequence

import polars as pl

from pipewarden.checks.validation.normalize import iso_text


def json_value(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column `name` in a type JSON holds exactly (ISO text for instants, digits for decimals)."""
    c = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            c = c.dt.replace_time_zone("UTC")
        return iso_text(c.dt.convert_time_zone("UTC"))
    if isinstance(dtype, pl.Decimal) or dtype in (pl.Date, pl.Time):
        return c.cast(pl.String)
    if dtype == pl.Binary:
        return c.bin.encode("hex")
    if dtype in (pl.Boolean, pl.String) or dtype.is_integer() or dtype.is_float():
        return c
    return c.cast(pl.String)


def json_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every column in a type JSON holds exactly."""
    return frame.select(json_value(n, t).alias(n) for n, t in frame.schema.items())


def row_json(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> pl.Series:
    """One JSON object per row, keys in column order."""
    picked = frame if columns is None else frame.select(columns)
    if picked.height == 0:
        return pl.Series("json", [], dtype=pl.String)
    return json_safe(picked).select(pl.struct(pl.all()).struct.json_encode().alias("json"))["json"]


def _json_type(dtype: pl.DataType) -> pl.DataType:
    if dtype == pl.Boolean or dtype.is_integer() or dtype.is_float() or dtype == pl.String:
        return dtype
    return pl.String()


def _restore(name: str, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        parsed = c.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", time_zone="UTC")
        if dtype.time_zone is None:
            return parsed.dt.replace_time_zone(None).cast(dtype)
        return parsed.dt.convert_time_zone(dtype.time_zone).cast(dtype)
    if dtype == pl.Binary:
        return c.str.decode("hex")
    return c.cast(dtype)


def json_safe_from_json(
    texts: Sequence[str] | pl.Series, schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """Rows written by `row_json` as `json_safe` gives them: compares with `json_safe(batch)`."""
    safe = {n: _json_type(t) for n, t in schema.items()}
    if len(texts) == 0:
        return pl.DataFrame(schema=safe)
    decoded = pl.Series("json", texts, dtype=pl.String).str.json_decode(dtype=pl.Struct(safe))
    return decoded.struct.unnest()


def frame_from_json(texts: Sequence[str], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows written by `row_json`, typed by `schema` (the batch's schema when they were read)."""
    if not texts:
        return pl.DataFrame(schema=schema)
    frame = json_safe_from_json(list(texts), schema)
    return frame.select(_restore(n, t).alias(n) for n, t in schema.items())
