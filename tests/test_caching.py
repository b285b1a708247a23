"""Cache lifetimes with an injected clock: refresh-ahead, back-off, stale-while-revalidate,
start-up warming, the persisted hot set, and the metrics that show them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from checker.app import create_app
from checker.names import DomainName, normalize_domain
from checker.prefetch import Prefetcher
from checker.settings import Settings
from checker.store import Store
from checker.wiring import PREFETCH_KEY, Deps, Engine, build_engine
from tests.conftest import ClientFactory
from tests.world import GOOD, REFUSED, World


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


GOOD_NAME = normalize_domain("good.test")


@pytest.fixture
async def engine(world: World, tmp_path: Path) -> AsyncIterator[tuple[Engine, FakeClock, Store]]:
    """An engine on a fake clock, with a store for the prefetcher's hot set."""
    clock = FakeClock()
    settings = Settings.from_env(
        {**world.env(), "CHECKER_DB": str(tmp_path / "c.db"), "CHECKER_STALE_SECONDS": "100"}
    )
    built = build_engine(settings, Deps(timer=clock))
    store = Store(settings.db)
    await store.open()
    yield built, clock, store
    await built.checker.close()
    await store.close()


def _asked(world: World, name: str, since: int) -> list[tuple[str, str, str]]:
    return [q for q in world.answerer.queries[since:] if q[1] == name]


async def _until(condition: object, what: str) -> None:
    for _ in range(200):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class TestRefreshAhead:
    """A hot entry is refreshed before it expires; a cold one is left to expire."""

    async def test_hot_entry_refreshed_cold_not(
        self, engine: tuple[Engine, FakeClock, Store], world: World
    ) -> None:
        """A hit late in a report's life refreshes it in the background; an unhit one is not."""
        built, clock, store = engine
        checker = built.checker
        prefetcher = Prefetcher(checker, store, built.metrics, jitter=0)
        runner = asyncio.create_task(prefetcher.run(None))
        cold = normalize_domain("nostarttls.test")
        try:
            await checker.check(GOOD_NAME)
            await checker.check(cold)
            old = checker._reports.peek("good.test")
            assert old is not None
            since = len(world.answerer.queries)
            clock.now += 0.85 * old.lifetime  # inside the refresh-ahead window, not expired
            hit = checker.cached(GOOD_NAME)
            assert hit is not None
            assert (hit.cached, hit.stale) == (True, False)
            refreshed = built.metrics.prefetch.labels("refreshed")
            await _until(lambda: refreshed._value.get() == 1, "the refresh")
            new = checker._reports.peek("good.test")
            assert new is not None
            assert new.expires > old.expires
            assert clock.now < old.expires  # refreshed before it expired
            # The report lived as long as its shortest part, mx.good.test's negative AAAA answer
            # (SOA minimum 60 s): that part is asked again, the MX answer (300 s) is reused.
            assert ("udp", "mx.good.test.", "AAAA") in _asked(world, "mx.good.test.", since)
            assert _asked(world, "good.test.", since) == []
            assert _asked(world, "nostarttls.test.", since) == []  # cold: left alone
            assert _asked(world, "mx.nostarttls.test.", since) == []
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def test_early_hit_does_not_refresh(
        self, engine: tuple[Engine, FakeClock, Store]
    ) -> None:
        """A hit early in a report's life asks for nothing."""
        built, clock, _ = engine
        asked: list[DomainName] = []
        built.checker.wants_refresh = asked.append
        await built.checker.check(GOOD_NAME)
        clock.now += 10
        assert built.checker.cached(GOOD_NAME) is not None
        assert asked == []


class TestStaleWhileRevalidate:
    """Past expiry a report is served marked stale, within the bound and no further."""

    async def test_stale_within_bound_only(self, engine: tuple[Engine, FakeClock, Store]) -> None:
        """Stale within CHECKER_STALE_SECONDS (and a refresh is asked for); gone after it."""
        built, clock, _ = engine
        asked: list[DomainName] = []
        built.checker.wants_refresh = asked.append
        await built.checker.check(GOOD_NAME)
        entry = built.checker._reports.peek("good.test")
        assert entry is not None
        clock.now = entry.expires + 50
        stale = built.checker.cached(GOOD_NAME)
        assert stale is not None
        assert (stale.cached, stale.stale) == (True, True)
        assert asked == [GOOD_NAME]
        clock.now = entry.expires + 101
        assert built.checker.cached(GOOD_NAME) is None

    async def test_stale_flag_in_the_api(
        self, world: World, tmp_path: Path, aiohttp_client: object
    ) -> None:
        """GET /v1/domains says "stale": true for a report served past its expiry."""
        clock = FakeClock()
        env = {**world.env(), "CHECKER_DB": str(tmp_path / "a.db")}
        env["CHECKER_SECRET_KEY_FILE"] = str(tmp_path / "k")
        app = create_app(Settings.from_env(env), Deps(timer=clock))
        client = await aiohttp_client(app)  # type: ignore[operator]
        first = await (await client.get("/v1/domains/good.test")).json()
        assert first["stale"] is False
        clock.now += 310  # the world's DNS answers live 300 s: the report is 10 s past expiry
        second = await (await client.get("/v1/domains/good.test")).json()
        assert (second["cached"], second["stale"]) == (True, True)


class TestBackoff:
    """Failed probes are retried later each time they fail again."""

    async def test_failure_lifetime_doubles_up_to_the_cap(
        self, world: World, tmp_path: Path
    ) -> None:
        """A refused address is asked again after 300 s, then 600 s, then 1000 s (the cap)."""
        clock = FakeClock()
        env = {
            **world.env(),
            "CHECKER_STALE_SECONDS": "0",
            "CHECKER_PROBE_BACKOFF_MAX": "1000",
            "CHECKER_DNS_MIN_TTL": "5000",  # DNS outlives the probes: only they expire
            "CHECKER_DNS_MAX_TTL": "5000",
        }
        built = build_engine(Settings.from_env(env), Deps(timer=clock))
        name = normalize_domain("refused.test")
        lifetimes = []
        try:
            for _ in range(4):
                await built.checker.check(name)
                entry = built.checker.probe_entry("mx.refused.test", REFUSED)
                assert entry is not None
                lifetimes.append(round(entry.lifetime))
                clock.now = entry.expires + 1
        finally:
            await built.checker.close()
        assert lifetimes == [300, 600, 1000, 1000]

    async def test_success_lifetime(self, engine: tuple[Engine, FakeClock, Store]) -> None:
        """A good probe lives CHECKER_PROBE_TTL."""
        built, _, _ = engine
        await built.checker.check(GOOD_NAME)
        entry = built.checker.probe_entry("mx.good.test", GOOD)
        assert entry is not None
        assert round(entry.lifetime) == 3600


class TestWarming:
    """Start-up warming from the list and from the hot set saved before a restart."""

    async def test_list_and_hot_set(self, make_client: ClientFactory, tmp_path: Path) -> None:
        """A listed domain is warm at start; a domain hot before a restart is warm after it."""
        listing = tmp_path / "warm.txt"
        listing.write_text("# warm these\ngood.test\nnot a domain\n")
        db = str(tmp_path / "warm.db")
        first = await make_client(prefetch="true", prefetch_file=str(listing), db=db)
        warmed = first.app[PREFETCH_KEY]
        await asyncio.wait_for(warmed.warmed.wait(), 30)
        report = await (await first.get("/v1/domains/good.test")).json()
        assert report["cached"] is True
        await first.get("/v1/domains/nostarttls.test")
        again = await (await first.get("/v1/domains/nostarttls.test")).json()
        assert again["cached"] is True  # a hit: nostarttls.test is now hot
        await first.close()  # saves the hot set
        empty = tmp_path / "empty.txt"
        empty.write_text("")
        second = await make_client(prefetch="true", prefetch_file=str(empty), db=db)
        rewarmed = second.app[PREFETCH_KEY]
        await asyncio.wait_for(rewarmed.warmed.wait(), 30)
        report = await (await second.get("/v1/domains/nostarttls.test")).json()
        assert report["cached"] is True


class TestMetrics:
    """The speed metrics exist with their labels."""

    async def test_names_and_labels(self, make_client: ClientFactory) -> None:
        """Prefetch, queue depths, audit jobs and preview recipients are exported."""
        client = await make_client()
        await client.post("/v1/preview", json={"recipients": ["a@good.test", "b@nullmx.test"]})
        created = await (
            await client.post("/v1/audits", json={"recipients": ["c@good.test"]})
        ).json()
        for _ in range(100):
            status = await (await client.get(f"/v1/audits/{created['id']}")).json()
            if status["status"] == "done":
                break
            await asyncio.sleep(0.05)
        text = await (await client.get("/metrics")).text()
        for line in (
            'mailpreflight_preview_recipients_total{method="tls",source="preview"} 1.0',
            'mailpreflight_preview_recipients_total{method="undeliverable",source="preview"} 1.0',
            'mailpreflight_preview_recipients_total{method="tls",source="audit"} 1.0',
            'mailpreflight_audit_jobs_total{status="queued"} 1.0',
            'mailpreflight_audit_jobs_total{status="done"} 1.0',
            'mailpreflight_queue_depth{queue="prefetch"} 0.0',
            'mailpreflight_queue_depth{queue="audit"} 0.0',
            "# TYPE mailpreflight_prefetch_total counter",
            "# TYPE mailpreflight_rate_limited_total counter",
            "# TYPE mailpreflight_cache_lookups_total counter",
        ):
            assert line in text, line
