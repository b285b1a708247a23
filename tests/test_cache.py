"""FlightCache: values cached for their own lifetime, one computation per key in flight."""

from __future__ import annotations

import asyncio
import logging

import pytest

from checker.cache import Cached, FlightCache


def _ve(entry: Cached[int] | None) -> tuple[int, float] | None:
    """(value, expires) of an entry, or None."""
    return None if entry is None else (entry.value, entry.expires)


class FakeTimer:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Computation:
    """A counted computation that can be held until the test releases it."""

    def __init__(self, value: int = 7, error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> int:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        return self.value


def _ready(value: int) -> Computation:
    computation = Computation(value)
    computation.release.set()
    return computation


def _cache(
    timer: FakeTimer, lifetime: float = 60.0, maxsize: int = 100, lookups: list[str] | None = None
) -> FlightCache[str, int]:
    return FlightCache(
        maxsize=maxsize,
        lifetime=lambda _value: lifetime,
        timer=timer,
        on_lookup=None if lookups is None else lookups.append,
    )


class TestLifetime:
    """Each value is served for `lifetime(value)` seconds of the injected timer."""

    async def test_cached_until_lifetime_ends(self) -> None:
        """A computed value is served from the cache until its lifetime ends, then recomputed."""
        timer = FakeTimer()
        cache = _cache(timer, lifetime=60)
        compute = _ready(7)
        assert await cache.get("k", compute) == (Cached(7, 1000.0, 1060.0), False)
        timer.now = 1059.9
        assert await cache.get("k", compute) == (Cached(7, 1000.0, 1060.0), True)
        assert compute.calls == 1
        timer.now = 1060.1
        entry, cached = await cache.get("k", compute)
        assert (entry.value, cached) == (7, False)
        assert compute.calls == 2

    async def test_lifetime_depends_on_value(self) -> None:
        """The lifetime function sees the value, so failures can live shorter than successes."""
        timer = FakeTimer(0.0)
        cache: FlightCache[str, int] = FlightCache(100, lifetime=float, timer=timer)
        await cache.get("short", _ready(5))
        await cache.get("long", _ready(50))
        timer.now = 10.0
        assert cache.peek("short") is None
        assert _ve(cache.peek("long")) == (50, 50.0)

    @pytest.mark.parametrize("lifetime", [0.0, -1.0])
    async def test_non_positive_lifetime_stores_nothing(self, lifetime: float) -> None:
        """A value whose lifetime is zero or less is returned but not stored."""
        timer = FakeTimer()
        cache = _cache(timer, lifetime=lifetime)
        compute = _ready(3)
        entry, cached = await cache.get("k", compute)
        assert (entry.value, cached) == (3, False)
        assert len(cache) == 0
        assert cache.peek("k") is None
        await cache.get("k", compute)
        assert compute.calls == 2

    @pytest.mark.parametrize("lifetime", [0.0, -5.0])
    def test_put_with_non_positive_lifetime(self, lifetime: float) -> None:
        """`put` ignores a value whose lifetime is zero or less."""
        cache = _cache(FakeTimer(), lifetime=lifetime)
        cache.put("k", 1)
        assert len(cache) == 0

    async def test_value_without_lifetime_evicts_nothing(self) -> None:
        """A value that is not stored never pushes a live entry out of a full cache."""
        cache: FlightCache[str, int] = FlightCache(1, lifetime=float, timer=FakeTimer(0.0))
        cache.put("live", 30)
        entry, cached = await cache.get("dead", _ready(0))
        assert (entry.value, cached) == (0, False)
        assert _ve(cache.peek("live")) == (30, 30.0)
        assert len(cache) == 1

    def test_put_then_peek(self) -> None:
        """`put` stores a value that `peek` returns with its expiry moment."""
        timer = FakeTimer(10.0)
        cache = _cache(timer, lifetime=5)
        cache.put("k", 1)
        assert _ve(cache.peek("k")) == (1, 15.0)
        timer.now = 15.5
        assert cache.peek("k") is None

    def test_maxsize_bounds_entries(self) -> None:
        """The cache never holds more entries than `maxsize`."""
        cache = _cache(FakeTimer(), maxsize=3)
        for number in range(10):
            cache.put(f"k{number}", number)
        assert len(cache) == 3
        assert _ve(cache.peek("k9")) == (9, 1060.0)
        assert cache.peek("k0") is None


class TestSingleFlight:
    """Concurrent requests for one key share one computation."""

    async def test_concurrent_gets_compute_once(self) -> None:
        """Many concurrent `get` calls for one key run `compute` once and all get its value."""
        cache = _cache(FakeTimer())
        compute = Computation(42)
        waiters = [asyncio.create_task(cache.get("k", compute)) for _ in range(5)]
        await compute.started.wait()
        assert cache.in_flight("k") is not None
        compute.release.set()
        results = await asyncio.gather(*waiters)
        assert compute.calls == 1
        assert {(entry.value, cached) for entry, cached in results} == {(42, False)}
        assert cache.in_flight("k") is None
        assert cache.peek("k") is not None

    async def test_other_keys_compute_separately(self) -> None:
        """Different keys never share a computation."""
        cache = _cache(FakeTimer())
        first, second = _ready(1), _ready(2)
        results = await asyncio.gather(cache.get("a", first), cache.get("b", second))
        assert [entry.value for entry, _ in results] == [1, 2]
        assert (first.calls, second.calls) == (1, 1)

    async def test_start_returns_the_shared_task(self) -> None:
        """`start` hands back the task already running for a key instead of a new one."""
        cache = _cache(FakeTimer())
        compute = Computation(1)
        task = cache.start("k", compute)
        assert cache.start("k", compute) is task
        compute.release.set()
        assert await task == 1
        assert compute.calls == 1

    async def test_cancelled_waiter_does_not_cancel_computation(self) -> None:
        """Cancelling one waiter leaves the shared computation running for the others."""
        cache = _cache(FakeTimer())
        compute = Computation(9)
        leaving = asyncio.create_task(cache.get("k", compute))
        staying = asyncio.create_task(cache.get("k", compute))
        await compute.started.wait()
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        shared = cache.in_flight("k")
        assert shared is not None
        assert not shared.done()
        compute.release.set()
        entry, cached = await staying
        assert (entry.value, cached) == (9, False)
        assert compute.cancelled is False
        assert compute.calls == 1

    async def test_computation_finishes_after_every_waiter_left(self) -> None:
        """A computation whose only waiter left still completes and fills the cache."""
        cache = _cache(FakeTimer())
        compute = Computation(5)
        waiter = asyncio.create_task(cache.get("k", compute))
        await compute.started.wait()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        shared = cache.in_flight("k")
        assert shared is not None
        compute.release.set()
        assert await shared == 5
        assert _ve(cache.peek("k")) == (5, 1060.0)

    async def test_exception_reaches_every_waiter_and_is_not_cached(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed computation raises in every waiter, is logged once, and is not cached."""
        caplog.set_level(logging.ERROR)
        cache = _cache(FakeTimer())
        failing = Computation(error=RuntimeError("resolver broke"))
        waiters = [asyncio.create_task(cache.get("k", failing)) for _ in range(3)]
        await failing.started.wait()
        failing.release.set()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert [str(r) for r in results] == ["resolver broke"] * 3
        assert all(isinstance(r, RuntimeError) for r in results)
        assert failing.calls == 1
        assert [(r.name, r.getMessage()) for r in caplog.records] == [
            ("checker.cache", "cached computation failed")
        ]
        assert len(cache) == 0
        assert cache.in_flight("k") is None
        retry = _ready(8)
        entry, cached = await cache.get("k", retry)
        assert (entry.value, cached, retry.calls) == (8, False, 1)


class TestClose:
    """`close` ends every computation still in flight."""

    async def test_close_cancels_computations(self, caplog: pytest.LogCaptureFixture) -> None:
        """Computations in flight are cancelled quietly, waiters see it, and nothing is stored."""
        caplog.set_level(logging.WARNING)
        cache = _cache(FakeTimer())
        first, second = Computation(1), Computation(2)
        waiter = asyncio.create_task(cache.get("a", first))
        task = cache.start("b", second)
        await first.started.wait()
        await second.started.wait()
        async with asyncio.timeout(5):
            await cache.close()
        assert first.cancelled is True
        assert second.cancelled is True
        assert task.cancelled()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert cache.in_flight("a") is None
        assert cache.in_flight("b") is None
        assert len(cache) == 0
        assert caplog.records == []

    async def test_close_with_nothing_in_flight(self) -> None:
        """Closing an idle cache returns at once and keeps stored values."""
        cache = _cache(FakeTimer())
        cache.put("k", 1)
        await cache.close()
        assert _ve(cache.peek("k")) == (1, 1060.0)


class TestLookups:
    """The `on_lookup` callback counts hits and misses."""

    async def test_get_reports_miss_then_hit(self) -> None:
        """A first `get` is a miss, a repeat within the lifetime a hit."""
        lookups: list[str] = []
        cache = _cache(FakeTimer(), lookups=lookups)
        compute = _ready(1)
        await cache.get("k", compute)
        await cache.get("k", compute)
        await cache.get("other", _ready(2))
        assert lookups == ["miss", "hit", "miss"]

    def test_lookup_counts_and_peek_does_not(self) -> None:
        """`lookup` reports each call; `peek` reports nothing."""
        lookups: list[str] = []
        cache = _cache(FakeTimer(), lookups=lookups)
        assert cache.lookup("k") is None
        cache.put("k", 4)
        assert _ve(cache.lookup("k")) == (4, 1060.0)
        assert _ve(cache.peek("k")) == (4, 1060.0)
        assert lookups == ["miss", "hit"]

    async def test_expired_entry_is_a_miss(self) -> None:
        """An entry past its lifetime is reported as a miss."""
        lookups: list[str] = []
        timer = FakeTimer()
        cache = _cache(timer, lifetime=10, lookups=lookups)
        cache.put("k", 1)
        timer.now += 11
        entry, cached = await cache.get("k", _ready(2))
        assert (entry.value, cached) == (2, False)
        assert lookups == ["miss"]
