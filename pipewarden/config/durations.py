"""Durations written the way people write them in YAML (`90s`, `5m`, `2h`, `1d`) and read them."""

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse `5m`, `1h30m`, `45s` or a number of seconds; raise ValueError naming the text."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"duration must not be negative: {text}")
        return _span(text, text)
    raw = str(text).strip().lower().replace(" ", "")
    if raw in ("0", ""):
        return timedelta(0)
    pos, seconds = 0, 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or pos == 0:
        raise ValueError(f"not a duration: {text!r} (use forms like 30s, 5m, 2h, 1d)")
    return _span(seconds, text)


def _span(seconds: float, text: object) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # beyond timedelta's 999,999,999 days
        raise ValueError(f"too long a duration: {text!r}") from None


def describe(span: timedelta) -> str:
    """`2d 3h`, `1h 05m`, `4m 10s`, `12s`: an age as a person reads it."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
