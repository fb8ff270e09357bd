"""The newest cursor loaded, as the freshness of a table is measured from it (no heavy imports:
`pipewarden status` reads it)."""

from datetime import UTC, date, datetime, time
from typing import Any

from pipewarden.records.values import utc

#: The newest cursor value loaded so far, as epoch seconds: freshness is measured from it.
NEWEST_CURSOR = "newest_cursor_epoch"


def cursor_instant(value: Any) -> datetime | None:
    """A cursor value as a UTC instant, or None when the cursor is not a time (a sequence)."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        try:
            return cursor_instant(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None
