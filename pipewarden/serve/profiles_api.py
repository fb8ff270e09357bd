"""`GET /profiles/{customer_id}` at send time: from the cache, else the warehouse, and never a
silent stale answer.

Before answering, the state of the last build is read (at most once a second): when the
warehouse does not answer, the last build's checks failed or it is older than
`profiles.error_after`, the customer's last good snapshot is served, else the declared default
profile; both are marked in `X-Profile-Fallback` (with `X-Profile-Fallback-Reason`) and
counted in `pipewarden_profile_responses_total`. A cache miss that waits past the lock limit
for the profile table (a full build holds it from its swap to its commit) falls back the same
way, marked `profile-table-rebuilding`: the warehouse answered.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import orjson
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipewarden.config import PipewardenConfig, ProfilesConfig
from pipewarden.config.timeouts import Timeouts
from pipewarden.db.engines import make_engine
from pipewarden.dialects import dialect_of
from pipewarden.profiles.build import last_build
from pipewarden.profiles.cache import (
    CacheUnavailable,
    MemoryCache,
    RedisCache,
    as_cached,
    make_cache,
)
from pipewarden.records.metrics import labels_text, metrics
from pipewarden.serve.profile_figures import RESPONSES_METRIC
from pipewarden.serve.ready import GO, readiness, unreachable

#: The API waits this long for the warehouse before it falls back (seconds).
WAREHOUSE_LIMITS = Timeouts(connect=2.0, statement=2.0, lock=1.0)
#: How often the last build's state is read again (seconds).
STATE_SECONDS = 1.0
#: A read of the state older than this is not trusted: the warehouse is waited for.
STATE_LIMIT = STATE_SECONDS + WAREHOUSE_LIMITS.connect + WAREHOUSE_LIMITS.statement


#: How often the API adds its answers, counted by case, to `pipewarden_metrics` (seconds).
COUNTS_SECONDS = 10.0


class WarehouseUnreachable(Exception):
    pass


class TableRebuilding(WarehouseUnreachable):
    """The warehouse answered, but the profile table stayed locked past the API's lock limit:
    a full build replaces it (from its swap to its commit), or another statement holds it."""


class ResponseCounts:
    """Answers by (source, reason) not yet written to the warehouse: written every
    `COUNTS_SECONDS` beside the state's refresh; kept for the next time when the warehouse
    does not answer (so a fallback is counted once it is back)."""

    def __init__(self, profile_table: str) -> None:
        self.profile_table = profile_table
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self.written = time.monotonic()

    def add(self, source: str, reason: str) -> None:
        with self._lock:
            self._counts[(source, reason)] = self._counts.get((source, reason), 0) + 1

    def write(self, engine: sa.Engine) -> None:
        with self._lock:
            taken, self._counts = self._counts, {}
        self.written = time.monotonic()
        if not taken:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "measured_at": now,
                "table_name": self.profile_table,
                "metric": RESPONSES_METRIC,
                "value": float(count),
                "labels": labels_text({"source": source, "reason": reason}),
            }
            for (source, reason), count in taken.items()
        ]
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(metrics), rows)
        except sa.exc.DBAPIError:
            with self._lock:
                for key, count in taken.items():
                    self._counts[key] = self._counts.get(key, 0) + count


@dataclass(frozen=True)
class BuildState:
    build_id: int
    ok: bool
    as_of: datetime
    data_as_of: datetime | None


@dataclass
class Answer:
    profile: dict[str, Any]
    source: str  # cache | warehouse | snapshot | default
    reason: str | None  # why a fallback was served
    data_as_of: datetime | None


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class _Memo:
    """The last read of the build's state: the state, or why the warehouse did not answer."""

    taken: float
    state: BuildState | None
    unreachable: str | None = None


class ProfileService:
    """What the endpoint asks: the build's state, the cache, the warehouse, in that order.

    The build's state is read at most once every `STATE_SECONDS`, in a thread of its own while
    requests go on with the previous read; a read older than `STATE_LIMIT` (the warehouse hangs)
    is not trusted: the requests wait for a new one, which gives up after the engine's limits.
    No request on the cache path waits for the warehouse.
    """

    def __init__(self, config: PipewardenConfig, cache: RedisCache | MemoryCache) -> None:
        assert config.profiles is not None
        self.spec: ProfilesConfig = config.profiles
        self.schema = config.warehouse.schema_name
        self.engine = make_engine(config.warehouse.url, WAREHOUSE_LIMITS)
        self.cache = cache
        self._table: sa.Table | None = None
        self._memo: _Memo | None = None
        self._lock = threading.Lock()
        self.counts = ResponseCounts(self.spec.table)

    def close(self) -> None:
        """Write the answers counted since the last write (the exporter sums what is written;
        they were lost when the process stopped), then let the connections go."""
        self.counts.write(self.engine)
        self.engine.dispose()

    def _read_state(self) -> _Memo:
        now = time.monotonic()
        try:
            with self.engine.connect() as conn:
                row = last_build(conn, self.schema, self.spec.table)
        except sa.exc.DBAPIError as error:
            return _Memo(now, None, type(error.orig).__name__)
        if row is None:
            return _Memo(now, None)
        as_of = _instant(row.as_of)
        assert as_of is not None
        state = BuildState(row.build_id, row.status == "ok", as_of, _instant(row.data_as_of))
        self.cache.new_build(state.build_id)
        return _Memo(now, state)

    def _refresh(self) -> None:
        try:
            self._memo = self._read_state()
            if time.monotonic() - self.counts.written >= COUNTS_SECONDS:
                self.counts.write(self.engine)
        finally:
            self._lock.release()

    def _current(self) -> _Memo | None:
        """The memo when it can be trusted (starting a refresh when it is due), else None."""
        memo = self._memo
        if memo is None:
            return None
        age = time.monotonic() - memo.taken
        if age >= STATE_SECONDS and self._lock.acquire(blocking=False):
            threading.Thread(target=self._refresh, name="profile-state", daemon=True).start()
        return memo if age < STATE_LIMIT else None

    def state_now(self) -> _Memo:
        """The memo, read now when it cannot be trusted (blocks: call it off the event loop)."""
        with self._lock:
            memo = self._memo
            if memo is None or time.monotonic() - memo.taken >= STATE_LIMIT:
                memo = self._memo = self._read_state()
            return memo

    def _read(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's row from the warehouse, put in the cache (blocks: off the loop)."""
        try:
            with self.engine.connect() as conn:
                if self._table is None:
                    self._table = sa.Table(
                        self.spec.table, sa.MetaData(schema=self.schema), autoload_with=conn
                    )
                table = self._table
                row = (
                    conn.execute(sa.select(table).where(table.c.customer_id == customer_id))
                    .mappings()
                    .first()
                )
        except sa.exc.DataError:
            # The warehouse answered: no key can equal this id (PostgreSQL text holds no NUL).
            return None
        except sa.exc.DBAPIError as error:
            if dialect_of(self.engine).timeout_kind(error) == "lock":
                raise TableRebuilding(type(error.orig).__name__) from None
            raise WarehouseUnreachable(type(error.orig).__name__) from None
        if row is None:
            return None
        found = as_cached(dict(row))
        with contextlib.suppress(CacheUnavailable):  # answered all the same; tried next read
            self.cache.put([found])
        return found

    async def _fallback(self, customer_id: str, reason: str) -> Answer:
        try:
            snapshot = await self.cache.asnapshot(customer_id)
        except CacheUnavailable:
            snapshot = None
        if snapshot is not None:
            return Answer(snapshot, "snapshot", reason, _instant(snapshot.get("_data_as_of")))
        return Answer(dict(self.spec.api.default_profile), "default", reason, None)

    def _reason(self, memo: _Memo) -> str | None:
        if memo.unreachable is not None:
            return "warehouse-unreachable"
        state = memo.state
        if state is None:
            return "no-build"
        if not state.ok:
            return "checks-failing"
        limit = self.spec.error_after
        if limit is not None and datetime.now(UTC) - state.as_of > limit:
            return "past-error-sla"
        return None

    async def answer(self, customer_id: str) -> Answer:
        memo = self._current()
        if memo is None:
            memo = await anyio.to_thread.run_sync(self.state_now)
        reason = self._reason(memo)
        if reason is not None:
            return await self._fallback(customer_id, reason)
        state = memo.state
        assert state is not None
        try:
            cached = await self.cache.aget(customer_id)
        except CacheUnavailable:
            cached = None
        if cached is not None:
            return Answer(
                cached, "cache", None, _instant(cached.get("_data_as_of")) or state.data_as_of
            )
        try:
            row = await anyio.to_thread.run_sync(self._read, customer_id)
        except TableRebuilding:
            return await self._fallback(customer_id, "profile-table-rebuilding")
        except WarehouseUnreachable:
            return await self._fallback(customer_id, "warehouse-unreachable")
        if row is None:
            return Answer(dict(self.spec.api.default_profile), "default", "no-profile", None)
        return Answer(row, "warehouse", None, state.data_as_of)


def project(profile: dict[str, Any], customer_id: str, fields: list[str]) -> dict[str, Any]:
    """The fields templates read; `cart_age_seconds` is worked out now from the cart's time."""
    body: dict[str, Any] = {"customer_id": customer_id}
    for name in fields:
        if name == "cart_age_seconds":
            updated = _instant(profile.get("cart_updated_at"))
            age = (datetime.now(UTC) - updated).total_seconds() if updated else None
            body[name] = None if age is None else int(age)
        else:
            value = profile.get(name)
            body[name] = value.isoformat() if isinstance(value, datetime) else value
    return body


def not_modified(if_none_match: str | None, etag: str, exists: bool) -> bool:
    """RFC 9110 13.1.2: `*` matches any current representation (a profile, not a default);
    else a list of tags, compared weakly."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return exists
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag in tags


def create_profiles_app(config: PipewardenConfig) -> Starlette:
    """The API alone (`pipewarden serve --only profiles`); refuses to start without a token."""
    if config.profiles is None:
        raise ValueError("the configuration declares no profiles (profiles: in pipewarden.yaml)")
    api = config.profiles.api
    if api.token is None or not api.token.get_secret_value():
        raise ValueError("profiles.api.token is not set: the API answers no one without it")
    expected = api.token.get_secret_value().encode()
    service = ProfileService(config, make_cache(api))
    registry = CollectorRegistry()
    responses = Counter(
        "pipewarden_profile_responses",
        "Profiles answered, by where the answer came from and why a fallback was served",
        ["source", "reason"],
        registry=registry,
    )

    def refused(request: Request) -> Response | None:
        # The scheme is case-insensitive (RFC 9110 11.1), one or more spaces before the token.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.lstrip(" ").encode()
        if hmac.compare_digest(given, expected) and scheme.lower() == "bearer":
            return None
        return JSONResponse(
            {"error": "a valid bearer token is required"},
            401,
            headers={"WWW-Authenticate": 'Bearer realm="profiles"'},
        )

    async def profile(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        customer_id = request.path_params["customer_id"]
        answer = await service.answer(customer_id)
        responses.labels(answer.source, answer.reason or "none").inc()
        service.counts.add(answer.source, answer.reason or "none")
        body = orjson.dumps(
            project(answer.profile, customer_id, api.fields),
            default=str,
            option=orjson.OPT_SORT_KEYS,
        )
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = {
            "ETag": etag,
            "Cache-Control": "private, no-cache",
            "X-Profile-Source": answer.source,
            "X-Profile-Fallback": answer.source if answer.reason else "none",
        }
        if answer.reason:
            headers["X-Profile-Fallback-Reason"] = answer.reason
        if answer.data_as_of is not None:
            age = max(0, int((datetime.now(UTC) - answer.data_as_of).total_seconds()))
            headers["X-Data-Age"] = str(age)
            headers["X-Data-As-Of"] = answer.data_as_of.isoformat()
        exists = answer.source != "default"  # a default stands in for a profile not at hand
        if not_modified(request.headers.get("if-none-match"), etag, exists):
            return Response(status_code=304, headers=headers)
        return Response(body, 200, headers=headers, media_type="application/json")

    def ready(request: Request) -> Response:
        """200 `go`, 503 `hold` with the reasons (a send gate can use the status alone)."""
        if (refusal := refused(request)) is not None:
            return refusal
        campaign = request.query_params.get("campaign", "")
        try:
            answer = readiness(service.engine, config, campaign)
        except KeyError as error:
            return JSONResponse({"error": str(error.args[0])}, 404)
        except sa.exc.DBAPIError as error:
            answer = unreachable(campaign, error)
        return JSONResponse(answer.as_dict(), 200 if answer.decision == GO else 503)

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(service.close)

    app = Starlette(
        routes=[
            # `path`: an id may hold a slash (sent as %2F, which the server decodes first).
            Route("/profiles/{customer_id:path}", profile, methods=["GET"]),
            Route("/profiles-metrics", metrics, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app
