"""The schema gate the sync runs every batch through: normalize, validate, split, quarantine.

`gate_for` is the gate every sync applies to a table (`SyncOptions.gate_factory`): a table with no
checks gets a `SchemaGate` that only holds the rows the sync's screen cannot load. `load_schema` and
`verify_schema_refs` turn a schema reference that does not import, or does not fit its table, into a
`ConfigError` that names the table and the key, before anything is read.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from pipewarden.checks.validation.columns import table_problems as column_problems
from pipewarden.checks.validation.columns import text_problems, with_columns
from pipewarden.checks.validation.gate import BatchGate, GatedBatch
from pipewarden.checks.validation.held_rows import KEY, ROW, HeldRows
from pipewarden.checks.validation.normalize import normalize, rule_problems, unknown_steps
from pipewarden.checks.validation.validate import (
    FAILURE_SCHEMA,
    PreparedSchema,
    no_failures,
    prepare,
    reasons_frame,
    validate,
)
from pipewarden.config import ConfigError, PipewardenConfig, TableConfig
from pipewarden.config.pii import Redactor, pii_columns
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.records import quarantine as q
from pipewarden.records.pii_salt import redactor

#: A table's source columns and their kinds, or None when the source table is not there.
SourceKinds = Callable[[TableConfig], Mapping[str, ColumnKind] | None]

if TYPE_CHECKING:  # pandera loads with the first schema or column check a table has
    import pandera.polars as pa


@dataclass
class CheckedBatch(GatedBatch):
    """A gated batch that also carries its failures, and each rejected row's reasons as polars."""

    failures: pl.DataFrame = field(default_factory=no_failures)
    reason_lists: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.List(q.REASON)))
    #: Each rejected row's position in the batch (the `row` of its failures).
    rejected_rows: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.UInt32))


_IMPORTING = threading.Lock()
#: A rejected row's position in its batch, while the gate decides what to hold (not a SQL name).
BATCH_ROW = "pipewarden:batch_row"


def load_schema(ref: str, where: str = "schema") -> pa.DataFrameSchema:
    """Import `module.path:ClassName` (a pandera polars DataFrameModel or DataFrameSchema).

    Serialized: tasks of one flow run in threads, and two threads importing modules of one
    package at once can be handed a partially initialized module by Python's import system.
    """
    with _IMPORTING:
        return _load_schema(ref, where)


_OUR_CHECKS = Path(__file__).resolve().parents[1]


def _moved_schema_module(module_name: str, where: str) -> str:
    """Map a configuration written before 0.2 (`checks.schemas.shop`) to the module's name now.

    pipewarden's schemas moved under the `pipewarden` import name; a `checks` package of the
    user's own is left alone, and the mapping is logged, never silent.
    """
    if not module_name.startswith("checks.schemas."):
        return module_name
    spec = importlib.util.find_spec("checks")
    origin = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if spec is not None and origin != _OUR_CHECKS:
        return module_name
    moved = f"pipewarden.{module_name}"
    logging.getLogger(__name__).warning(
        "%s: %r is pipewarden's own schema module, imported as %r since 0.2; write that name",
        where,
        module_name,
        moved,
    )
    return moved


def _load_schema(ref: str, where: str) -> pa.DataFrameSchema:
    import pandera.polars as pa

    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{where}: {ref!r} is not a reference: expected 'module.path:ClassName'")
    module_name = _moved_schema_module(module_name, where)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(f"{where}: cannot import {ref!r}: {error}") from None
    except Exception as error:  # noqa: BLE001 - any failure while importing user code
        raise ConfigError(
            f"{where}: cannot import {ref!r}: {type(error).__name__}: {error}"
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            # Name the file: a module of the user's may share its name with an installed one.
            found = getattr(module, "__file__", None) or module_name
            raise ConfigError(
                f"{where}: cannot import {ref!r}: module has no attribute {part!r} (in {found})"
            ) from None
        target = getattr(target, part)
    if isinstance(target, type) and issubclass(target, pa.DataFrameModel):
        try:
            return target.to_schema()
        except Exception as error:  # noqa: BLE001 - a broken model is a config problem
            raise ConfigError(f"{where}: {ref!r} is not a valid model: {error}") from None
    if isinstance(target, pa.DataFrameSchema):
        return target
    raise ConfigError(
        f"{where}: {ref!r} is a {type(target).__name__}, not a pandera.polars DataFrameModel"
    )


def schema_problems(schema: pa.DataFrameSchema, dtypes: Mapping[str, pl.DataType]) -> list[str]:
    """How a schema does not fit a batch of `dtypes` (missing columns, other types)."""
    from pandera.engines import polars_engine

    problems = []
    for name, column in schema.columns.items():
        if name not in dtypes:
            if column.required:
                problems.append(f"column {name!r} is not in the table")
            continue
        if column.dtype is None:
            continue
        actual = polars_engine.Engine.dtype(dtypes[name])
        if not column.dtype.check(actual):
            problems.append(
                f"column {name!r} is {dtypes[name]} in the table, the schema wants {column.dtype}"
            )
    for key in _unique_columns(schema):
        if key not in dtypes:
            problems.append(f"unique column {key!r} is not in the table")
    if problems:
        problems.append(f"the table has: {', '.join(dtypes)}")
    return problems


def _unique_columns(schema: pa.DataFrameSchema) -> list[str]:
    unique = schema.unique
    return [] if unique is None else [unique] if isinstance(unique, str) else list(unique)


def _table_problems(
    table: TableConfig, schema: pa.DataFrameSchema | None, dtypes: Mapping[str, pl.DataType]
) -> list[str]:
    problems = [f"tables.{table.name}.{p}" for p in rule_problems(table.normalize, dtypes)]
    problems += column_problems(table, dtypes)
    if schema is not None:
        problems += [
            f"tables.{table.name}.schema ({table.schema_ref}): {p}"
            for p in schema_problems(schema, dtypes)
        ]
    return problems


def verify_schema_refs(
    config: PipewardenConfig, *, source_kinds: SourceKinds | None = None
) -> None:
    """Fail at config load when a schema does not import, a normalize step or a column rule is
    unknown, or a column's regex does not compile.

    With `source_kinds` (the sync's `source_kinds`, which reads each source table's columns)
    every schema and normalize rule is also checked against the source's columns; without, that
    check happens when a sync starts.
    """
    problems: list[str] = []
    for name, table in config.tables.items():
        schema = None
        if table.schema_ref:
            try:
                schema = load_schema(table.schema_ref, f"tables.{name}.schema")
            except ConfigError as error:
                problems.append(str(error))
        problems += [f"tables.{name}.{p}" for p in unknown_steps(table.normalize)]
        dtypes = None
        if source_kinds is not None and (schema is not None or table.normalize or table.columns):
            kinds = source_kinds(table)
            if kinds is None:
                problems.append(f"tables.{name}: source table {table.source_table!r} not found")
            else:
                dtypes = {n: k.polars_dtype() for n, k in kinds.items()}
        # With the table's columns known, its checks are judged against them (text included).
        problems += (
            text_problems(table) if dtypes is None else _table_problems(table, schema, dtypes)
        )
    if problems:
        raise ConfigError("invalid checks configuration\n  " + "\n  ".join(problems))


def gate_for(table_config: TableConfig, kinds: Mapping[str, ColumnKind]) -> BatchGate:
    """The gate for one table's batches, whose columns have `kinds` (the warehouse table's).

    A table without checks gets one too: rows the sync cannot carry (`sync.screen`) go to the
    quarantine whatever the configuration.
    """
    checked = any(c.has_checks for c in table_config.columns.values())
    if not table_config.schema_ref and not table_config.normalize and not checked:
        return SchemaGate(None, {}, table_config.primary_key, pii_columns(table_config))
    schema = None
    if table_config.schema_ref:
        schema = load_schema(table_config.schema_ref, f"tables.{table_config.name}.schema")
    dtypes = {n: k.polars_dtype() for n, k in kinds.items()}
    problems = _table_problems(table_config, schema, dtypes)
    if problems:
        raise ConfigError("\n".join(problems))
    if checked:
        schema = with_columns(schema, table_config, dtypes)
    return SchemaGate(
        schema, table_config.normalize, table_config.primary_key, pii_columns(table_config)
    )


class SchemaGate:
    """Normalize, validate lazily, split; keep the rejected rows in the load's transaction.

    The gate lives for one run and remembers the table's held rows (`HeldRows`), so that each
    batch can tell, without a query per row, which held rows it supersedes.
    """

    def __init__(
        self,
        schema: pa.DataFrameSchema | None,
        rules: Mapping[str, Sequence[str]],
        key: Sequence[str],
        pii: frozenset[str] = frozenset(),
    ) -> None:
        self.prepared: PreparedSchema | None = None if schema is None else prepare(schema)
        self.rules = {c: list(s) for c, s in rules.items()}
        self.key = list(key)
        #: Columns whose failing values are stored as hash prefixes (`config.pii`).
        self.pii = pii
        self._held = HeldRows(self.key)

    @property
    def transforms(self) -> bool:
        return self.prepared is not None or bool(self.rules)

    def check(self, batch: pl.DataFrame, failures: pl.DataFrame | None = None) -> CheckedBatch:
        normalized, failures = _with_screen(normalize(batch, self.rules), failures)
        if self.prepared is not None:
            found = validate(self.prepared, normalized)
            if failures.height and found.height:
                # A value that could not be normalized is NULL now: report why, not that.
                found = found.join(
                    failures.select("row", "column"), on=["row", "column"], how="anti"
                )
            failures = pl.concat([failures, found]) if failures.height else found
        if failures.height == 0:
            return CheckedBatch(valid=normalized)
        reasons = reasons_frame(failures)
        bad = pl.int_range(0, pl.len(), dtype=pl.UInt32).is_in(reasons["row"].implode())
        return CheckedBatch(
            valid=normalized.filter(~bad),
            rejected=batch.filter(bad),
            reasons=reasons["reasons"].to_list(),
            failures=failures,
            reason_lists=reasons["reasons"],
            rejected_rows=reasons["row"],
        )

    def keep_rejected(
        self, conn: sa.Connection, table_name: str, run_id: str, gated: GatedBatch
    ) -> int:
        """Hold the rejected rows not already held as they are; returns how many were new.

        A held row read again unchanged (a lookback, a watermark capped before it) is neither
        held nor counted nor reported as a failure again: each bad row counts once.
        """
        rejected = gated.rejected
        if rejected is None:
            rejected = gated.valid.clear()
        new = self._held.incoming(rejected).with_columns(
            _reason_lists(gated).alias("reasons"), _rejected_rows(gated).alias(BATCH_ROW)
        )
        to_hold = self._held.supersede(conn, table_name, run_id, gated.valid, new)
        q.hold(
            conn,
            table_name,
            run_id,
            to_hold.select(
                pl.col(KEY).alias("primary_key"), pl.col(ROW).alias("row_json"), "reasons"
            ),
        )
        self._held.add(to_hold)
        failures = getattr(gated, "failures", None)
        if failures is not None and failures.height and to_hold.height:
            failures = failures.filter(pl.col("row").is_in(to_hold[BATCH_ROW].implode()))
            shown = _shown_examples(failure_groups(failures), redactor(conn, self.pii))
            q.record_failures(conn, run_id, table_name, shown)
        return to_hold.height


def _shown_examples(groups: list[q.FailureGroup], hide: Redactor) -> list[q.FailureGroup]:
    """The examples as they may be stored: customer values as hash prefixes. A NULL, reported
    as "null" (`failure_groups`), is no customer's value and stays."""
    return [
        replace(g, examples=[e if e == "null" else hide.value(g.column, e) for e in g.examples])
        for g in groups
    ]


def _rejected_rows(gated: GatedBatch) -> pl.Series:
    """Each rejected row's position in the batch, in the order of the rejected rows."""
    if isinstance(gated, CheckedBatch) and len(gated.rejected_rows) == gated.rejected_count:
        return gated.rejected_rows.cast(pl.UInt32)
    return pl.int_range(0, gated.rejected_count, dtype=pl.UInt32, eager=True)


def _with_screen(
    normalized: tuple[pl.DataFrame, pl.DataFrame], screened: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The screen's failures first: a value never read is NULL now, and that is not the reason."""
    frame, failures = normalized
    if screened is None or screened.height == 0:
        return frame, failures
    return frame, pl.concat([screened, failures]) if failures.height else screened


def _reason_lists(gated: GatedBatch) -> pl.Series:
    """Each rejected row's reasons as a list of `q.REASON`, in the order of the rejected rows."""
    if isinstance(gated, CheckedBatch) and len(gated.reason_lists) == gated.rejected_count:
        return gated.reason_lists
    texts = [
        [
            {k: None if r.get(k) is None else str(r[k]) for k in ("column", "check", "value")}
            for r in reasons
        ]
        for reasons in gated.reasons
    ]
    return pl.Series(texts, dtype=pl.List(q.REASON))


def failure_groups(failures: pl.DataFrame, examples: int = q.MAX_EXAMPLES) -> list[q.FailureGroup]:
    """Failures grouped by column and check: rows that failed, and a few distinct values."""
    if failures.height == 0:
        return []
    grouped = (
        failures.select(list(FAILURE_SCHEMA))
        .group_by("column", "check")
        .agg(
            pl.col("row").n_unique().alias("failures"),
            pl.col("value").fill_null("null").unique(maintain_order=True).head(examples),
        )
        .sort("failures", "column", "check", descending=[True, False, False])
    )
    return [
        q.FailureGroup(r["column"], r["check"], r["failures"], r["value"])
        for r in grouped.iter_rows(named=True)
    ]
