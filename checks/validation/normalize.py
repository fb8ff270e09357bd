"""Named normalization steps, applied to a batch before validation, as polars expressions.

A table's config names steps per column (`normalize: {email: [email], signup_date:
[empty_to_null, timestamp_utc]}`); they run in order, vectorized over the whole batch. A step
never changes a column's type, so the normalized batch loads into the same warehouse table.

A value a step cannot normalize (a date in no known format, a phone number with letters) does not
raise: it becomes NULL in the normalized batch and a failure of that row, reported with the
original value under the check `normalize.<step>`. NULL in, NULL out, never a failure: whether a
column may be NULL is the schema's call.

Timestamps (`timestamp_utc`) accept, in this order:
- ISO 8601 with an offset or `Z` (`2024-03-05T14:30:00+02:00`, `2024-03-05 14:30:00.5+0200`);
- ISO 8601 without an offset, read as UTC (`2024-03-05T14:30:00`, `2024-03-05 14:30`);
- a date `YYYY-MM-DD` (midnight UTC);
- `DD/MM/YYYY` and `DD.MM.YYYY` (day first: the European CRM exports write dates this way);
- `MM/DD/YYYY HH:MM[:SS]` (month first: the US shop exports write date-times this way);
- epoch seconds (9 or 10 digits).
The day/month rule for slashes: a date alone is day first, a date with a time is month first;
when that reading is impossible (a 13th month) the other order is tried, so `13/05/2024 14:30` is
13 May. Text columns get ISO 8601 text in UTC back (`2024-03-05T12:30:00+00:00`, microseconds only
when present); timestamp columns are converted to UTC.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

#: A step's expression for the new value, and one that is False where the value could not be
#: normalized (None when the step cannot fail).
StepResult = tuple[pl.Expr, pl.Expr | None]


@dataclass(frozen=True)
class Step:
    """A named, vectorized normalization."""

    name: str
    apply: Callable[[pl.Expr, pl.DataType], StepResult]
    accepts: Callable[[pl.DataType], bool]
    doc: str


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String


def _text_or_timestamp(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Datetime)


def _text_or_number(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Decimal) or dtype.is_float()


def _failed_where(value: pl.Expr, original: pl.Expr) -> pl.Expr:
    """ok is False where there was a value and none came out."""
    return original.is_null() | value.is_not_null()


def _trim(c: pl.Expr, _: pl.DataType) -> StepResult:
    return c.str.strip_chars(), None


def _lower(c: pl.Expr, _: pl.DataType) -> StepResult:
    return c.str.to_lowercase(), None


def _upper(c: pl.Expr, _: pl.DataType) -> StepResult:
    return c.str.to_uppercase(), None


def _empty_to_null(c: pl.Expr, _: pl.DataType) -> StepResult:
    return pl.when(c.str.strip_chars() == "").then(None).otherwise(c), None


_NULL_TOKENS = ["", "n/a", "na", "null", "none", "-", "?", "unknown"]


def _null_tokens(c: pl.Expr, _: pl.DataType) -> StepResult:
    token = c.str.strip_chars().str.to_lowercase().is_in(_NULL_TOKENS)
    return pl.when(token).then(None).otherwise(c), None


def _collapse_spaces(c: pl.Expr, _: pl.DataType) -> StepResult:
    return c.str.replace_all(r"\s+", " ").str.strip_chars(), None


def _email(c: pl.Expr, _: pl.DataType) -> StepResult:
    return c.str.strip_chars().str.strip_prefix("mailto:").str.to_lowercase(), None


# "UK" is the one alias CRMs write for an ISO code (GB); "EL" is the EU's code for Greece.
_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}
_CURRENCY_ALIASES = {"€": "EUR", "£": "GBP"}


def _code(c: pl.Expr, aliases: Mapping[str, str]) -> pl.Expr:
    # One hash lookup per value: a when/then chain would compute the upper-cased text per branch.
    return c.str.strip_chars().str.to_uppercase().replace({"": None, **aliases})


def _country_code(c: pl.Expr, _: pl.DataType) -> StepResult:
    return _code(c, _COUNTRY_ALIASES), None


def _currency_code(c: pl.Expr, _: pl.DataType) -> StepResult:
    return _code(c, _CURRENCY_ALIASES), None


def _phone_digits(c: pl.Expr, _: pl.DataType) -> StepResult:
    """`+49 (151) 123-45 67` → `+491511234567`; `0049…` → `+49…`; letters fail."""
    compact = c.str.replace_all(r"[\s().\-/]", "").str.replace(r"^00", "+")
    compact = pl.when(compact == "").then(None).otherwise(compact)
    value = pl.when(compact.str.contains(r"^\+?\d{5,15}$")).then(compact)
    return value, _failed_where(value, compact)


def _parse_timestamp(c: pl.Expr) -> pl.Expr:
    text = c.str.strip_chars()
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ ]", "${1}T").str.replace(r"[Zz]$", "+00:00")
    naive = [
        (iso, "%Y-%m-%dT%H:%M:%S%.f"),
        (iso, "%Y-%m-%dT%H:%M"),
        (text, "%Y-%m-%d"),
        (text, "%d/%m/%Y"),
        (text, "%m/%d/%Y"),
        (text, "%d.%m.%Y"),
        (text, "%m/%d/%Y %H:%M"),
        (text, "%m/%d/%Y %H:%M:%S"),
        (text, "%d/%m/%Y %H:%M"),
        (text, "%d/%m/%Y %H:%M:%S"),
    ]
    candidates = [
        iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us"),
        iso.str.to_datetime("%Y-%m-%dT%H:%M%z", strict=False, time_unit="us"),
    ]
    candidates = [x.dt.convert_time_zone("UTC") for x in candidates]
    candidates += [
        t.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        for t, f in naive
    ]
    epoch = pl.when(text.str.contains(r"^\d{9,10}$")).then(
        pl.from_epoch(text.cast(pl.Int64, strict=False), time_unit="s").dt.replace_time_zone("UTC")
    )
    return pl.coalesce(*candidates, epoch)


def iso_text(ts: pl.Expr) -> pl.Expr:
    """ISO 8601 in UTC as Python's isoformat writes it: microseconds only when present."""
    whole = ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    fraction = ts.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    return pl.when(ts.dt.microsecond() == 0).then(whole).otherwise(fraction)


def _timestamp_utc(c: pl.Expr, dtype: pl.DataType) -> StepResult:
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return c.dt.replace_time_zone("UTC").cast(dtype), None
        return c.dt.convert_time_zone("UTC").dt.convert_time_zone(dtype.time_zone), None
    blank = c.str.strip_chars() == ""
    parsed = _parse_timestamp(c)
    value = pl.when(blank).then(None).otherwise(iso_text(parsed))
    return value, c.is_null() | blank | parsed.is_not_null()


def _decimal_2(c: pl.Expr, dtype: pl.DataType) -> StepResult:
    """An amount with at most two decimals; `1,234.5` and `12,5` are read, `12.345` fails."""
    if isinstance(dtype, pl.Decimal):
        exact: pl.Expr = pl.when(c == c.round(2)).then(c)
        return exact, _failed_where(exact, c)
    if dtype.is_float():
        cents = (c * 100).round(0)
        near: pl.Expr = pl.when(((c * 100) - cents).abs() < 1e-6).then(cents / 100)
        return near, _failed_where(near, c)
    text = c.str.strip_chars().str.replace_all(r"[\s_]", "")
    text = (
        pl.when(text.str.contains(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$"))
        .then(text.str.replace_all(",", ""))
        .when(text.str.contains(r"^-?\d+,\d{1,2}$"))
        .then(text.str.replace(",", "."))
        .otherwise(text)
    )
    parsed: pl.Expr = pl.when(text.str.contains(r"^-?\d+(\.\d+)?$")).then(
        text.cast(pl.Decimal(38, 10), strict=False)
    )
    two = pl.when(parsed == parsed.round(2)).then(parsed.cast(pl.Decimal(38, 2)).cast(pl.String))
    value = pl.when(text == "").then(None).otherwise(two)
    return value, c.is_null() | (text == "") | two.is_not_null()


STEPS: dict[str, Step] = {
    s.name: s
    for s in [
        Step("trim", _trim, _is_text, "strip surrounding whitespace"),
        Step("lower", _lower, _is_text, "lower-case"),
        Step("upper", _upper, _is_text, "upper-case"),
        Step("empty_to_null", _empty_to_null, _is_text, "'' and blanks become NULL"),
        Step("null_tokens", _null_tokens, _is_text, "'', N/A, null, none, -, ? become NULL"),
        Step("collapse_spaces", _collapse_spaces, _is_text, "runs of whitespace become one"),
        Step("email", _email, _is_text, "trim, drop mailto:, lower-case"),
        Step("country_code", _country_code, _is_text, "trim, upper-case, UK→GB, ''→NULL"),
        Step("currency_code", _currency_code, _is_text, "trim, upper-case, €→EUR, ''→NULL"),
        Step("phone_digits", _phone_digits, _is_text, "+ and digits only; fails on letters"),
        Step("timestamp_utc", _timestamp_utc, _text_or_timestamp, "see module docstring"),
        Step("decimal_2", _decimal_2, _text_or_number, "at most two decimals; fails beyond"),
    ]
}


class NormalizeConfigError(ValueError):
    """A rule names an unknown step, a missing column, or a step the column's type cannot take."""


def rule_problems(
    rules: Mapping[str, Sequence[str]], schema: Mapping[str, pl.DataType]
) -> list[str]:
    """Everything wrong with `rules` for a batch of `schema`; empty when they can run."""
    problems = []
    for column, steps in rules.items():
        if column not in schema:
            problems.append(f"normalize.{column}: no such column")
            continue
        for name in steps:
            step = STEPS.get(name)
            if step is None:
                problems.append(
                    f"normalize.{column}: unknown step {name!r} (known: {', '.join(sorted(STEPS))})"
                )
            elif not step.accepts(schema[column]):
                problems.append(
                    f"normalize.{column}: step {name!r} cannot apply to {schema[column]}"
                )
    return problems


def unknown_steps(rules: Mapping[str, Sequence[str]]) -> list[str]:
    """Step names not in STEPS (checked without knowing the table's columns)."""
    return [
        f"normalize.{c}: unknown step {s!r}"
        for c, ss in rules.items()
        for s in ss
        if s not in STEPS
    ]


_FAIL = "__pw_failed_step_"


def normalize(
    batch: pl.DataFrame, rules: Mapping[str, Sequence[str]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The normalized batch, and a frame of failures `(row, column, check, value)`.

    `row` is the position in `batch`; `value` the original value as text.
    """
    if not rules:
        return batch, _no_failures()
    problems = rule_problems(rules, batch.schema)
    if problems:
        raise NormalizeConfigError("; ".join(problems))
    frame = batch.lazy().with_columns(pl.lit(None, pl.String).alias(_FAIL + c) for c in rules)
    depth = max(len(steps) for steps in rules.values())
    for i in range(depth):
        exprs: list[pl.Expr] = []
        for column, steps in rules.items():
            if i >= len(steps):
                continue
            dtype = batch.schema[column]
            value, ok = STEPS[steps[i]].apply(pl.col(column), dtype)
            exprs.append(value.cast(dtype).alias(column))
            if ok is not None:
                flag = pl.col(_FAIL + column)
                failed = pl.when(flag.is_null() & ~ok).then(pl.lit(f"normalize.{steps[i]}"))
                exprs.append(failed.otherwise(flag).alias(_FAIL + column))
        frame = frame.with_columns(exprs)
    out = frame.collect()
    flags = out.select(_FAIL + c for c in rules)
    normalized = out.drop(flags.columns)
    if not any(flags[c].null_count() < flags.height for c in flags.columns):
        return normalized, _no_failures()
    failures = [
        pl.DataFrame(
            {
                "row": pl.int_range(0, batch.height, dtype=pl.UInt32, eager=True),
                "check": flags[_FAIL + c],
                "value": batch[c].cast(pl.String),
            }
        )
        .filter(pl.col("check").is_not_null())
        .select("row", pl.lit(c).alias("column"), "check", "value")
        for c in rules
    ]
    return normalized, pl.concat(failures)


def _no_failures() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"row": pl.UInt32, "column": pl.String, "check": pl.String, "value": pl.String}
    )
