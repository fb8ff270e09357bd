"""Normalization steps: values they fix, values they cannot (a row failure, never an exception)."""

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from pipewarden.checks.validation.normalize import (
    NormalizeConfigError,
    normalize,
    rule_problems,
    unknown_steps,
)

TEXT = pl.String()


def run(values: list, steps: list[str], dtype: pl.DataType = TEXT):  # type: ignore[no-untyped-def]
    batch = pl.DataFrame({"v": values}, schema={"v": dtype})
    out, failures = normalize(batch, {"v": steps})
    assert out.schema == batch.schema  # a step never changes the column's type
    return out["v"].to_list(), failures


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-03-05T14:30:00+02:00", "2024-03-05T12:30:00+00:00"),
        ("2024-03-05T14:30:00Z", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05 14:30:00-0500", "2024-03-05T19:30:00+00:00"),
        ("2024-03-05T14:30:00.250+01:00", "2024-03-05T13:30:00.250000+00:00"),
        ("2024-03-05T14:30:00", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05 14:30", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05", "2024-03-05T00:00:00+00:00"),
        ("05/03/2024", "2024-03-05T00:00:00+00:00"),  # a date alone: day first
        ("05.03.2024", "2024-03-05T00:00:00+00:00"),
        ("03/05/2024 14:30", "2024-03-05T14:30:00+00:00"),  # with a time: month first
        ("13/05/2024 14:30", "2024-05-13T14:30:00+00:00"),  # no 13th month: day first
        ("05/13/2024", "2024-05-13T00:00:00+00:00"),  # no 13th month: month first
        ("1709596800", "2024-03-05T00:00:00+00:00"),
        ("  2024-03-05  ", "2024-03-05T00:00:00+00:00"),
    ],
)
def test_timestamp_formats_become_iso_utc(text, iso):
    values, failures = run([text], ["timestamp_utc"])
    assert values == [iso] and failures.height == 0


def test_unparseable_timestamps_fail_their_row_with_the_original_value():
    values, failures = run(["2024-03-05", "not a date", "31/02/2024", None, ""], ["timestamp_utc"])
    assert values == ["2024-03-05T00:00:00+00:00", None, None, None, None]
    assert failures.rows() == [
        (1, "v", "normalize.timestamp_utc", "not a date"),
        (2, "v", "normalize.timestamp_utc", "31/02/2024"),
    ]


def test_timestamp_columns_are_converted_to_utc():
    moment = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    values, failures = run([moment], ["timestamp_utc"], pl.Datetime("us", "UTC"))
    assert values == [moment] and failures.height == 0


def test_text_steps():
    assert run([" A@B.Com ", "mailto:X@Y.ORG"], ["email"])[0] == ["a@b.com", "x@y.org"]
    assert run([" de", "uk", "", None], ["country_code"])[0] == ["DE", "GB", None, None]
    assert run(["eur ", "€", "usd"], ["currency_code"])[0] == ["EUR", "EUR", "USD"]
    assert run(["", "  ", "x"], ["empty_to_null"])[0] == [None, None, "x"]
    assert run(["N/A", "null", "-", "ok"], ["null_tokens"])[0] == [None, None, None, "ok"]
    assert run(["  a   b  "], ["collapse_spaces"])[0] == ["a b"]
    assert run([" Ab "], ["trim", "upper"])[0] == ["AB"]
    assert run(["Ab"], ["lower"])[0] == ["ab"]


def test_phone_digits():
    values, failures = run(["+49 (151) 123-45 67", "0049 30 1234567", "call me"], ["phone_digits"])
    assert values == ["+491511234567", "+49301234567", None]
    assert failures.rows() == [(2, "v", "normalize.phone_digits", "call me")]


def test_decimal_2_on_text_numbers_and_decimals():
    values, failures = run(["12.5", "1,234.50", "12,5", "12.340", "12.345", "abc"], ["decimal_2"])
    assert values == ["12.50", "1234.50", "12.50", "12.34", None, None]
    assert [r[3] for r in failures.rows()] == ["12.345", "abc"]
    exact = [Decimal("1.230"), Decimal("1.235")]
    values, failures = run(exact, ["decimal_2"], pl.Decimal(12, 3))
    assert values == [Decimal("1.230"), None] and failures["value"].to_list() == ["1.235"]


def test_only_the_first_failing_step_is_reported():
    batch = pl.DataFrame({"d": ["garbage"], "p": ["x"]})
    _, failures = normalize(batch, {"d": ["trim", "timestamp_utc"], "p": ["phone_digits"]})
    assert failures.rows() == [
        (0, "d", "normalize.timestamp_utc", "garbage"),
        (0, "p", "normalize.phone_digits", "x"),
    ]


def test_rules_that_cannot_run_are_reported_not_guessed():
    schema = {"n": pl.Int64(), "s": pl.String()}
    assert rule_problems({"n": ["lower"], "s": ["shout"], "x": ["trim"]}, schema) == [
        "normalize.n: step 'lower' cannot apply to Int64",
        "normalize.s: unknown step 'shout' (known: collapse_spaces, country_code, currency_code, "
        "decimal_2, email, empty_to_null, lower, null_tokens, phone_digits, timestamp_utc, trim, "
        "upper)",
        "normalize.x: no such column",
    ]
    assert unknown_steps({"s": ["trim", "shout"]}) == ["normalize.s: unknown step 'shout'"]
    with pytest.raises(NormalizeConfigError):
        normalize(pl.DataFrame({"n": [1]}), {"n": ["lower"]})


def test_a_million_rows_normalize_without_python_per_row():
    batch = pl.DataFrame({"c": ["eur", " usd", "GBP", "x"] * 250_000})
    out, failures = normalize(batch, {"c": ["currency_code"]})
    assert out["c"].head(4).to_list() == ["EUR", "USD", "GBP", "X"] and failures.height == 0
