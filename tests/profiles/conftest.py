"""Fixtures of the profiles tests: a Redis key prefix of each test's own."""

from collections.abc import Iterator

import pytest
import redis

from tests.profiles.support import REDIS_URL, unique_suffix


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the running Redis, its keys deleted afterwards."""
    prefix = f"pwtest{unique_suffix()}:"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    yield prefix
    keys = list(client.scan_iter(prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()
