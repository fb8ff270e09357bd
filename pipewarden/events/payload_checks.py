"""A stream's checks on its payloads: the table checks (`schema`, `normalize`, `columns`) run
on a batch of events whose declared `fields` are the columns.

A field whose value is not of its declared kind fails `type(<kind>)` and is checked no further;
an absent field is NULL. Each rejected event gets its reasons in the quarantine's form.
"""

from collections.abc import Sequence
from typing import Any

import polars as pl

from pipewarden.checks.validation.columns import table_problems, with_columns
from pipewarden.checks.validation.normalize import rule_problems
from pipewarden.checks.validation.schema_gate import SchemaGate, load_schema, schema_problems
from pipewarden.config import ConfigError
from pipewarden.config.streams import FieldKind, StreamConfig
from pipewarden.events.delivery import Event, locate, parse_time

DTYPES: dict[FieldKind, pl.DataType] = {
    "text": pl.String(),
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "boolean": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
}


def _as_kind(value: Any, kind: FieldKind) -> Any:
    """The value as its field's kind; raises TypeError or ValueError when it is not one."""
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "timestamp":
        return parse_time(value)
    raise TypeError(kind)


class PayloadChecks:
    """The compiled checks of one stream; `reasons` judges a batch of its events."""

    def __init__(self, stream: StreamConfig) -> None:
        self.stream = stream
        self.dtypes = {name: DTYPES[kind] for name, kind in stream.fields.items()}
        table = stream.as_table()
        schema = None
        where = f"streams.{stream.name}"
        if stream.schema_ref:
            schema = load_schema(stream.schema_ref, f"{where}.schema")
        problems = [f"{where}.{p}" for p in rule_problems(stream.normalize, self.dtypes)]
        problems += [
            p.replace(f"tables.{stream.name}", where).replace("source table", "fields of stream")
            for p in table_problems(table, self.dtypes)
        ]
        if schema is not None:
            problems += [f"{where}.schema: {p}" for p in schema_problems(schema, self.dtypes)]
        if problems:
            raise ConfigError("\n".join(problems))
        if any(c.has_checks for c in stream.columns.values()):
            schema = with_columns(schema, table, self.dtypes)
        self.gate = SchemaGate(schema, stream.normalize, [])

    def reasons(self, events: Sequence[Event]) -> list[list[dict[str, Any]] | None]:
        """Per event: the reasons it is rejected for, or None when it passes."""
        columns: dict[str, list[Any]] = {}
        failures: list[tuple[int, str, str, str]] = []
        for name, kind in self.stream.fields.items():
            values: list[Any] = []
            for row, event in enumerate(events):
                value = locate(f"json:{name}", {}, event.payload)
                if value is not None:
                    try:
                        value = _as_kind(value, kind)
                    except (TypeError, ValueError, OverflowError, OSError):
                        failures.append((row, name, f"type({kind})", str(value)[:120]))
                        value = None
                values.append(value)
            columns[name] = values
        frame = pl.DataFrame(
            [pl.Series(name, columns[name], dtype=self.dtypes[name]) for name in columns]
        )
        screened = pl.DataFrame(
            failures,
            schema={"row": pl.UInt32, "column": pl.String, "check": pl.String, "value": pl.String},
            orient="row",
        )
        checked = self.gate.check(frame, screened)
        out: list[list[dict[str, Any]] | None] = [None] * len(events)
        for row, reasons in zip(checked.rejected_rows.to_list(), checked.reason_lists.to_list()):
            out[row] = reasons
        return out
