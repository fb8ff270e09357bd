"""The test's macro expansion says what Grafana's documentation says it does."""

from datetime import UTC, datetime

import pytest

from tests.fixtures.grafana_sql import TimeRange, expand

RANGE = TimeRange(
    datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC), datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC)
)


def test_macros_expand_as_grafanas_postgresql_documentation_shows():
    sql = "SELECT $__timeGroupAlias(t, '5m'), $__timeGroup(t, $__interval) WHERE $__timeFilter(t)"
    assert expand(sql, {}, RANGE, interval="1h") == (
        'SELECT floor(extract(epoch from t)/300)*300 AS "time", '
        "floor(extract(epoch from t)/3600)*3600 "
        "WHERE t BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"
    )
    assert expand("$__timeFrom() $__timeTo()", {}, RANGE) == (
        "'2017-04-21T05:01:17Z' '2017-04-21T05:06:17Z'"
    )


def test_a_multi_value_variable_becomes_quoted_literals_in_every_form():
    sql = "IN ($table) OR x IN (${table}) OR y IN ([[table]]) OR z = $tables"
    out = expand(sql, {"table": ["orders", "o'brien"], "tables": ["a"]}, RANGE)
    assert out == (
        "IN ('orders','o''brien') OR x IN ('orders','o''brien') OR y IN ('orders','o''brien')"
        " OR z = 'a'"
    )


@pytest.mark.parametrize(
    "sql", ["WHERE t IN ($unknown)", "$__unixEpochFilter(t)", "WHERE ${other}", "[[x]]"]
)
def test_anything_left_unexpanded_is_an_error(sql):
    with pytest.raises(ValueError):
        expand(sql, {"table": ["orders"]}, RANGE)
