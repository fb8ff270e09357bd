"""A build, then its profiles into the cache: refreshed for the customers it changed, and kept
as the last good snapshot when its checks passed."""

from __future__ import annotations

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.profiles.build import BuildResult, build_locked
from pipewarden.profiles.build_lock import build_lock
from pipewarden.profiles.cache import CacheUnavailable, MemoryCache, RedisCache, make_cache
from pipewarden.profiles.tables import profile_chunks
from pipewarden.records.metrics import CheckResult


class CacheNotRefreshed(Exception):
    """The build is in the warehouse but the cache did not take it: the API may answer the
    changed customers from their older cached entries, so the caller must say so."""


def publish(
    engine: sa.Engine,
    config: PipewardenConfig,
    result: BuildResult,
    cache: RedisCache | MemoryCache,
) -> None:
    """Refresh the changed customers in the cache; snapshot them when the build is good. A
    failed build forgets their cached entries, so the API reads (and judges) afresh; a deleted
    customer's entry and snapshot are forgotten."""
    if result.status != "ok":
        cache.forget(result.changed)
        return
    built = {"_data_as_of": result.data_as_of, "_build_id": result.build_id}
    for chunk, rows in profile_chunks(engine, config, result.changed):
        cache.put(({**row, **built} for row in rows), snapshot=True)
        # Changed without a row: deleted customers, whose data must not be served again.
        found = {str(row["customer_id"]) for row in rows}
        cache.forget([key for key in chunk if key not in found], snapshot=True)


def build_checked(
    engine: sa.Engine,
    config: PipewardenConfig,
    full: bool = False,
    cache: RedisCache | MemoryCache | None = None,
) -> tuple[BuildResult, list[CheckResult]]:
    """Build, watch the build like a table (`monitor.watch_build`: its checks may mark it
    failed), then refresh the cache from what the checks let through.

    All three under the build lock: a later build's rows must not be judged as this build's,
    nor this build's cache refresh land after a later build's (the cache would then hold older
    profiles than the warehouse, with nothing to say so)."""
    from pipewarden.profiles.monitor import watch_build  # the detector: not for the API

    assert config.profiles is not None
    with build_lock(engine, config, config.profiles.table):
        result = build_locked(engine, config, full=full)
        checks = watch_build(engine, config, result)
        try:
            publish(engine, config, result, cache or make_cache(config.profiles.api))
        except CacheUnavailable as error:
            raise CacheNotRefreshed(
                f"profiles build {result.build_id} is in the warehouse (checks "
                f"{result.status}), but the cache did not answer ({error}): the API may answer "
                f"its {len(result.changed)} changed customer(s) from their older cached "
                "profiles until profiles.api.cache_ttl, and no snapshot of them was kept; once "
                "Redis answers, run `pipewarden profiles build --full`"
            ) from None
    return result, checks


def build_and_publish(
    engine: sa.Engine, config: PipewardenConfig, full: bool = False
) -> BuildResult:
    """`build_checked`, for callers that want the build only."""
    return build_checked(engine, config, full)[0]
