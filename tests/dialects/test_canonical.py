"""The Python reference of the canonical form (SQLite functions, Python columns)."""

import struct
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from pipewarden.dialects.canonical import (
    ColumnSpec,
    decimal_text,
    float_text,
    json_text,
    md5_hash64,
    python_part,
    time_text,
    timestamp_text,
)
from pipewarden.dialects.kinds import ColumnKind

TEXT = ColumnSpec("t", ColumnKind("text"))


def test_decimals_are_fixed_at_the_scale_without_negative_zero():
    assert decimal_text(Decimal("-0.00"), 2) == "0.00"
    assert decimal_text("-0.0000000000", 10) == "0.0000000000"
    assert decimal_text(Decimal("1.5"), 2) == "1.50"
    big = "-1234567890123456789012345678.1234567890"
    assert decimal_text(Decimal(big), 10) == big
    assert decimal_text(Decimal("1.500"), None) == "1.5"
    assert decimal_text(0.1, 10) == "0.1000000000"  # a float converts exactly, then rounds


def test_floats_are_exact_with_specials_and_no_negative_zero():
    assert float_text(-0.0) == "0"
    assert float_text(0.1) == "0.1"
    assert float_text(0.1 + 0.2) == "0.30000000000000004"  # not 0.3: a different double
    assert float_text(1e20) == "1e+20"
    assert float_text(-1.5e-10) == "-1.5e-10"
    assert float_text(5e-324) == "5e-324"
    assert [float_text(v) for v in ("nan", "inf", "-inf")] == ["NaN", "Infinity", "-Infinity"]


def test_single_floats_compare_as_float32():
    widened = struct.unpack("<f", struct.pack("<f", 0.1))[0]  # 0.10000000149011612
    assert float_text(widened, single=True) == float_text(0.1, single=True) == "0.1"
    assert float_text(16777217.0, single=True) == float_text(16777216.0, single=True)
    assert float_text(1e-45, single=True) == "1e-45"
    assert float_text(-0.0, single=True) == "0"
    assert float_text(float("nan"), single=True) == "NaN"


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_single_float_texts_read_back_as_the_same_float32(number):
    text = float_text(number, single=True)
    assert text is not None
    assert struct.pack("<f", float(text)) == struct.pack("<f", number + 0.0)


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_float_texts_differ_exactly_when_the_doubles_differ(left, right):
    assert (float_text(left) == float_text(right)) == (left == right)


def test_timestamps_are_utc_and_truncated_to_the_declared_precision():
    moment = datetime(2024, 1, 1, 12, 0, 0, 750000, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp_text(moment, 6) == "2024-01-01 10:00:00.75"
    assert timestamp_text(moment, 0) == "2024-01-01 10:00:00"  # truncated, never rounded up
    assert timestamp_text("2024-01-01 10:00:00.000000", 6) == "2024-01-01 10:00:00"
    assert timestamp_text(datetime(2024, 1, 1, 10, 0, 0, 999999, tzinfo=UTC), 3) == (
        "2024-01-01 10:00:00.999"
    )
    assert time_text(time(23, 59, 59, 500000), 0) == "23:59:59"


def test_json_sorts_keys_and_normalizes_numbers():
    assert json_text('{"b": 1, "a": [1.0, {"z": null, "y": "ü"}]}') == (
        '{"a":[1,{"y":"ü","z":null}],"b":1}'
    )
    assert json_text('{"a": 1e2}') == json_text('{"a": 100}')
    assert json_text('{"a": [1, 2]}') != json_text('{"a": [2, 1]}')


def test_the_hash_is_md5s_first_64_bits():
    # md5("") = d41d8cd98f00b204e9800998ecf8427e
    assert md5_hash64("") & ((1 << 64) - 1) == 0xD41D8CD98F00B204


@given(
    st.lists(st.none() | st.text(), min_size=3, max_size=3),
    st.lists(st.none() | st.text(), min_size=3, max_size=3),
)
def test_two_different_rows_never_share_a_canonical_string(left, right):
    def encode(row: list[str | None]) -> str:
        return "|".join(python_part(v, TEXT) for v in row)

    assert (encode(left) == encode(right)) == (left == right)
