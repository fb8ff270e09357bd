"""One webhook delivery read into an event: id, type, own time, subject, payload.

A delivery that cannot be read is a `Rejected` with the HTTP status, a reason a sender can act
on, and whatever was parsed of it, which the receiver keeps in the quarantine.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipewarden.config.durations import describe
from pipewarden.config.streams import StreamConfig
from pipewarden.records.values import utc

#: The most of an unparsable body kept in the quarantine.
MAX_KEPT_BODY = 4096


@dataclass(frozen=True)
class Event:
    """An accepted delivery, ready to land."""

    stream: str
    event_id: str
    event_type: str
    event_time: datetime
    received_at: datetime
    subject: str | None
    source_key: str | None
    payload: dict[str, Any]
    body: str


@dataclass
class Rejected(Exception):
    """A delivery refused with `status`; `row` is what parsed of it (None: nothing to keep)."""

    status: int
    check: str
    reason: str
    row: dict[str, Any] | None = None
    event_id: str | None = None
    field_name: str = ""
    value: Any = None

    def __str__(self) -> str:
        return self.reason


def locate(locator: str, headers: Mapping[str, str], payload: Any) -> Any:
    """The value a locator names: `header:Name` or `json:a.b`; None when absent."""
    kind, _, where = locator.partition(":")
    if kind == "header":
        return headers.get(where.lower())
    value = payload
    for part in where.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def parse_time(value: Any) -> datetime:
    """ISO 8601 text or epoch seconds, as UTC; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("not a time")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return utc(datetime.fromisoformat(value.strip()))
    raise ValueError("not a time")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def read_event(
    stream: StreamConfig, headers: Mapping[str, str], body: bytes, received_at: datetime
) -> Event:
    """The event a signed delivery holds, or `Rejected` naming what is wrong with it."""
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        kept = body[:MAX_KEPT_BODY].decode("utf-8", "replace")
        raise Rejected(400, "invalid_json", f"body is not JSON: {error}", {"body": kept}) from None
    if not isinstance(payload, dict):
        row = {"body": text[:MAX_KEPT_BODY]}
        raise Rejected(400, "invalid_json", "body is JSON but not an object", row)
    event_id = _text(locate(stream.event_id, headers, payload))
    if not event_id or len(event_id) > 200:
        why = "missing" if not event_id else "longer than 200 characters"
        raise Rejected(422, "event_id", f"event id ({stream.event_id}) is {why}", payload)
    event_type = _text(locate(stream.event_type, headers, payload))
    if event_type not in stream.event_types:
        known = ", ".join(stream.event_types)
        reason = f"unknown event type {event_type!r} ({stream.event_type}; known: {known})"
        raise Rejected(422, "event_type", reason, payload, event_id, "event_type", event_type)
    event_time = received_at
    if stream.event_time is not None:
        raw = locate(stream.event_time, headers, payload)
        if raw is not None:
            try:
                event_time = parse_time(raw)
            except (ValueError, OverflowError, OSError):
                reason = f"event time ({stream.event_time}) {raw!r} is not a time"
                raise Rejected(
                    422, "event_time", reason, payload, event_id, "event_time", raw
                ) from None
            ahead = event_time - received_at
            if ahead > stream.max_clock_skew:
                reason = (
                    f"event time ({stream.event_time}) {raw!r} is {describe(ahead)} after the "
                    f"event was received: the sender's clock or the field is wrong "
                    f"(streams.{stream.name}.max_clock_skew is {describe(stream.max_clock_skew)})"
                )
                raise Rejected(422, "event_time", reason, payload, event_id, "event_time", raw)
    subject = None
    if stream.subject is not None:
        subject = _text(locate(stream.subject, headers, payload))
        if stream.latest_table and not subject:
            reason = f"subject ({stream.subject}) is missing"
            raise Rejected(422, "subject", reason, payload, event_id, "subject")
    source_key = None
    if stream.reconcile is not None:
        source_key = _text(locate(stream.reconcile.event_key, headers, payload))
    return Event(
        stream=stream.name,
        event_id=event_id,
        event_type=event_type,
        event_time=event_time,
        received_at=received_at,
        subject=subject,
        source_key=source_key,
        payload=payload,
        body=text,
    )
