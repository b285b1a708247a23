"""The report log: every domain check and preview recorded, and the reports read back from it.

Recording is synchronous and cheap (an append to a bounded in-memory buffer), so a request never
waits on the database for it; a background loop writes the buffer once a second in one
transaction and prunes rows older than the retention once an hour.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from checker.metrics import Metrics
from checker.models import DomainReport, iso
from checker.preview import Preview
from checker.store import Store, transaction

log = logging.getLogger(__name__)

MAX_PENDING = 50_000  # rows held while the database falls behind; beyond it the oldest go
FLUSH_EVERY = 1.0  # seconds between writes of the buffer
PRUNE_EVERY = 3600.0  # seconds between retention passes
PRUNE_CHUNK = 10_000  # rows deleted per transaction, so other writers get the store between
TOP_FAILING = 10  # entries in the summary's top_failing_domains
_DAY = 86_400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_INSERT_CHECK = (
    "INSERT INTO check_log (ts, owner, domain, mail, level, tls_ok, reasons)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_RECIPIENTS = (
    "INSERT INTO recipient_log (ts, owner, domain, method, count) VALUES (?, ?, ?, ?, ?)"
)
_PRUNE = (
    "DELETE FROM check_log WHERE rowid IN (SELECT rowid FROM check_log WHERE ts < ? LIMIT ?)",
    "DELETE FROM recipient_log WHERE rowid IN"
    " (SELECT rowid FROM recipient_log WHERE ts < ? LIMIT ?)",
)
# Each domain's latest check in the window, and the recipients sent to it in the window.
# `{where}` is one of the fixed clauses _window builds; every value is a placeholder.
_LATEST = (
    "WITH latest AS (SELECT domain, mail, level, tls_ok, reasons, ts,"
    " row_number() OVER (PARTITION BY domain ORDER BY ts DESC, rowid DESC) AS n"
    " FROM check_log WHERE {where}),"
    " hits AS (SELECT domain, sum(count) AS recipients FROM recipient_log"
    " WHERE {where} GROUP BY domain) "
)


class _CheckRow(NamedTuple):
    ts: float
    owner: str
    domain: str
    mail: str
    level: str
    tls_ok: int
    reasons: str


class _RecipientRow(NamedTuple):
    ts: float
    owner: str
    domain: str
    method: str
    recipients: int  # not `count`: that is tuple.count


_Row = _CheckRow | _RecipientRow


class ReportLog:
    """Records checks and previews per owner (a user, or "" for the account) and reports on them."""

    def __init__(
        self,
        store: Store,
        retention_days: float,
        clock: Callable[[], float] = time.time,
        *,
        max_pending: int = MAX_PENDING,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self.retention = retention_days * _DAY
        self.clock = clock
        self._max_pending = max_pending
        self._metrics = metrics
        self._pending: deque[_Row] = deque()
        self._writes: set[asyncio.Future[None]] = set()
        self.dropped = 0  # rows lost to the bound since start
        self._unlogged_drops = 0

    @property
    def pending(self) -> int:
        """Rows recorded but not yet written."""
        return len(self._pending)

    def record_check(self, owner: str, report: DomainReport) -> None:
        """Remember that `owner` was shown `report` now (written by the next flush)."""
        reasons = json.dumps(list(report.reasons), separators=(",", ":"))
        row = _CheckRow(
            self.clock(),
            owner,
            report.ascii_domain,
            str(report.mail),
            str(report.tls_level),
            int(report.tls_ok),
            reasons,
        )
        self._append(row)

    def record_recipients(self, owner: str, items: Iterable[tuple[str, str]]) -> None:
        """Remember previewed recipients as (ascii_domain, method), one row per distinct pair."""
        now = self.clock()
        counts = Counter((str(domain), str(method)) for domain, method in items)
        for (domain, method), count in counts.items():
            self._append(_RecipientRow(now, owner, domain, method, count))

    def record_preview(self, owner: str, preview: Preview) -> None:
        """Log each distinct domain's report once, and every recipient that has a domain."""
        checked: dict[str, DomainReport] = {}
        for result in preview.results:
            if result.report is not None:
                checked.setdefault(result.report.ascii_domain, result.report)
        for report in checked.values():
            self.record_check(owner, report)
        self.record_recipients(
            owner,
            (
                (r.recipient.domain.ascii, str(r.decision.method))
                for r in preview.results
                if r.recipient.domain is not None
            ),
        )

    async def flush(self) -> int:
        """Write every pending row in one transaction; how many. On a database error they stay."""
        rows, self._pending = list(self._pending), deque()
        self._log_drops()
        if not rows:
            return 0
        write = asyncio.ensure_future(self._store.run(partial(_insert, rows)))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        try:
            # Shielded: a flush cancelled at shutdown still lands the rows it took.
            await asyncio.shield(write)
        except sqlite3.Error:
            self._restore(rows)
            raise
        return len(rows)

    async def prune(self) -> int:
        """Delete rows older than the retention, a chunk per transaction; how many went."""
        cutoff = self.clock() - self.retention
        total = 0
        while True:
            deleted = await self._store.run(partial(_delete_before, cutoff, PRUNE_CHUNK))
            total += sum(deleted)
            if max(deleted) < PRUNE_CHUNK:
                return total

    async def run(self) -> None:
        """Flush every second and prune hourly (and at start) until cancelled; then flush."""
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        try:
            while True:
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_EVERY
                    await _logged(self.prune)
                await asyncio.sleep(FLUSH_EVERY)
                await _logged(self.flush)
        finally:
            await self._drain()

    async def summary(
        self, owner: str | None, after: float | None, before: float | None
    ) -> dict[str, Any]:
        """Recipients by method, domains by the level of their latest check, the tls_ok
        ratio and the top failing domains, for `owner` (None: every owner) in the window."""
        where, args = _window(owner, after, before)
        body = await self._store.run(partial(_summary, where, args))
        return {"after_date": _iso(after), "before_date": _iso(before), **body}

    async def tls_failures(
        self,
        owner: str | None,
        after: float | None,
        before: float | None,
        first_row: int,
        matches: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the domains whose latest check in the window is not tls_ok, and the total."""
        where, args = _window(owner, after, before)
        return await self._store.run(partial(_failures, where, args, matches, first_row))

    def _append(self, row: _Row) -> None:
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self._count_drops(1)
        self._pending.append(row)

    def _restore(self, rows: Sequence[_Row]) -> None:
        """Put rows that failed to write back in front of newer ones, within the bound."""
        self._pending.extendleft(reversed(rows))
        excess = len(self._pending) - self._max_pending
        for _ in range(excess):
            self._pending.popleft()
        self._count_drops(max(excess, 0))

    def _count_drops(self, count: int) -> None:
        self.dropped += count
        self._unlogged_drops += count
        if self._metrics is not None and count:
            self._metrics.report_rows_dropped.inc(count)

    def _log_drops(self) -> None:
        if self._unlogged_drops:
            log.warning("report log full: dropped %d oldest rows", self._unlogged_drops)
            self._unlogged_drops = 0

    async def _drain(self) -> None:
        """At shutdown: let writes in flight finish, then write what is left."""
        for outcome in await asyncio.gather(*list(self._writes), return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("report log: a write failed at shutdown: %s", outcome)
        await _logged(self.flush)


async def _logged(step: Callable[[], Awaitable[int]]) -> None:
    """Run a background step; a database error is logged and the next round tries again."""
    try:
        await step()
    except sqlite3.Error:
        log.exception("report log: %s failed", step.__name__)


def _insert(rows: Sequence[_Row], db: sqlite3.Connection) -> None:
    with transaction(db):
        db.executemany(_INSERT_CHECK, [r for r in rows if isinstance(r, _CheckRow)])
        db.executemany(_INSERT_RECIPIENTS, [r for r in rows if isinstance(r, _RecipientRow)])


def _delete_before(cutoff: float, limit: int, db: sqlite3.Connection) -> list[int]:
    with transaction(db):
        return [db.execute(sql, (cutoff, limit)).rowcount for sql in _PRUNE]


def _window(owner: str | None, after: float | None, before: float | None) -> tuple[str, list[Any]]:
    """A WHERE clause over `ts` and `owner` (after ≤ ts < before) and its arguments."""
    clauses: list[str] = ["1"]
    args: list[Any] = []
    for clause, value in (("owner = ?", owner), ("ts >= ?", after), ("ts < ?", before)):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return " AND ".join(clauses), args


def _summary(where: str, args: list[Any], db: sqlite3.Connection) -> dict[str, Any]:
    recipients = {
        str(method): int(count)
        for method, count in db.execute(
            f"SELECT method, sum(count) FROM recipient_log WHERE {where}"  # noqa: S608 (fixed clauses)
            " GROUP BY method ORDER BY method",
            args,
        )
    }
    checks = db.execute(f"SELECT count(*) FROM check_log WHERE {where}", args).fetchone()[0]  # noqa: S608
    levels = db.execute(
        _with_latest(
            where, "SELECT level, count(*), sum(tls_ok) FROM latest WHERE n = 1 GROUP BY level"
        ),
        [*args, *args],
    ).fetchall()
    domains = sum(int(n) for _, n, _ in levels)
    tls_ok = sum(int(ok) for _, _, ok in levels)
    failing, _ = _failures(where, args, TOP_FAILING, 0, db)
    keep = ("domain", "tls_level", "reasons", "recipients")
    return {
        "recipients": recipients,
        "recipients_total": sum(recipients.values()),
        "domains_checked": {str(level): int(n) for level, n, _ in levels},
        "checks_total": int(checks),
        "tls_ok_ratio": round(tls_ok / domains, 4) if domains else None,
        "top_failing_domains": [{k: f[k] for k in keep} for f in failing],
    }


def _failures(
    where: str, args: list[Any], limit: int, offset: int, db: sqlite3.Connection
) -> tuple[list[dict[str, Any]], int]:
    both = [*args, *args]
    total = db.execute(
        _with_latest(where, "SELECT count(*) FROM latest WHERE n = 1 AND tls_ok = 0"), both
    )
    rows = db.execute(
        _with_latest(
            where,
            "SELECT l.domain, l.level, l.mail, l.reasons, l.ts,"
            " coalesce(h.recipients, 0) AS affected"
            " FROM latest AS l LEFT JOIN hits AS h USING (domain) WHERE l.n = 1 AND l.tls_ok = 0"
            " ORDER BY affected DESC, l.domain LIMIT ? OFFSET ?",
        ),
        [*both, limit, offset],
    )
    failures = [
        {
            "domain": domain,
            "tls_level": level,
            "mail": mail,
            "reasons": json.loads(reasons),
            "last_seen": _iso(ts),
            "recipients": int(affected),
        }
        for domain, level, mail, reasons, ts, affected in rows
    ]
    return failures, int(total.fetchone()[0])


def _with_latest(where: str, query: str) -> str:
    """`query` after the CTEs `latest` and `hits` over the window `where` (a _window clause)."""
    return _LATEST.format(where=where) + query


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso(_EPOCH + timedelta(seconds=ts))
