"""Group commit: every delivery waiting when a transaction starts is written in it.

Requests hand their event to the pipeline and wait. A checker thread takes everything queued
and runs the streams' payload checks on it as one batch; a writer thread takes everything
checked (up to `max_batch`) and writes it in one transaction (`events.landing`). Only after the
commit are the waiting requests answered: an acknowledged event is in the warehouse. While one
transaction commits (the database's wait, the GIL free), the next batch is checked and the one
after gathers, so throughput grows with concurrency instead of costing one commit per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.config.streams import StreamConfig
from pipewarden.events.delivery import Event, Rejected
from pipewarden.events.landing import (
    advance_latest,
    hold_rejected,
    land,
    landing_row,
    rejection_reasons,
)
from pipewarden.events.payload_checks import PayloadChecks
from pipewarden.events.stats import StreamStats, points
from pipewarden.records.metrics import write_metrics

log = logging.getLogger(__name__)

STORED, DUPLICATE, REJECTED = "stored", "duplicate", "rejected"
#: The longest a request waits for its commit before it is answered 503 (senders give up on
#: a webhook after seconds; the event, if committed later, is a duplicate when redelivered).
ACK_TIMEOUT = 30.0


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
    #: The stream's checks' reasons to reject the event (set by the checker), or None.
    verdict: list[dict[str, Any]] | None = field(default=None)


def _drain(source: queue.SimpleQueue[Any], wait: float, most: int) -> tuple[list[Any], bool]:
    """Up to `most` items, waiting up to `wait` for the first; and whether the end was seen."""
    try:
        first = source.get(timeout=max(0.001, wait))
    except queue.Empty:
        return [], False
    items, ended = ([], True) if first is None else ([first], False)
    while len(items) < most:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is None:
            ended = True
        else:
            items.append(item)
    return items, ended


class GroupCommit:
    """The checker and writer threads; `submit` waits until the delivery is committed."""

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
        before: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.streams = streams
        self.schema = schema
        self.run_id = run_id
        self.stats = stats
        self.max_batch = max_batch
        self.metrics_every = metrics_every
        #: Run before each transaction (creating the tables once the warehouse answers).
        self.before = before
        self.checks = {n: PayloadChecks(s) for n, s in streams.items() if s.checked}
        self._incoming: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._checked: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._checker = threading.Thread(target=self._check_loop, name="pipewarden-checker")
        self._writer = threading.Thread(target=self._write_loop, name="pipewarden-writer")

    def start(self) -> None:
        self._checker.start()
        self._writer.start()

    def stop(self) -> None:
        """Write what is queued, a last metrics interval, and end the threads."""
        self._incoming.put(None)
        self._checker.join(timeout=60)
        self._writer.join(timeout=60)

    async def submit(self, stream: str, item: Event | Rejected) -> Outcome:
        """The delivery's outcome once committed; `WarehouseUnavailable` when its batch could
        not be, or not within `ACK_TIMEOUT` (committed later, a redelivery is a duplicate)."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._incoming.put(_Waiting(stream, item, future))
        try:
            async with asyncio.timeout(ACK_TIMEOUT):  # no task per request, as wait_for makes
                return await future
        except TimeoutError:
            raise WarehouseUnavailable(f"not committed within {ACK_TIMEOUT:.0f} s") from None

    def _check_loop(self) -> None:
        while True:
            batch, ended = _drain(self._incoming, 1.0, self.max_batch)
            if batch:
                self._check(batch)
                for waiting in batch:
                    self._checked.put(waiting)
            if ended:
                self._checked.put(None)
                return

    def _check(self, batch: list[_Waiting]) -> None:
        by_stream: dict[str, list[_Waiting]] = {}
        for waiting in batch:
            if waiting.stream in self.checks and isinstance(waiting.item, Event):
                by_stream.setdefault(waiting.stream, []).append(waiting)
        for name, waiting_list in by_stream.items():
            try:
                verdicts = self.checks[name].reasons([w.item for w in waiting_list])  # type: ignore[misc]
            except Exception as error:  # noqa: BLE001 - a broken check refuses, never loses
                log.error("checks of stream %s failed: %s", name, type(error).__name__)
                reason = {"column": None, "check": "checks_failed", "value": type(error).__name__}
                verdicts = [[reason]] * len(waiting_list)
            for waiting, verdict in zip(waiting_list, verdicts):
                waiting.verdict = verdict

    def _write_loop(self) -> None:
        next_metrics = time.monotonic() + self.metrics_every
        while True:
            batch, ended = _drain(self._checked, next_metrics - time.monotonic(), self.max_batch)
            if batch:
                self._write(batch)
            if time.monotonic() >= next_metrics or ended:
                self._write_metrics()
                next_metrics = time.monotonic() + self.metrics_every
            if ended:
                return

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            self.before()
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
            elif waiting.verdict:
                held.append((waiting.stream, item.event_id, item.payload, waiting.verdict))
                outcomes[id(waiting)] = Outcome(REJECTED, waiting.verdict)
                firsts[(waiting.stream, item.event_id)] = waiting
            else:
                firsts[(waiting.stream, item.event_id)] = waiting
                by_stream.setdefault(waiting.stream, []).append((waiting, item))
        stored_at = datetime.now(UTC)
        new: list[Event] = []
        for name, accepted in by_stream.items():
            stream = self.streams[name]
            rows = [landing_row(e, stored_at) for _, e in accepted]
            inserted = land(conn, stream, self.schema, rows)
            fresh = [e for _, e in accepted if e.event_id in inserted]
            advance_latest(conn, stream, self.schema, fresh)
            for waiting, event in accepted:
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
