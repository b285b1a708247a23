"""Keeping hot domains warm: start-up warming, refresh-ahead, and a persisted hot set.

A compose window must be answered from memory. So (1) at start-up the caches are warmed from a
list of common mailbox providers and from the domains that were hot before the restart; (2) a
report hit in the last part of its life (or served stale) is refreshed in the background, by a
few workers with jitter, from a bounded queue; (3) hits are counted and the hottest domains are
written to the database now and then, to be warmed again after the next restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from checker.domain_checker import DomainChecker
from checker.metrics import Metrics
from checker.names import DomainName, InvalidDomain, normalize_domain
from checker.store import Store, transaction

log = logging.getLogger(__name__)

PERSIST_EVERY = 60.0  # seconds between writes of the hot set


def default_list() -> list[str]:
    """The packaged list of common mailbox providers."""
    text = (resources.files("checker") / "data" / "prefetch-domains.txt").read_text()
    return _names(text.splitlines())


def read_list(path: Path) -> list[str]:
    """Domains from a file, one a line, `#` comments allowed."""
    return _names(path.read_text(encoding="utf-8").splitlines())


def _names(lines: Iterable[str]) -> list[str]:
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


class Prefetcher:
    """The refresh queue, its workers, and the hot set."""

    def __init__(
        self,
        checker: DomainChecker,
        store: Store,
        metrics: Metrics,
        *,
        workers: int = 2,
        queue_size: int = 1000,
        jitter: float = 1.0,
        hot_size: int = 1000,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._checker = checker
        self._store = store
        self._metrics = metrics
        self._workers = workers
        self._jitter = jitter
        self._hot_size = hot_size
        self._rand = rand
        self._queue: asyncio.Queue[tuple[DomainName, str]] = asyncio.Queue(queue_size)
        self._pending: set[str] = set()
        self._hits: Counter[str] = Counter()
        self.warmed = asyncio.Event()  # set once the start-up warming has been worked off
        checker.wants_refresh = self.request
        checker.on_hit = self.hit

    def depth(self) -> int:
        """Domains waiting to be refreshed."""
        return self._queue.qsize()

    def request(self, name: DomainName) -> None:
        """Ask for a background refresh of `name`; dropped (and counted) when the queue is full."""
        if name.ascii in self._pending:
            return
        try:
            self._queue.put_nowait((name, "refreshed"))
        except asyncio.QueueFull:
            self._metrics.prefetch.labels("dropped").inc()
            return
        self._pending.add(name.ascii)

    def hit(self, ascii_name: str) -> None:
        """Count a cache hit for the hot set (bounded: only the hottest names are kept)."""
        self._hits[ascii_name] += 1
        if len(self._hits) > 10 * self._hot_size:
            self._hits = Counter(dict(self._hits.most_common(self._hot_size)))

    async def run(self, warm: Iterable[str] | None = None) -> None:
        """Serve the queue; persist hits as we go. With `warm` (not None), first warm those
        names and the stored hot set."""
        workers = [asyncio.create_task(self._worker()) for _ in range(self._workers)]
        try:
            if warm is not None:
                hot = await self._store.run(lambda db: _hot(db, self._hot_size))
                await self._warm([*warm, *hot])
                await self._queue.join()
            self.warmed.set()
            while True:
                await asyncio.sleep(PERSIST_EVERY)
                try:
                    await self.persist()
                except sqlite3.Error:  # e.g. locked by a CLI command: try again next time
                    log.exception("could not save the hot set")
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            try:
                await asyncio.shield(self.persist())
            except sqlite3.Error:
                log.exception("could not save the hot set at exit")

    async def persist(self) -> None:
        """Add the hits counted since the last call to the stored hot set; keep the hottest."""
        hits, self._hits = self._hits, Counter()
        if hits:
            now = time.time()
            rows = [(d, n, now) for d, n in hits.items()]
            await self._store.run(lambda db: _save_hot(db, rows, self._hot_size))

    async def _warm(self, names: Iterable[str]) -> None:
        seen: set[str] = set()
        for text in names:
            try:
                name = normalize_domain(text)
            except InvalidDomain:
                log.warning("prefetch: skipping %r, not a domain", text[:100])
                continue
            if name.ascii not in seen and name.ascii not in self._pending:
                seen.add(name.ascii)
                self._pending.add(name.ascii)
                await self._queue.put((name, "warmed"))

    async def _worker(self) -> None:
        while True:
            name, outcome = await self._queue.get()
            try:
                await asyncio.sleep(self._jitter * self._rand())
                await self._checker.refresh(name)
                self._metrics.prefetch.labels(outcome).inc()
            except Exception:
                log.exception("prefetch of %s failed", name.ascii)
                self._metrics.prefetch.labels("failed").inc()
            finally:
                self._pending.discard(name.ascii)
                self._queue.task_done()


def _hot(db: sqlite3.Connection, limit: int) -> list[str]:
    rows = db.execute(
        "SELECT domain FROM hot_domains ORDER BY hits DESC, last_hit DESC LIMIT ?", (limit,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def _save_hot(db: sqlite3.Connection, rows: list[tuple[str, int, float]], limit: int) -> None:
    with transaction(db):
        db.executemany(
            "INSERT INTO hot_domains (domain, hits, last_hit) VALUES (?, ?, ?)"
            " ON CONFLICT (domain) DO UPDATE SET hits = hits + excluded.hits,"
            " last_hit = excluded.last_hit",
            rows,
        )
        db.execute(
            "DELETE FROM hot_domains WHERE domain NOT IN"
            " (SELECT domain FROM hot_domains ORDER BY hits DESC, last_hit DESC LIMIT ?)",
            (limit,),
        )
