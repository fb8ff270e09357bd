"""Check expressions the table schemas share: one place for what "valid" means per kind of value.

Each returns a polars expression that is True for a valid value. NULL passes: whether a column may
be NULL is the field's `nullable`, reported once as `not_nullable` rather than twice.
"""

from datetime import UTC, datetime, timedelta

import polars as pl

from pipewarden.checks.schemas.codes import COUNTRIES, CURRENCIES

#: How far ahead of the checking machine's clock a timestamp may be: source clocks drift.
FUTURE_TOLERANCE = timedelta(minutes=10)

# Local part as RFC 5322 allows without quoting; domain labels of letters, digits and hyphens.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,}$"
)
ISO_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


def _or_null(column: str, valid: pl.Expr) -> pl.Expr:
    return pl.col(column).is_null() | valid


def email(column: str) -> pl.Expr:
    c = pl.col(column)
    return _or_null(column, c.str.contains(EMAIL_PATTERN) & ~c.str.contains(r"\.\.", literal=False))


def country(column: str) -> pl.Expr:
    return _or_null(column, pl.col(column).is_in(sorted(COUNTRIES)))


def currency(column: str) -> pl.Expr:
    return _or_null(column, pl.col(column).is_in(sorted(CURRENCIES)))


def one_of(column: str, allowed: list[str]) -> pl.Expr:
    return _or_null(column, pl.col(column).is_in(allowed))


def non_negative(column: str) -> pl.Expr:
    return _or_null(column, pl.col(column) >= 0)


def two_decimals(column: str) -> pl.Expr:
    c = pl.col(column)
    return _or_null(column, c == c.round(2))


def now_limit() -> datetime:
    """The latest acceptable timestamp, taken when a batch is checked, not when imported."""
    return datetime.now(UTC) + FUTURE_TOLERANCE


def not_in_future(column: str) -> pl.Expr:
    return _or_null(column, pl.col(column) <= pl.lit(now_limit(), dtype=pl.Datetime("us", "UTC")))


def iso_timestamp_not_in_future(column: str) -> pl.Expr:
    """ISO 8601 text (what `timestamp_utc` writes) that is not in the future."""
    c = pl.col(column)
    offset = c.str.replace(r"Z$", "+00:00")  # `%:z` reads +00:00, not the Z the pattern allows
    parsed = offset.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us")
    limit = pl.lit(now_limit(), dtype=pl.Datetime("us", "UTC"))
    # Text the parser refuses is invalid: a NULL verdict would let the row pass.
    in_past = (parsed <= limit).fill_null(False)
    return _or_null(column, c.str.contains(ISO_TIMESTAMP_PATTERN) & in_past)


def not_after(earlier: str, later: str) -> pl.Expr:
    """`earlier <= later`, passing when either is NULL."""
    a, b = pl.col(earlier), pl.col(later)
    return a.is_null() | b.is_null() | (a <= b)


def json_object(column: str) -> pl.Expr:
    """JSON text whose top level is an object (`json_path_match` is NULL for invalid JSON)."""
    c = pl.col(column)
    return _or_null(column, c.str.contains(r"^\s*\{") & c.str.json_path_match("$").is_not_null())


def url_or_path(column: str) -> pl.Expr:
    """An absolute http(s) URL, or a path on the site (`/sale`) as web trackers record it."""
    return _or_null(column, pl.col(column).str.contains(r"^(https?://[^\s/]+)?(/\S*)?$"))
