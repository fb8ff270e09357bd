"""Segment rules as SQL: `r >= 4 and f >= 4` over the scored columns, first match wins."""

import operator
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from pipewarden.config.profiles import SegmentRule, parse_rule

_OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def rule_condition(
    text: str, columns: Mapping[str, sa.ColumnElement[Any]]
) -> sa.ColumnElement[bool]:
    """The rule as a condition on `columns` (names r, f, m, frequency, monetary)."""
    return sa.or_(
        *(
            sa.and_(*(_OPERATORS[op](columns[name], value) for name, op, value in alternative))
            for alternative in parse_rule(text)
        )
    )


def segment_expression(
    rules: list[SegmentRule], default: str, columns: Mapping[str, sa.ColumnElement[Any]]
) -> sa.ColumnElement[str]:
    """CASE WHEN rule1 THEN name1 … ELSE default END, the rules in their declared order."""
    if not rules:
        return sa.literal(default, sa.String)
    return sa.case(
        *((rule_condition(rule.when, columns), sa.literal(rule.name)) for rule in rules),
        else_=sa.literal(default),
    )
