"""`GET /profiles/{customer_id}` at send time: from the cache, else the warehouse, and never a
silent stale answer.

Before answering, the state of the last build is read (at most once a second): when the
warehouse does not answer, the last build's checks failed or it is older than
`profiles.error_after`, the customer's last good snapshot is served, else the declared default
profile; both are marked in `X-Profile-Fallback` (with `X-Profile-Fallback-Reason`) and
counted in `pipewarden_profile_responses_total`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
from pipewarden.profiles.build import last_build
from pipewarden.profiles.cache import CacheUnavailable, MemoryCache, RedisCache, make_cache
from pipewarden.serve.ready import GO, Readiness, readiness

#: The API waits this long for the warehouse before it falls back (seconds).
WAREHOUSE_LIMITS = Timeouts(connect=2.0, statement=2.0, lock=1.0)
#: How long the last build's state is trusted before it is read again (seconds).
STATE_SECONDS = 1.0


class WarehouseUnreachable(Exception):
    pass


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


class ProfileService:
    """What the endpoint asks: the build's state, the cache, the warehouse, in that order."""

    def __init__(self, config: PipewardenConfig, cache: RedisCache | MemoryCache) -> None:
        assert config.profiles is not None
        self.spec: ProfilesConfig = config.profiles
        self.schema = config.warehouse.schema_name
        self.engine = make_engine(config.warehouse.url, WAREHOUSE_LIMITS)
        self.cache = cache
        self._table: sa.Table | None = None
        self._state: tuple[float, BuildState | None] | None = None
        self._lock = threading.Lock()

    def state(self) -> BuildState | None:
        now = time.monotonic()
        if self._state is not None and now - self._state[0] < STATE_SECONDS:
            return self._state[1]
        with self._lock:
            try:
                with self.engine.connect() as conn:
                    row = last_build(conn, self.schema, self.spec.table)
            except sa.exc.DBAPIError as error:
                raise WarehouseUnreachable(type(error.orig).__name__) from None
            state = None
            if row is not None:
                as_of = _instant(row.as_of)
                assert as_of is not None
                state = BuildState(
                    row.build_id, row.status == "ok", as_of, _instant(row.data_as_of)
                )
                self.cache.new_build(state.build_id)
            self._state = (now, state)
            return state

    def _read(self, customer_id: str) -> dict[str, Any] | None:
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
        except sa.exc.DBAPIError as error:
            raise WarehouseUnreachable(type(error.orig).__name__) from None
        return dict(row) if row is not None else None

    def _fallback(self, customer_id: str, reason: str) -> Answer:
        try:
            snapshot = self.cache.snapshot(customer_id)
        except CacheUnavailable:
            snapshot = None
        if snapshot is not None:
            return Answer(snapshot, "snapshot", reason, _instant(snapshot.get("_data_as_of")))
        return Answer(dict(self.spec.api.default_profile), "default", reason, None)

    def _reason(self) -> tuple[str | None, BuildState | None]:
        try:
            state = self.state()
        except WarehouseUnreachable:
            return "warehouse-unreachable", None
        if state is None:
            return "no-build", None
        if not state.ok:
            return "checks-failing", state
        limit = self.spec.error_after
        if limit is not None and datetime.now(UTC) - state.as_of > limit:
            return "past-error-sla", state
        return None, state

    def answer(self, customer_id: str) -> Answer:
        reason, state = self._reason()
        if reason is not None:
            return self._fallback(customer_id, reason)
        assert state is not None
        try:
            cached = self.cache.get(customer_id)
        except CacheUnavailable:
            cached = None
        if cached is not None:
            return Answer(
                cached, "cache", None, _instant(cached.get("_data_as_of")) or state.data_as_of
            )
        try:
            row = self._read(customer_id)
        except WarehouseUnreachable:
            return self._fallback(customer_id, "warehouse-unreachable")
        if row is None:
            return Answer(dict(self.spec.api.default_profile), "default", "no-profile", None)
        with contextlib.suppress(CacheUnavailable):  # answered all the same; tried next read
            self.cache.put([row])
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


def create_profiles_app(config: PipewardenConfig) -> Starlette:
    """The API alone (`pipewarden serve --only profiles`); refuses to start without a token."""
    if config.profiles is None:
        raise ValueError("the configuration declares no profiles (profiles: in pipewarden.yaml)")
    api = config.profiles.api
    if api.token is None or not api.token.get_secret_value():
        raise ValueError("profiles.api.token is not set: the API answers no one without it")
    expected = ("Bearer " + api.token.get_secret_value()).encode()
    service = ProfileService(config, make_cache(api))
    registry = CollectorRegistry()
    responses = Counter(
        "pipewarden_profile_responses",
        "Profiles answered, by where the answer came from and why a fallback was served",
        ["source", "reason"],
        registry=registry,
    )

    def refused(request: Request) -> Response | None:
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return None
        return JSONResponse(
            {"error": "a valid bearer token is required"},
            401,
            headers={"WWW-Authenticate": 'Bearer realm="profiles"'},
        )

    def profile(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        customer_id = request.path_params["customer_id"]
        answer = service.answer(customer_id)
        responses.labels(answer.source, answer.reason or "none").inc()
        body = json.dumps(project(answer.profile, customer_id, api.fields), sort_keys=True)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
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
        if etag in request.headers.get("if-none-match", ""):
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
            answer = Readiness(campaign)
            answer.hold(f"the warehouse did not answer ({type(error.orig).__name__})")
        return JSONResponse(answer.as_dict(), 200 if answer.decision == GO else 503)

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/profiles/{customer_id}", profile, methods=["GET"]),
            Route("/profiles-metrics", metrics, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ]
    )
    app.state.service = service
    return app
