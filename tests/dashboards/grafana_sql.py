"""A panel's rawSql as Grafana sends it to PostgreSQL: template variables, then macros.

Grafana's frontend replaces template variables first: a multi-value or include-all variable
becomes its values as quoted SQL literals joined by commas (`'a','b'`), `$__interval` the
panel's interval (`5m`). The PostgreSQL datasource's backend then expands its macros
(pkg/tsdb/grafana-postgresql-datasource/macros.go): `$__timeFilter(col)` is
`col BETWEEN 'from' AND 'to'` in RFC 3339, `$__timeGroup(col, '5m')` is
`floor(extract(epoch from col)/300)*300`, `$__timeGroupAlias` the same `AS "time"`.
Anything `$`-like left over would reach PostgreSQL as a syntax error in Grafana: it is an error
here too.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


def expand(sql: str, variables: dict[str, list[str]], time: TimeRange, interval: str = "5m") -> str:
    """The SQL PostgreSQL would receive from Grafana for these variable values and range."""
    for name, values in variables.items():
        quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
        pattern = rf"\$\{{{name}\}}|\[\[{name}\]\]|\${name}\b"
        sql = re.sub(pattern, quoted.replace("\\", "\\\\"), sql)
    sql = sql.replace("$__interval_ms", str(int(_seconds(interval) * 1000)))
    sql = re.sub(r"\$__interval\b", interval, sql)
    sql = _MACRO.sub(lambda m: _macro(m.group(1), _args(m.group(2)), time), sql)
    left = re.search(r"\$\{?\w*|\[\[\w+", sql)
    if left:
        raise ValueError(f"not expanded: {left.group(0)!r} in\n{sql}")
    return sql


def _macro(name: str, args: list[str], time: TimeRange) -> str:
    if name == "time":
        return f'{args[0]} AS "time"'
    if name == "timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "timeFilter":
        return f"{args[0]} BETWEEN {_instant(time.start)} AND {_instant(time.end)}"
    if name == "timeFrom":
        return _instant(time.start)
    if name == "timeTo":
        return _instant(time.end)
    if name in ("timeGroup", "timeGroupAlias"):
        step = f"{_seconds(args[1].strip(chr(39))):g}"
        group = f"floor(extract(epoch from {args[0]})/{step})*{step}"
        return group + (' AS "time"' if name == "timeGroupAlias" else "")
    raise ValueError(f"macro $__{name} is not one Grafana's PostgreSQL datasource knows")


def _args(text: str) -> list[str]:
    return [a.strip() for a in text.split(",")]


def _instant(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"'{text}'"


def _seconds(interval: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", interval.strip())
    if not match:
        raise ValueError(f"not a Grafana interval: {interval!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]
