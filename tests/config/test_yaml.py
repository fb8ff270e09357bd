"""pipewarden.yaml is parsed by libyaml when PyYAML has it: the same data and the same error
messages as PyYAML's Python parser."""

from pathlib import Path

import pytest
import yaml

from pipewarden.config import ConfigError
from pipewarden.config.load import _LOADER, _parse_yaml

#: What a configuration file may hold: anchors and merges, every scalar the resolver types
#: (YAML 1.1 booleans, octal and sexagesimal numbers, dates, timestamps, nulls), block and
#: folded text, flow collections, quoting and escapes, comments, non-ASCII.
TRICKY = """\
defaults: &defaults {lookback: 10m, schedule: hourly}
tables:
  orders:
    <<: *defaults
    primary_key: [order_id, "line"]
    cursor: updated_at
    flags: [yes, No, on, OFF, true, ~, null, '']
    numbers: [0o17, 017, 0x1F, 1_000, 1:30, 3.5e2, .inf, -.Inf, .nan, +12]
    dates: [2026-12-04, 2026-12-04 23:59:59.5+01:00, 2026-12-04T01:02:03Z]
    query: |
      SELECT *
        FROM orders  -- kept as written
    folded: >-
      one
      two
    quoted: "tab\\there \\u00e9 \\x41"
    single: 'it''s'
    owner: "#crm-data"   # a comment
    naïve: ünïcode
empty:
"""


def test_the_fast_parser_is_libyaml_where_pyyaml_has_it():
    assert _LOADER is (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)


def test_the_data_is_the_python_parsers_to_the_value_and_type():
    parsed = _parse_yaml(TRICKY, Path("pipewarden.yaml"))
    expected = yaml.safe_load(TRICKY)
    assert repr(parsed) == repr(expected)  # repr: types too, and nan == nan
    assert parsed["tables"]["orders"]["lookback"] == "10m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\nb: 3\n", "(line 2, column 2): expected ',' or ']', but got ':'"),
        ("x: @foo\n", "(line 1, column 4): found character '@' that cannot start any token"),
        ("- a\nb: 1\n", "(line 2, column 1): expected <block end>, but found '?'"),
    ],
)
def test_a_syntax_error_is_described_in_the_python_parsers_words(text, message):
    """libyaml says `found character that cannot start any token`; the Python parser names the
    character, as the message always did."""
    with pytest.raises(ConfigError) as raised:
        _parse_yaml(text, Path("pipewarden.yaml"))
    assert str(raised.value) == f"pipewarden.yaml {message}"
