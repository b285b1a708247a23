"""Per-credential limits: a token-bucket request rate and a cap on concurrent checks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cachetools import TTLCache

from checker.http_errors import ApiError

_MAX_CLIENTS = 100_000  # buckets kept; an idle bucket is full again anyway


class RateLimiter:
    """Token buckets keyed by credential: `rate` requests a second, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        idle = max(1.0, burst / rate) if rate > 0 else 3600.0
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(
            _MAX_CLIENTS, idle, timer=clock
        )

    def take(self, key: str) -> float:
        """Spend one token; 0.0 when allowed, else the seconds until one is available."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def check(self, key: str) -> None:
        """Spend one token or raise 429 rate_limited with Retry-After."""
        wait = self.take(key)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                "too many requests for this credential",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )


class ConcurrencyLimiter:
    """At most `limit` checks in flight per credential; the next one is a 429."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._active: dict[str, int] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Occupy one of `key`'s slots for the duration, or raise 429."""
        count = self._active.get(key, 0)
        if count >= self._limit:
            raise ApiError(
                429,
                "too_many_concurrent_requests",
                f"at most {self._limit} checks at once per credential",
                {"Retry-After": "1"},
            )
        self._active[key] = count + 1
        try:
            yield
        finally:
            left = self._active[key] - 1
            if left:
                self._active[key] = left
            else:
                del self._active[key]


class Limits:
    """The per-credential limits of one app."""

    def __init__(self, rate: float, burst: int, concurrent: int) -> None:
        self.rate = RateLimiter(rate, burst)
        self.concurrency = ConcurrencyLimiter(concurrent)
