"""A bounded TTL cache with single-flight: one computation per key, however many wait for it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import TLRUCache

K = TypeVar("K")
V = TypeVar("V")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    """A value with the (timer-clock) moment it stops being served."""

    value: V
    expires: float


class FlightCache(Generic[K, V]):
    """Caches each value for `lifetime(value)` seconds and shares computations in flight.

    A waiter that is cancelled (a client that disconnected) never cancels the shared computation.
    """

    def __init__(
        self,
        maxsize: int,
        lifetime: Callable[[V], float],
        timer: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self._lifetime = lifetime
        self._timer = timer
        self._on_lookup = on_lookup
        self._entries: TLRUCache[K, Cached[V]] = TLRUCache(
            maxsize=maxsize, ttu=lambda _k, entry, _now: entry.expires, timer=timer
        )
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> Cached[V] | None:
        """The cached entry for `key` if it is still fresh; never computes."""
        return self._entries.get(key)

    def in_flight(self, key: K) -> asyncio.Task[V] | None:
        """The shared computation for `key` if one is running."""
        return self._inflight.get(key)

    def lookup(self, key: K) -> Cached[V] | None:
        """Like `peek`, and counted as a hit or a miss."""
        entry = self._entries.get(key)
        self._record(entry is not None)
        return entry

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> tuple[Cached[V], bool]:
        """Return (entry, came_from_cache), computing the value at most once at a time per key."""
        entry = self.lookup(key)
        if entry is not None:
            return entry, True
        value = await asyncio.shield(self.start(key, compute))
        return Cached(value, self._timer() + self._lifetime(value)), False

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
            self._entries[key] = Cached(value, self._timer() + life)

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

    def _record(self, hit: bool) -> None:
        if self._on_lookup is not None:
            self._on_lookup(hit)
