"""Group commit: every delivery waiting when a transaction starts is written in it.

Requests hand their event to one writer thread and wait. The writer takes everything queued
(up to `max_batch`), and in one transaction lands the new events (a redelivered id is skipped
by the primary key, `Dialect.insert_or_skip`), moves each subject's latest state forward only
(an older event never replaces a newer one, whatever the order of arrival), and keeps rejected
deliveries in the quarantine. Only after the commit are the waiting requests answered: an
acknowledged event is in the warehouse. While one transaction commits the next batch gathers,
so throughput grows with concurrency instead of costing one commit per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.config.streams import StreamConfig
from pipewarden.dialects import dialect_for
from pipewarden.events.delivery import Event, Rejected
from pipewarden.events.payload_checks import PayloadChecks
from pipewarden.events.stats import StreamStats, points
from pipewarden.events.tables import WEBHOOK, landing_table, latest_table
from pipewarden.records import quarantine as q
from pipewarden.records.metrics import write_metrics

log = logging.getLogger(__name__)

STORED, DUPLICATE, REJECTED = "stored", "duplicate", "rejected"


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: stored, a duplicate of a stored one, or rejected (held)."""

    status: str
    reasons: list[dict[str, Any]] | None = None


class WarehouseUnavailable(RuntimeError):
    """The batch could not be committed: nothing of it is acknowledged (the sender retries)."""


@dataclass
class _Waiting:
    stream: str
    item: Event | Rejected
    future: asyncio.Future[Outcome]


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
    """Insert landing rows, skipping ids already there; returns the ids inserted now."""
    if not rows:
        return set()
    table = landing_table(stream.landing_table, schema)
    dialect = dialect_for(conn.dialect.name)
    insert = dialect.insert_or_skip(table, [table.c.event_id]).returning(table.c.event_id)
    return set(conn.execute(insert, list(rows)).scalars())


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
) -> None:
    """Quarantine `(stream, event id, what parsed, reasons)` in the caller's transaction."""
    import polars as pl

    by_stream: dict[str, list[tuple[str | None, Any, list[dict[str, Any]]]]] = {}
    for stream, event_id, row, reasons in held:
        by_stream.setdefault(stream, []).append((event_id, row, reasons))
    for stream, entries in by_stream.items():
        frame = pl.DataFrame(
            {
                "primary_key": [json.dumps({"event_id": i}) for i, _, _ in entries],
                "row_json": [json.dumps(r, default=str) for _, r, _ in entries],
                "reasons": pl.Series(
                    [[_reason_text(x) for x in reasons] for _, _, reasons in entries],
                    dtype=pl.List(q.REASON),
                ),
            }
        )
        q.hold(conn, stream, run_id, frame)


def _reason_text(reason: dict[str, Any]) -> dict[str, str | None]:
    return {
        k: None if reason.get(k) is None else str(reason[k]) for k in ("column", "check", "value")
    }


def rejection_reasons(rejected: Rejected) -> list[dict[str, Any]]:
    value = rejected.reason if rejected.value is None else rejected.value
    return [{"column": rejected.field_name or None, "check": rejected.check, "value": value}]


class GroupCommit:
    """The writer thread and its queue; `submit` waits until the delivery is committed."""

    def __init__(
        self,
        engine: sa.Engine,
        streams: dict[str, StreamConfig],
        schema: str | None,
        run_id: str,
        stats: StreamStats,
        *,
        max_batch: int = 2000,
        metrics_every: float = 10.0,
    ) -> None:
        self.engine = engine
        self.streams = streams
        self.schema = schema
        self.run_id = run_id
        self.stats = stats
        self.max_batch = max_batch
        self.metrics_every = metrics_every
        self.checks = {n: PayloadChecks(s) for n, s in streams.items() if s.checked}
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pipewarden-group-commit")
        self._stopping = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, a last metrics interval, and end the thread."""
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout=60)

    async def submit(self, stream: str, item: Event | Rejected) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put(_Waiting(stream, item, future))
        return await future

    def _run(self) -> None:
        next_metrics = time.monotonic() + self.metrics_every
        while True:
            batch = self._take(max(0.0, next_metrics - time.monotonic()))
            if batch:
                self._write(batch)
            if time.monotonic() >= next_metrics or (self._stopping and not batch):
                self._write_metrics()
                next_metrics = time.monotonic() + self.metrics_every
            if self._stopping and not batch and self._queue.empty():
                return

    def _take(self, wait: float) -> list[_Waiting]:
        try:
            first = self._queue.get(timeout=0.01 if self._stopping else max(0.001, wait))
        except queue.Empty:
            return []
        batch = [] if first is None else [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                batch.append(item)
        return batch

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            with self.engine.begin() as conn:
                outcomes, count = self._store(conn, batch)
        except Exception as error:  # noqa: BLE001 - whatever failed, nothing is acknowledged
            log.warning(
                "group commit of %d deliveries failed: %s", len(batch), type(error).__name__
            )
            failure = WarehouseUnavailable("the warehouse could not commit the delivery")
            _settle_all(batch, lambda w: failure)
            return
        count()
        _settle_all(batch, lambda w: outcomes[id(w)])

    def _store(
        self, conn: sa.Connection, batch: list[_Waiting]
    ) -> tuple[dict[int, Outcome], Callable[[], None]]:
        """Everything of one transaction; returns the outcomes and the counting to do after
        the commit (a rolled-back batch counts nothing)."""
        outcomes: dict[int, Outcome] = {}
        held: list[tuple[str, str | None, Any, list[dict[str, Any]]]] = []
        firsts: dict[tuple[str, str], _Waiting] = {}
        by_stream: dict[str, list[tuple[_Waiting, Event]]] = {}
        later: list[tuple[_Waiting, Event]] = []
        for waiting in batch:
            item = waiting.item
            if isinstance(item, Rejected):
                reasons = rejection_reasons(item)
                held.append((waiting.stream, item.event_id, item.row, reasons))
                outcomes[id(waiting)] = Outcome(REJECTED, reasons)
            elif (waiting.stream, item.event_id) in firsts:
                later.append((waiting, item))  # the same id twice in one batch: as the first
            else:
                firsts[(waiting.stream, item.event_id)] = waiting
                by_stream.setdefault(waiting.stream, []).append((waiting, item))
        stored_at = datetime.now(UTC)
        new: list[Event] = []
        for name, accepted in by_stream.items():
            stream = self.streams[name]
            events = [e for _, e in accepted]
            checks = self.checks.get(name)
            verdicts = checks.reasons(events) if checks else [None] * len(events)
            passing: list[Event] = []
            for (waiting, event), verdict in zip(accepted, verdicts):
                if verdict:
                    held.append((name, event.event_id, event.payload, verdict))
                    outcomes[id(waiting)] = Outcome(REJECTED, verdict)
                else:
                    passing.append(event)
            inserted = land(conn, stream, self.schema, [landing_row(e, stored_at) for e in passing])
            fresh = [e for e in passing if e.event_id in inserted]
            advance_latest(conn, stream, self.schema, fresh)
            for waiting, event in accepted:
                if id(waiting) not in outcomes:
                    status = STORED if event.event_id in inserted else DUPLICATE
                    outcomes[id(waiting)] = Outcome(status)
            new += fresh
        for waiting, event in later:
            earlier = outcomes[id(firsts[(waiting.stream, event.event_id)])]
            outcomes[id(waiting)] = earlier if earlier.status == REJECTED else Outcome(DUPLICATE)
        if held:
            hold_rejected(conn, self.run_id, held)

        def count() -> None:
            committed = datetime.now(UTC)
            for event in new:
                latency = (committed - event.event_time).total_seconds()
                self.stats.stored(event.stream, event.event_type, event.event_time, latency)
            for stream, _, _, reasons in held:
                self.stats.quarantined(stream, str(reasons[0]["check"]).split("(")[0])
            for waiting in batch:
                if outcomes[id(waiting)].status == DUPLICATE:
                    self.stats.duplicate(waiting.stream)

        return outcomes, count

    def _write_metrics(self) -> None:
        taken = self.stats.take()
        newest = dict(self.stats.newest)
        if not taken and not newest:
            return
        try:
            with self.engine.begin() as conn:
                write_metrics(conn, points(taken, newest, datetime.now(UTC)))
        except Exception as error:  # noqa: BLE001 - metrics wait for the next interval
            log.warning("stream metrics not written: %s", type(error).__name__)
            self.stats.give_back(taken)


def _settle_all(batch: list[_Waiting], result: Callable[[_Waiting], Outcome | Exception]) -> None:
    """Answer every waiting request of the batch, one hop per event loop."""
    by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[tuple[_Waiting, Any]]]] = {}
    for waiting in batch:
        loop = waiting.future.get_loop()
        by_loop.setdefault(id(loop), (loop, []))[1].append((waiting, result(waiting)))
    for loop, answers in by_loop.values():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[tuple[_Waiting, Any]]) -> None:
    for waiting, answer in answers:
        if waiting.future.done():  # the client went away
            continue
        if isinstance(answer, Exception):
            waiting.future.set_exception(answer)
        else:
            waiting.future.set_result(answer)
