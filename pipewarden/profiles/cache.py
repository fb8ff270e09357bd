"""Where the API finds profiles before the warehouse: Redis (by URL) or the process's memory.

Two kinds of entries per customer: the cached profile (filled on read, refreshed by builds,
expiring after `cache_ttl`) and the last good snapshot (written by each build whose checks
passed, never expiring): what the API serves, marked, when it must not trust the warehouse.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
import redis
import redis.asyncio

from pipewarden.config.profiles import ApiConfig

#: Every Redis call gives up after this long: the API then answers without the cache.
REDIS_TIMEOUT_SECONDS = 0.5


class CacheUnavailable(Exception):
    """The cache did not answer: the caller goes on without it (and counts it)."""


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def encode(profile: dict[str, Any]) -> str:
    return json.dumps({k: _plain(v) for k, v in profile.items()}, sort_keys=True)


def as_cached(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile as the cache gives it back (decimals as numbers, times as ISO text), so an
    answer read from the warehouse is the same body, and ETag, as the cached one."""
    return orjson.loads(encode(profile))  # type: ignore[no-any-return]


class ProfileCache(Protocol):
    def get(self, customer_id: str) -> dict[str, Any] | None: ...
    def snapshot(self, customer_id: str) -> dict[str, Any] | None: ...
    async def aget(self, customer_id: str) -> dict[str, Any] | None: ...
    async def asnapshot(self, customer_id: str) -> dict[str, Any] | None: ...
    def put(self, profiles: Iterable[dict[str, Any]], snapshot: bool = False) -> None: ...
    def forget(self, customer_ids: Iterable[str], snapshot: bool = False) -> None: ...
    def new_build(self, build_id: int) -> None: ...


class RedisCache:
    def __init__(self, url: str, prefix: str, ttl_seconds: int) -> None:
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            decode_responses=True,
        )
        self.prefix, self.ttl = prefix, ttl_seconds
        self.url = url
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis] | None = None

    def _async_client(self) -> redis.asyncio.Redis:
        """The API's reads go through an asyncio client of the running loop: no thread hop."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._async = (loop, client)
        return self._async[1]

    async def _aread(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self._async_client().get(self.prefix + key)
        except (redis.RedisError, OSError) as error:
            raise CacheUnavailable(type(error).__name__) from None
        return orjson.loads(raw) if raw else None  # type: ignore[no-any-return]

    async def aget(self, customer_id: str) -> dict[str, Any] | None:
        return await self._aread("p:" + customer_id)

    async def asnapshot(self, customer_id: str) -> dict[str, Any] | None:
        return await self._aread("s:" + customer_id)

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self.client.get(self.prefix + key)
        except redis.RedisError as error:
            raise CacheUnavailable(type(error).__name__) from None
        return json.loads(raw) if raw else None  # type: ignore[arg-type]

    def get(self, customer_id: str) -> dict[str, Any] | None:
        return self._read("p:" + customer_id)

    def snapshot(self, customer_id: str) -> dict[str, Any] | None:
        return self._read("s:" + customer_id)

    def put(self, profiles: Iterable[dict[str, Any]], snapshot: bool = False) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for profile in profiles:
                    key, value = str(profile["customer_id"]), encode(profile)
                    pipe.set(self.prefix + "p:" + key, value, ex=self.ttl)
                    if snapshot:
                        pipe.set(self.prefix + "s:" + key, value)
                pipe.execute()
        except redis.RedisError as error:
            raise CacheUnavailable(type(error).__name__) from None

    def forget(self, customer_ids: Iterable[str], snapshot: bool = False) -> None:
        """Drop the cached entries (and with `snapshot`, the snapshots: deleted customers)."""
        kinds = ("p:", "s:") if snapshot else ("p:",)
        keys = [self.prefix + kind + key for key in customer_ids for kind in kinds]
        try:
            if keys:
                self.client.delete(*keys)
        except redis.RedisError as error:
            raise CacheUnavailable(type(error).__name__) from None

    def new_build(self, build_id: int) -> None:
        """Nothing to do: the build refreshed the customers it changed."""


class MemoryCache:
    """The cache of one process: a build elsewhere cannot refresh it, so entries carry the
    build they were read at and the API drops them when it sees a newer build."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self.entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.build_id: int | None = None

    def get(self, customer_id: str) -> dict[str, Any] | None:
        entry = self.entries.get(customer_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def snapshot(self, customer_id: str) -> dict[str, Any] | None:
        return self.snapshots.get(customer_id)

    async def aget(self, customer_id: str) -> dict[str, Any] | None:
        return self.get(customer_id)

    async def asnapshot(self, customer_id: str) -> dict[str, Any] | None:
        return self.snapshot(customer_id)

    def put(self, profiles: Iterable[dict[str, Any]], snapshot: bool = False) -> None:
        expires = time.monotonic() + self.ttl
        with self.lock:
            for profile in profiles:
                value = as_cached(profile)
                self.entries[str(profile["customer_id"])] = (expires, value)
                if snapshot:
                    self.snapshots[str(profile["customer_id"])] = value

    def forget(self, customer_ids: Iterable[str], snapshot: bool = False) -> None:
        with self.lock:
            for key in customer_ids:
                self.entries.pop(key, None)
                if snapshot:
                    self.snapshots.pop(key, None)

    def new_build(self, build_id: int) -> None:
        """A build this process did not see: every entry may be stale, so all are dropped."""
        if build_id != self.build_id:
            with self.lock:
                self.entries.clear()
                self.build_id = build_id


def make_cache(api: ApiConfig) -> RedisCache | MemoryCache:
    ttl = max(1, int(api.cache_ttl.total_seconds()))
    if api.redis_url:
        return RedisCache(api.redis_url, api.key_prefix, ttl)
    return MemoryCache(ttl)
