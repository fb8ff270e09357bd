"""Running a Pandera model lazily on a polars batch, and turning its failures into row reasons.

Pandera collects every failure (`lazy=True`) into `SchemaErrors.failure_cases`: one entry per
failing value, with the row's position in `index`. A row can fail several checks; the gate counts
rows, not entries. Dataframe-level checks (`created_at<=updated_at`, the unique key) report the
whole row; here they are mapped back to the columns they are about — the unique columns, or the
model's columns named in the check's name — with those columns' values as the failing value.

A failure without a row (a missing column, a column of the wrong type) is not a bad row but a
schema that does not fit the table: that raises `SchemaMismatch` rather than quarantining a batch.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from pipewarden.checks.validation.row_json import json_value

if TYPE_CHECKING:  # pandera loads with the first schema a table has, not with the sync
    import pandera.polars as pa

#: Failing values are cut to this many characters before they are stored or shown.
MAX_VALUE_CHARS = 120

FAILURE_SCHEMA = {"row": pl.UInt32, "column": pl.String, "check": pl.String, "value": pl.String}


class SchemaMismatch(ValueError):
    """The schema does not fit the batch's columns or types (a configuration problem)."""


def truncate(value: pl.Expr, limit: int = MAX_VALUE_CHARS) -> pl.Expr:
    """Cut text to `limit` characters, marking the cut with an ellipsis."""
    return (
        pl.when(value.str.len_chars() > limit)
        .then(value.str.slice(0, limit - 1) + pl.lit("…"))
        .otherwise(value)
    )


def no_failures() -> pl.DataFrame:
    return pl.DataFrame(schema=FAILURE_SCHEMA)


@dataclass(frozen=True)
class PreparedSchema:
    """A schema with its unique-key check taken out, to be run by a faster path.

    Pandera hashes every row to find duplicates even when there are none; counting distinct
    keys first costs a fraction of that and is enough for the (usual) batch without duplicates.
    """

    schema: pa.DataFrameSchema
    checked: pa.DataFrameSchema
    unique: list[str]

    @property
    def name(self) -> str:
        return str(self.schema.name)


def prepare(schema: pa.DataFrameSchema) -> PreparedSchema:
    unique = schema.unique
    columns = [] if unique is None else [unique] if isinstance(unique, str) else list(unique)
    checked = copy.deepcopy(schema)
    checked.unique = None
    return PreparedSchema(schema, checked, columns)


def validate(schema: pa.DataFrameSchema | PreparedSchema, batch: pl.DataFrame) -> pl.DataFrame:
    """Every failure of `batch` against `schema` as `(row, column, check, value)` rows."""
    prepared = schema if isinstance(schema, PreparedSchema) else prepare(schema)
    duplicates = _duplicates(prepared, batch)
    failures = _validate(prepared.checked, prepared.schema, batch)
    if duplicates.height == 0:
        return failures
    return pl.concat([failures, duplicates])


def _duplicates(prepared: PreparedSchema, batch: pl.DataFrame) -> pl.DataFrame:
    """Every row whose unique key occurs more than once: the batch cannot tell which is right."""
    cols = prepared.unique
    if not cols or batch.height < 2 or any(c not in batch.columns for c in cols):
        return no_failures()
    key = pl.col(cols[0]) if len(cols) == 1 else pl.struct(cols)
    if batch.select(key.n_unique()).item() == batch.height:
        return no_failures()
    rows = (
        batch.select(pl.int_range(0, pl.len(), dtype=pl.UInt32).alias("row"), key.is_duplicated())
        .filter(pl.last())
        .get_column("row")
    )
    return _row_check_failures(prepared.schema, batch, "multiple_fields_uniqueness", rows)


def _validate(
    schema: pa.DataFrameSchema, named: pa.DataFrameSchema, batch: pl.DataFrame
) -> pl.DataFrame:
    from pandera.errors import SchemaError, SchemaErrors

    try:
        schema.validate(batch, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    except SchemaError as error:  # raised outside the lazy collection (a wrong dtype on polars)
        raise SchemaMismatch(f"schema {schema.name}: {error}") from None
    else:
        return no_failures()
    if not isinstance(cases, pl.DataFrame):
        cases = pl.from_pandas(cases)
    whole = cases.filter(pl.col("index").is_null())
    if whole.height:
        problems = sorted(
            {f"{r['column']}: {r['check']} ({r['failure_case']})" for r in whole.to_dicts()}
        )
        raise SchemaMismatch(f"schema {schema.name} does not fit the batch: " + "; ".join(problems))
    column_level = cases.filter(pl.col("schema_context") == "Column").select(
        pl.col("index").cast(pl.UInt32).alias("row"),
        "column",
        pl.col("check").replace({"field_uniqueness": "unique"}),
        truncate(pl.col("failure_case").cast(pl.String)).alias("value"),
    )
    frame_level = cases.filter(pl.col("schema_context") != "Column")
    parts = [column_level]
    for check in frame_level["check"].unique(maintain_order=True).to_list():
        rows = frame_level.filter(pl.col("check") == check)["index"].cast(pl.UInt32).unique()
        parts.append(_row_check_failures(named, batch, check, rows.sort()))
    return pl.concat(parts) if len(parts) > 1 else column_level


def _row_check_failures(
    schema: pa.DataFrameSchema, batch: pl.DataFrame, check: str, rows: pl.Series
) -> pl.DataFrame:
    """Failures of a dataframe-level check, named by the columns it is about."""
    columns = reason_columns(schema, check)
    picked = batch.select(columns)[rows]  # only the failing rows are turned into text
    picked = picked.select(
        json_value(c, batch.schema[c]).cast(pl.String).fill_null("null").alias(c) for c in columns
    )
    if len(columns) == 1:
        value = pl.col(columns[0])
    else:
        value = pl.concat_str([pl.lit(f"{c}=") + pl.col(c) for c in columns], separator=", ")
    return picked.select(
        pl.Series("row", rows, dtype=pl.UInt32),
        pl.lit(",".join(columns)).alias("column"),
        pl.lit(_check_name(check)).alias("check"),
        truncate(value).alias("value"),
    )


def reason_columns(schema: pa.DataFrameSchema, check: str) -> list[str]:
    """The columns a dataframe-level check is about."""
    if check == "multiple_fields_uniqueness" and schema.unique:
        return [schema.unique] if isinstance(schema.unique, str) else list(schema.unique)
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", check)
    named = [w for w in dict.fromkeys(words) if w in schema.columns]
    return named or list(schema.columns)


def _check_name(check: str) -> str:
    return "unique" if check == "multiple_fields_uniqueness" else check


def reasons_frame(failures: pl.DataFrame) -> pl.DataFrame:
    """Failing rows in ascending order (`row`), each with its `reasons` (list of struct)."""
    return (
        failures.group_by("row")
        .agg(pl.struct("column", "check", "value").alias("reasons"))
        .sort("row")
    )


def reasons_by_row(failures: pl.DataFrame) -> tuple[list[int], list[list[dict[str, Any]]]]:
    """Failing rows in ascending order, each with its list of `{column, check, value}`."""
    if failures.height == 0:
        return [], []
    grouped = reasons_frame(failures)
    return grouped["row"].to_list(), grouped["reasons"].to_list()
