"""Values in pipewarden's tables: cursor and key values as text that keeps their type (watermarks
survive a round trip exactly), and instants as UTC whatever the database hands back."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def encode_value(value: Any) -> Any:
    """A JSON-safe, type-tagged form of a cursor or key value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return {"datetime": value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": format(value, "f")}
    if isinstance(value, float):
        return {"float": repr(value)}
    return {"text": str(value)}


def decode_value(data: Any) -> Any:
    """The inverse of `encode_value`."""
    if not isinstance(data, dict):
        return data
    ((tag, text),) = data.items()
    if tag == "datetime":
        return datetime.fromisoformat(text)
    if tag == "date":
        return date.fromisoformat(text)
    if tag == "decimal":
        return Decimal(text)
    if tag == "float":
        return float(text)
    return text


def dumps(value: Any) -> str:
    """Text for a value column of pipewarden's tables."""
    return json.dumps(encode_value(value))


def dumps_key(values: tuple[Any, ...]) -> str:
    """Text for a (possibly composite) key."""
    return json.dumps([encode_value(v) for v in values])


def loads(text: str | None) -> Any:
    return None if text is None else decode_value(json.loads(text))


def loads_key(text: str | None) -> tuple[Any, ...] | None:
    return None if text is None else tuple(decode_value(v) for v in json.loads(text))


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC, as written."""
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
