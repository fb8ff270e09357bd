"""A stream's tables in the warehouse: the append-only landing table and the latest state.

The landing table keeps every accepted delivery once (its event id is the primary key, so a
redelivery is absorbed by the database even across receivers), with the event's own time, the
time it was received and stored, and how it arrived (`webhook`, or `backfill` by a
reconciliation). The latest-state table keeps, per subject, the newest event by its own time.
"""

import threading
from functools import lru_cache

import sqlalchemy as sa

from pipewarden.config.streams import StreamConfig

WEBHOOK, BACKFILL = "webhook", "backfill"

_created: set[tuple[str, str]] = set()
_lock = threading.Lock()


@lru_cache(maxsize=256)
def landing_table(name: str, schema: str | None = None) -> sa.Table:
    """The landing table called `name` (columns fixed: the payload is kept as sent)."""
    return sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(500)),
        sa.Column("source_key", sa.String(500)),
        sa.Column("delivery", sa.String(20), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Index(f"ix_{name}_event_time", "event_time"),
        sa.Index(f"ix_{name}_type_key", "event_type", "source_key"),
    )


@lru_cache(maxsize=256)
def latest_table(name: str, schema: str | None = None) -> sa.Table:
    """The latest-state table called `name`: one row per subject, its newest event."""
    return sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column("subject", sa.String(500), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def stream_tables(stream: StreamConfig, schema: str | None) -> list[sa.Table]:
    tables = [landing_table(stream.landing_table, schema)]
    if stream.latest_table:
        tables.append(latest_table(stream.latest_table, schema))
    return tables


def ensure_stream_tables(
    engine: sa.Engine, streams: list[StreamConfig], schema: str | None
) -> None:
    """Create the streams' tables where missing (idempotent; once per process and engine)."""
    url = engine.url.render_as_string(hide_password=False)
    with _lock:
        for stream in streams:
            for table in stream_tables(stream, schema):
                if (url, table.fullname) in _created:
                    continue
                try:
                    table.create(engine, checkfirst=True)
                except sa.exc.DBAPIError:  # created by another process meanwhile
                    table.create(engine, checkfirst=True)
                _created.add((url, table.fullname))
