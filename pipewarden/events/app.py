"""The receiver as an ASGI application (Starlette): `POST /events/{stream}`, `GET /health`.

A delivery goes through, in order: the stream (404), the source's rate limit (429), the body
size limit (413, read no further), the signature (401; an unsigned request leaves only a
count), the payload (400/422, kept in the quarantine with the reason), the stream's checks in
the group commit (422, quarantined), and is answered 200 only once committed (503 when the
warehouse cannot commit: the sender retries, nothing was acknowledged).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import make_engine
from pipewarden.events.delivery import Rejected, read_event
from pipewarden.events.group_commit import GroupCommit, WarehouseUnavailable
from pipewarden.events.rate_limit import RateLimiter
from pipewarden.events.signatures import SignatureError, verify
from pipewarden.events.stats import StreamStats
from pipewarden.events.tables import ensure_stream_tables
from pipewarden.records.migrate import ensure_tables

log = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused past `limit` bytes (declared or read) without reading on.

    ASGI's messages are read directly: `Request.stream()` cost a tenth of a delivery's time.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _refuse(status: int, reason: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(extra.pop("retry_after"))} if "retry_after" in extra else None
    return JSONResponse({"status": "refused", "reason": reason, **extra}, status, headers)


class _Tables:
    """pipewarden's tables and the streams' tables, created once the warehouse answers: a
    receiver started while it is unreachable runs, not ready, and creates them later."""

    def __init__(self, engine: sa.Engine, config: PipewardenConfig) -> None:
        self.engine = engine
        self.config = config
        self.done = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if self.done:
            return
        with self._lock:
            if not self.done:
                ensure_tables(self.engine)
                streams = list(self.config.streams.values())
                ensure_stream_tables(self.engine, streams, self.config.warehouse.schema_name)
                self.done = True


class _AsgiEndpoint:
    """A handler mounted as a plain ASGI app: Starlette's per-request exception wrapping,
    a fifth of the receiver's time per delivery, is left out (errors still answer 500)."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.handle(Request(scope, receive))
        except ClientDisconnect:  # the sender went away mid-body: nobody to answer
            return
        await response(scope, receive, send)


def create_app(config: PipewardenConfig, *, metrics_every: float = 10.0) -> Starlette:
    """The receiver of the configuration's streams, writing into its warehouse."""
    streams = config.streams
    schema = config.warehouse.schema_name
    engine = make_engine(config.warehouse.url, config.timeouts.engine())
    stats = StreamStats()
    run_id = str(uuid.uuid4())
    tables = _Tables(engine, config)
    writer = GroupCommit(
        engine, streams, schema, run_id, stats, metrics_every=metrics_every, before=tables.ensure
    )
    limiters = {n: RateLimiter(s.rate_limit) for n, s in streams.items() if s.rate_limit}

    async def receive(request: Request) -> JSONResponse:
        received_at = datetime.now(UTC)
        name = request.path_params["stream"]
        stream = streams.get(name)
        if stream is None:
            return _refuse(404, f"unknown stream {name!r}")
        limiter = limiters.get(name)
        if limiter is not None:
            source = request.client.host if request.client else "unknown"
            allowed, wait = limiter.allow(source)
            if not allowed:
                stats.rejected(name, "rate_limited")
                return _refuse(429, "rate limit exceeded", retry_after=max(1, round(wait)))
        try:
            body = await _read_body(request, stream.max_body_bytes)
        except _TooLarge:
            stats.rejected(name, "body_too_large")
            return _refuse(413, f"body is over the limit of {stream.max_body_bytes} bytes")
        try:
            verify(stream.signing, request.headers, body, time.time())
        except SignatureError as error:
            stats.rejected(name, "signature")
            return _refuse(401, str(error))
        try:
            item: Any = read_event(stream, request.headers, body, received_at)
        except Rejected as rejected:
            item = rejected
        try:
            outcome = await writer.submit(name, item)
        except WarehouseUnavailable as error:
            return _refuse(503, str(error), retry_after=1)
        if outcome.status == "rejected":
            status = item.status if isinstance(item, Rejected) else 422
            reason = str(item) if isinstance(item, Rejected) else "the stream's checks failed"
            return _refuse(status, reason, reasons=outcome.reasons, quarantined=True)
        return JSONResponse({"status": outcome.status, "event_id": item.event_id})

    def warehouse_answers() -> None:
        tables.ensure()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    async def ready(request: Request) -> JSONResponse:
        try:
            with anyio.fail_after(config.timeouts.connect.total_seconds() + 1):
                await anyio.to_thread.run_sync(warehouse_answers, abandon_on_cancel=True)
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            reason = f"warehouse unreachable ({type(error).__name__})"
            return JSONResponse({"live": True, "ready": False, "reason": reason}, 503)
        return JSONResponse({"live": True, "ready": True, "streams": sorted(streams)})

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"live": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await anyio.to_thread.run_sync(tables.ensure)
        except Exception as error:  # noqa: BLE001 - not ready yet: /health says so, writes retry
            log.warning("warehouse not reachable at start (%s): not ready", type(error).__name__)
        writer.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(writer.stop)
            engine.dispose()

    return Starlette(
        routes=[
            Route("/events/{stream}", _AsgiEndpoint(receive), methods=["POST"]),
            Route("/health", ready, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
