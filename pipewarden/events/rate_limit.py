"""A token bucket per (stream, sending address): a flood from one source cannot starve others.

The buckets live in one receiver process: several receivers each allow a source its limit.
"""

import time
from collections import OrderedDict

from pipewarden.config.streams import RateLimitConfig

#: Buckets remembered at most (the least recently used are forgotten: memory stays flat).
MAX_SOURCES = 10_000


class RateLimiter:
    """`allow(key)` takes one token from the key's bucket; False (and the wait) when empty."""

    def __init__(self, limit: RateLimitConfig) -> None:
        self.rate = limit.per_second
        self.capacity = limit.capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> tuple[bool, float]:
        """Whether a request of `key` may pass now, and else how long until it may."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_SOURCES:
            self._buckets.popitem(last=False)
        return allowed, 0.0 if allowed else (1.0 - tokens) / self.rate
