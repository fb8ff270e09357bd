"""What one transaction writes for a batch of events, in the caller's transaction: the new
events into the landing table (an id already there is skipped: a redelivery), each subject's
latest state moved forward only (an older event never replaces a newer one, whatever the order
of arrival), and rejected deliveries into the quarantine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.config.streams import StreamConfig
from pipewarden.dialects import dialect_for
from pipewarden.events.delivery import Event, Rejected
from pipewarden.events.tables import WEBHOOK, landing_table, latest_table
from pipewarden.records import quarantine as q

#: Keys looked up in one statement.
CHUNK = 1000


def landing_row(event: Event, stored_at: datetime, delivery: str = WEBHOOK) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "event_time": event.event_time,
        "received_at": event.received_at,
        "stored_at": stored_at,
        "subject": event.subject,
        "source_key": event.source_key,
        "delivery": delivery,
        "payload": event.body,
    }


def land(
    conn: sa.Connection, stream: StreamConfig, schema: str | None, rows: Sequence[dict[str, Any]]
) -> set[str]:
    """Insert landing rows whose id is not there yet; returns the ids inserted now.

    The ids already there are read first (one statement per `CHUNK`), and the rest inserted
    by one statement repeated (`Dialect.insert_or_skip`): an id another receiver inserted in
    between is skipped by the primary key, never stored twice.
    """
    if not rows:
        return set()
    table = landing_table(stream.landing_table, schema)
    ids = [r["event_id"] for r in rows]
    there: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        there |= set(
            conn.execute(sa.select(table.c.event_id).where(table.c.event_id.in_(chunk))).scalars()
        )
    new = [r for r in rows if r["event_id"] not in there]
    if new:
        dialect = dialect_for(conn.dialect.name)
        conn.execute(dialect.insert_or_skip(table, [table.c.event_id]), new)
    return {r["event_id"] for r in new}


def advance_latest(
    conn: sa.Connection, stream: StreamConfig, schema: str | None, events: Sequence[Event]
) -> None:
    """Each subject's latest state moves to the newest of `events`, never back.

    Newest is the greatest (event time, event id): equal times are ordered by id, so every
    receiver and every order of arrival agrees on the winner.
    """
    if not stream.latest_table:
        return
    newest: dict[str, Event] = {}
    for e in events:
        if e.subject is None:
            continue
        old = newest.get(e.subject)
        if old is None or (e.event_time, e.event_id) > (old.event_time, old.event_id):
            newest[e.subject] = e
    if not newest:
        return
    table = latest_table(stream.latest_table, schema)
    now = datetime.now(UTC)
    rows = [
        {
            "subject": e.subject,
            "event_id": e.event_id,
            "event_type": e.event_type,
            "event_time": e.event_time,
            "payload": e.body,
            "updated_at": now,
        }
        for e in newest.values()
    ]
    dialect = dialect_for(conn.dialect.name)
    conn.execute(dialect.insert_or_skip(table, [table.c.subject]), rows)
    c = table.c
    when: sa.BindParameter[datetime] = sa.bindparam("w_time")
    ident: sa.BindParameter[str] = sa.bindparam("w_id")
    update = (
        table.update()
        .where(
            c.subject == sa.bindparam("w_subject"),
            sa.or_(c.event_time < when, sa.and_(c.event_time == when, c.event_id < ident)),
        )
        .values(
            event_id=ident,
            event_type=sa.bindparam("w_type"),
            event_time=when,
            payload=sa.bindparam("w_payload"),
            updated_at=now,
        )
    )
    conn.execute(
        update,
        [
            {
                "w_subject": r["subject"],
                "w_time": r["event_time"],
                "w_id": r["event_id"],
                "w_type": r["event_type"],
                "w_payload": r["payload"],
            }
            for r in rows
        ],
    )


def hold_rejected(
    conn: sa.Connection,
    run_id: str,
    held: Sequence[tuple[str, str | None, Any, list[dict[str, Any]]]],
) -> int:
    """Quarantine `(stream, event id, what parsed, reasons)` in the caller's transaction;
    returns how many were new.

    Shops retry a refused delivery for hours: one already held as it is (same id, same
    content) is not held again, so each bad delivery is one entry however often it comes.
    """
    import polars as pl

    by_stream: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for stream, event_id, row, reasons in held:
        entry = (json.dumps({"event_id": event_id}), json.dumps(row, default=str))
        by_stream.setdefault(stream, {}).setdefault(entry, reasons)
    new = 0
    for stream, entries in by_stream.items():
        there = _already_held(conn, stream, entries)
        fresh = {k: v for k, v in entries.items() if k not in there}
        if not fresh:
            continue
        frame = pl.DataFrame(
            {
                "primary_key": [key for key, _ in fresh],
                "row_json": [row for _, row in fresh],
                "reasons": pl.Series(
                    [[_reason_text(x) for x in reasons] for reasons in fresh.values()],
                    dtype=pl.List(q.REASON),
                ),
            }
        )
        q.hold(conn, stream, run_id, frame)
        new += len(fresh)
    return new


def _already_held(
    conn: sa.Connection, stream: str, entries: dict[tuple[str, str], Any]
) -> set[tuple[str, str]]:
    c = q.quarantine.c
    keys = sorted({key for key, _ in entries})
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), CHUNK):
        query = sa.select(c.primary_key, c.row_json).where(
            c.table_name == stream,
            c.status == q.HELD,
            c.primary_key.in_(keys[start : start + CHUNK]),
        )
        found |= {(k, r) for k, r in conn.execute(query).tuples()}
    return found


def _reason_text(reason: dict[str, Any]) -> dict[str, str | None]:
    return {
        k: None if reason.get(k) is None else str(reason[k]) for k in ("column", "check", "value")
    }


def rejection_reasons(rejected: Rejected) -> list[dict[str, Any]]:
    value = rejected.reason if rejected.value is None else rejected.value
    return [{"column": rejected.field_name or None, "check": rejected.check, "value": value}]
