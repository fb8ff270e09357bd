"""A build, then its profiles into the cache: refreshed for the customers it changed, and kept
as the last good snapshot when its checks passed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.profiles.build import BuildResult, build_profiles
from pipewarden.profiles.cache import MemoryCache, RedisCache, make_cache

_CHUNK = 1000


def read_profiles(
    engine: sa.Engine, config: PipewardenConfig, customer_ids: list[str]
) -> Iterator[dict[str, Any]]:
    """The profile rows of these customers, read a chunk at a time."""
    assert config.profiles is not None
    table = sa.Table(
        config.profiles.table,
        sa.MetaData(schema=config.warehouse.schema_name),
        autoload_with=engine,
    )
    with engine.connect() as conn:
        for start in range(0, len(customer_ids), _CHUNK):
            chunk = customer_ids[start : start + _CHUNK]
            query = sa.select(table).where(table.c.customer_id.in_(chunk))
            yield from (dict(row) for row in conn.execute(query).mappings())


def publish(
    engine: sa.Engine,
    config: PipewardenConfig,
    result: BuildResult,
    cache: RedisCache | MemoryCache,
) -> None:
    """Refresh the changed customers in the cache; snapshot them when the build is good. A
    failed build forgets their cached entries, so the API reads (and judges) afresh."""
    if result.status != "ok":
        cache.forget(result.changed)
        return
    built = {"_data_as_of": result.data_as_of, "_build_id": result.build_id}
    for start in range(0, len(result.changed), _CHUNK):
        chunk = result.changed[start : start + _CHUNK]
        rows = read_profiles(engine, config, chunk)
        cache.put(({**row, **built} for row in rows), snapshot=True)


def build_and_publish(
    engine: sa.Engine, config: PipewardenConfig, full: bool = False
) -> BuildResult:
    assert config.profiles is not None
    result = build_profiles(engine, config, full=full)
    publish(engine, config, result, make_cache(config.profiles.api))
    return result
