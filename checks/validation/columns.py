"""Column checks written in YAML (`columns:` of a table), compiled to a Pandera polars schema.

What an analyst writes as in Soda or Great Expectations:

    columns:
      email: {nullable: false, unique: true, max_length: 254, rules: [email]}
      status: {in: [paid, shipped, refunded]}
      amount: {between: [0, 10000], rules: [two_decimals]}
      sku: {regex: '^[A-Z]{3}-\\d+$'}

becomes the checks a Python model would hold (Pandera's own `isin`, `in_range`, `str_contains`,
`str_length`, and the named rules of `pipewarden.checks.schemas.rules` under the names the
shipped models give them), so a failing row is quarantined with the same reason either way.
With `schema:` too, the YAML adds its checks to the model's columns (and `nullable` overrides
the model's).

A check's fitness for its column's type is known only once the table is reflected; what can be
judged from the text alone (a rule's name, a regex) is checked when the configuration loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from pipewarden.checks.schemas import rules
from pipewarden.config.models import ColumnChecks, TableConfig
from pipewarden.records.values import utc

if TYPE_CHECKING:  # pandera loads when a table's checks are built, not with the sync
    import pandera.polars as pa
    from pandera.api.polars.types import PolarsData

#: Longest check name kept whole; a longer one (a long `in` list) is shortened: reasons are
#: grouped and stored by it.
MAX_CHECK_NAME = 100


@dataclass(frozen=True)
class NamedRule:
    """A rule an analyst names; `check` is the name its failures carry."""

    check: str
    expression: Callable[[str], pl.Expr]
    accepts: Callable[[pl.DataType], bool]
    applies_to: str


def _text(dtype: pl.DataType) -> bool:
    return dtype == pl.String


def _number(dtype: pl.DataType) -> bool:
    return dtype.is_numeric()


def _instant(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Datetime)


def _ordered(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype.is_temporal() or dtype == pl.String


NAMED_RULES: dict[str, NamedRule] = {
    "email": NamedRule("email_syntax", rules.email, _text, "text"),
    "iso_country": NamedRule("iso_country", rules.country, _text, "text"),
    "iso_currency": NamedRule("iso_currency", rules.currency, _text, "text"),
    "url": NamedRule("url_syntax", rules.url_or_path, _text, "text"),
    "json_object": NamedRule("json_object", rules.json_object, _text, "text"),
    "iso_timestamp_not_in_future": NamedRule(
        "iso_timestamp_not_in_future", rules.iso_timestamp_not_in_future, _text, "text"
    ),
    "non_negative": NamedRule("non_negative", rules.non_negative, _number, "number"),
    "two_decimals": NamedRule("two_decimals", rules.two_decimals, _number, "number"),
    "not_in_future": NamedRule("not_in_future", rules.not_in_future, _instant, "timestamp"),
}


def text_problems(table: TableConfig) -> list[str]:
    """What is wrong with a table's `columns:` without knowing the table: unknown rules,
    regular expressions polars cannot compile."""
    problems = []
    for column, spec in table.columns.items():
        where = f"tables.{table.name}.columns.{column}"
        for name in spec.rules:
            if name not in NAMED_RULES:
                known = ", ".join(sorted(NAMED_RULES))
                problems.append(f"{where}.rules: unknown rule {name!r} (known: {known})")
        if spec.regex is not None:
            try:
                pl.Series([""], dtype=pl.String).str.contains(spec.regex)
            except pl.exceptions.PolarsError as error:
                reason = str(error).split("\n\nThis error occurred")[0].strip()
                problems.append(f"{where}.regex: {spec.regex!r} is not a valid regex: {reason}")
    return problems


def table_problems(table: TableConfig, dtypes: Mapping[str, pl.DataType]) -> list[str]:
    """What does not fit the table as read: unknown columns, checks of another type."""
    problems = text_problems(table)
    for column, spec in table.columns.items():
        where = f"tables.{table.name}.columns.{column}"
        if column not in dtypes:
            problems.append(
                f"{where}: no such column in source table {table.source_table!r} "
                f"(it has: {', '.join(dtypes)})"
            )
            continue
        dtype = dtypes[column]
        for name in spec.rules:
            rule = NAMED_RULES.get(name)
            if rule is not None and not rule.accepts(dtype):
                problems.append(
                    f"{where}.rules: {name!r} applies to {rule.applies_to} columns; "
                    f"{column} is {dtype}"
                )
        for key in ("regex", "max_length"):
            if getattr(spec, key) is not None and not _text(dtype):
                problems.append(f"{where}.{key}: applies to text columns; {column} is {dtype}")
        if spec.between is not None and not _ordered(dtype):
            problems.append(f"{where}.between: {column} is {dtype}, which has no order")
        try:
            _column_checks(spec, dtype)
        except (TypeError, ValueError) as error:
            problems.append(f"{where}: {error}")
    return problems


def with_columns(
    schema: pa.DataFrameSchema | None,
    table: TableConfig,
    dtypes: Mapping[str, pl.DataType],
) -> pa.DataFrameSchema:
    """The table's schema with its YAML column checks added (a schema of them alone if none)."""
    import pandera.polars as pa

    base = schema if schema is not None else pa.DataFrameSchema(name=f"tables.{table.name}")
    for column, spec in table.columns.items():
        if not spec.has_checks:  # `pii: true` alone
            continue
        checks = _column_checks(spec, dtypes[column])
        existing = base.columns.get(column)
        if existing is None:
            nullable = True if spec.nullable is None else spec.nullable
            added = pa.Column(None, nullable=nullable, unique=spec.unique, checks=checks)
            base = base.add_columns({column: added})
            continue
        changes: dict[str, Any] = {"checks": [*existing.checks, *checks]}
        if spec.nullable is not None:
            changes["nullable"] = spec.nullable
        if spec.unique:
            changes["unique"] = True
        base = base.update_column(column, **changes)
    return base


def _column_checks(spec: ColumnChecks, dtype: pl.DataType) -> list[pa.Check]:
    import pandera.polars as pa

    checks: list[pa.Check] = []
    if spec.in_ is not None:
        values = [_bound(v, dtype) for v in spec.in_]
        checks.append(pa.Check.isin(values, error=_short(f"isin({values!r})", len(values))))
    if spec.between is not None:
        low, high = (_bound(v, dtype) for v in spec.between)
        if low is not None and high is not None:
            checks.append(pa.Check.in_range(low, high))
        elif low is not None:
            checks.append(pa.Check.ge(low))
        elif high is not None:
            checks.append(pa.Check.le(high))
    if spec.regex is not None:
        checks.append(pa.Check.str_contains(spec.regex))
    if spec.max_length is not None:
        checks.append(pa.Check.str_length(max_value=spec.max_length))
    checks += [_named(NAMED_RULES[name]) for name in spec.rules if name in NAMED_RULES]
    return checks


def _named(rule: NamedRule) -> pa.Check:
    import pandera.polars as pa

    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rule.expression(data.key))

    return pa.Check(check, name=rule.check)


def _bound(value: Any, dtype: pl.DataType) -> Any:
    """A YAML value as the column compares with it: dates and instants for time columns."""
    if value is None:
        return None
    if isinstance(dtype, pl.Datetime):
        moment = value if isinstance(value, datetime) else None
        if moment is None and isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        if moment is None:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                raise ValueError(f"{value!r} is not a date or an ISO 8601 instant") from None
        return utc(moment)
    if dtype == pl.Date and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if dtype.is_numeric() and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise TypeError(f"{value!r} is not a number, and the column is {dtype}")
    if dtype == pl.String and not isinstance(value, str):
        return str(value)
    return value


def _short(name: str, count: int) -> str:
    return name if len(name) <= MAX_CHECK_NAME else f"isin({count} values)"
