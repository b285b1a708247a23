"""A bounded TTL cache with single-flight: one computation per key, however many wait for it.

Entries may be kept for a while past their lifetime (`stale` seconds) so that a caller can
choose to serve a slightly stale value while a refresh runs (stale-while-revalidate).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from cachetools import TLRUCache

K = TypeVar("K")
V = TypeVar("V")
Lookup = Literal["hit", "miss", "stale"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    """A value, when it was stored and when it stops being fresh (timer clock)."""

    value: V
    born: float
    expires: float

    @property
    def lifetime(self) -> float:
        """Seconds the value is fresh for, from when it was stored."""
        return self.expires - self.born

    def remaining(self, now: float) -> float:
        """Seconds of freshness left at `now` (negative once stale)."""
        return self.expires - now


class FlightCache(Generic[K, V]):
    """Caches each value for `lifetime(value)` seconds and shares computations in flight.

    A waiter that is cancelled (a client that disconnected) never cancels the shared computation.
    """

    def __init__(
        self,
        maxsize: int,
        lifetime: Callable[[V], float],
        timer: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[Lookup], None] | None = None,
        stale: float = 0.0,
    ) -> None:
        self._lifetime = lifetime
        self._timer = timer
        self._on_lookup = on_lookup
        self._stale = stale
        self._entries: TLRUCache[K, Cached[V]] = TLRUCache(
            maxsize=maxsize, ttu=lambda _k, entry, _now: entry.expires + stale, timer=timer
        )
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def timer(self) -> Callable[[], float]:
        """The clock entries are timed with."""
        return self._timer

    def peek(self, key: K) -> Cached[V] | None:
        """The entry for `key`, fresh or within its stale window; never computes, never counts."""
        return self._entries.get(key)

    def in_flight(self, key: K) -> asyncio.Task[V] | None:
        """The shared computation for `key` if one is running."""
        return self._inflight.get(key)

    def lookup(self, key: K) -> Cached[V] | None:
        """Like `peek`, counted as a hit, a stale hit or a miss."""
        entry = self._entries.get(key)
        if entry is None:
            self._record("miss")
        else:
            self._record("hit" if entry.remaining(self._timer()) >= 0 else "stale")
        return entry

    async def get(
        self, key: K, compute: Callable[[], Awaitable[V]], min_remaining: float = 0.0
    ) -> tuple[Cached[V], bool]:
        """(entry, came_from_cache): a fresh entry with at least `min_remaining` seconds left,
        else the value computed at most once at a time per key.
        """
        entry = self._entries.get(key)
        if entry is not None and entry.remaining(self._timer()) >= max(min_remaining, 0.0):
            self._record("hit")
            return entry, True
        self._record("miss")
        value = await asyncio.shield(self.start(key, compute))
        now = self._timer()
        return Cached(value, now, now + self._lifetime(value)), False

    def start(self, key: K, compute: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        """Start computing `key` unless it is already being computed; return the shared task."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(compute())
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._finish(key, t))
        return task

    def put(self, key: K, value: V) -> None:
        """Store `value` for its lifetime (a lifetime of zero or less stores nothing)."""
        life = self._lifetime(value)
        if life > 0:
            now = self._timer()
            self._entries[key] = Cached(value, now, now + life)

    async def close(self) -> None:
        """Cancel every computation in flight and wait for them to end."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _finish(self, key: K, task: asyncio.Task[V]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled():
            return
        exc = task.exception()  # marks it retrieved even when every waiter has gone
        if exc is not None:
            log.error("cached computation failed", exc_info=exc)
            return
        self.put(key, task.result())

    def _record(self, result: Lookup) -> None:
        if self._on_lookup is not None:
            self._on_lookup(result)
