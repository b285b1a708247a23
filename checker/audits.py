"""Batch audits: a recipient list stored row by row, decided chunk by chunk by background workers.

Memory stays bounded whatever the list size: the input is stored as it is read, a worker holds
one chunk at a time, and results are written back to the same rows. Every chunk is committed
with the audit's progress in one transaction, so a restart resumes exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any

from checker import audit_rows as sql
from checker.metrics import Metrics
from checker.models import iso
from checker.policy import Policy
from checker.preview import PreviewEngine
from checker.recipients import parse_recipient, split_list
from checker.reports import ReportLog
from checker.store import Store

log = logging.getLogger(__name__)

_COLUMNS = "id, owner, credential, policy, user, status, total, done, counts, created_at,"
_COLUMNS += " started_at, finished_at, error"


class AuditStatus(StrEnum):
    """Where an audit job stands."""

    UPLOADING = "uploading"  # rows still being stored; a job left so by a crash is removed
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


FINISHED = {AuditStatus.DONE, AuditStatus.CANCELLED, AuditStatus.FAILED, AuditStatus.INTERRUPTED}


@dataclass(frozen=True, slots=True)
class Audit:
    """One audit job as stored."""

    id: str
    owner: str
    credential: str
    policy: str
    user: str | None
    status: AuditStatus
    total: int
    done: int
    counts: dict[str, int]
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None

    def eta_seconds(self, now: datetime) -> float | None:
        """Seconds left at the pace so far; None before the first chunk or once finished."""
        if self.status in FINISHED or not self.done or not self.started_at:
            return None
        started = datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        elapsed = (now - started).total_seconds()
        return round(elapsed / self.done * (self.total - self.done), 1)

    def to_json(self) -> dict[str, Any]:
        """The job's status document."""
        return {
            "id": self.id,
            "status": self.status,
            "policy": self.policy,
            "user": self.user,
            "total": self.total,
            "done": self.done,
            "counts": self.counts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "eta_seconds": self.eta_seconds(datetime.now(UTC)),
            "error": self.error,
        }


def _audit(row: tuple[Any, ...]) -> Audit:
    values = list(row)
    values[5] = AuditStatus(values[5])
    values[8] = json.loads(values[8])
    return Audit(*values)


class AuditService:
    """Creates audits, runs them in the background, and reads their results."""

    def __init__(
        self,
        store: Store,
        preview: PreviewEngine,
        workers: int = 2,
        chunk_size: int = 500,
        check_concurrency: int = 8,
        reports: ReportLog | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._store = store
        self._preview = preview
        self._reports = reports
        self._workers = workers
        self._chunk = chunk_size
        self._slots = asyncio.Semaphore(check_concurrency)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._active: set[str] = set()  # queued or being worked on: never two workers at once
        self._cancelled: set[str] = set()

    # Creating

    async def create(
        self,
        owner: str,
        credential: str,
        policy: Policy,
        user: str | None,
        batches: AsyncIterator[list[str]],
        max_rows: int = 1_000_000,
    ) -> Audit:
        """Store a new audit and its (deduplicated) rows, then queue it.

        Raises AuditInputError for an empty list or one over `max_rows` (nothing is kept).
        """
        first = await anext(batches, None)
        if not first:
            raise AuditInputError("no recipients to audit")
        audit_id = "aud_" + secrets.token_urlsafe(12)
        now = iso(datetime.now(UTC))
        await self._store.run(
            lambda db: sql.execute(
                db,
                f"INSERT INTO audits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'queued', 0, 0, '{{}}',"  # noqa: S608 (constant)
                " ?, NULL, NULL, NULL)",
                (audit_id, owner, credential, str(policy), user, now),
            )
        )
        stored = False
        try:
            await self._ingest(audit_id, _chain(first, batches), max_rows)
            await self._store.run(
                lambda db: sql.execute(
                    db, "UPDATE audits SET status = 'queued' WHERE id = ?", (audit_id,)
                )
            )
            stored = True
        finally:
            if not stored:  # a bad or interrupted upload leaves nothing behind
                await self._store.run(partial(sql.delete_audit, audit_id))
        audit = await self.get(audit_id)
        assert audit is not None
        self._metrics.audit_jobs.labels("queued").inc()
        self._enqueue(audit_id)
        return audit

    def depth(self) -> int:
        """Audits waiting for a worker."""
        return self._queue.qsize()

    def _enqueue(self, audit_id: str) -> None:
        if audit_id not in self._active:
            self._active.add(audit_id)
            self._queue.put_nowait(audit_id)

    async def _ingest(
        self, audit_id: str, batches: AsyncIterator[list[str]], max_rows: int
    ) -> None:
        row = 0
        async for batch in batches:
            rows = []
            for text in batch:
                for piece in split_list(text):
                    rows.append((audit_id, row, parse_recipient(piece).key, piece))
                    row += 1
            if row > max_rows:
                raise AuditInputError(f"an audit holds at most {max_rows} recipients")
            await self._store.run(partial(sql.insert_rows, audit_id, rows))

    # Reading

    async def get(self, audit_id: str) -> Audit | None:
        """The audit, or None."""
        row = await self._store.run(
            lambda db: db.execute(
                f"SELECT {_COLUMNS} FROM audits WHERE id = ?",  # noqa: S608 (constant columns)
                (audit_id,),
            ).fetchone()
        )
        return _audit(row) if row else None

    async def list_audits(
        self, owner: str | None, first_row: int, matches: int
    ) -> tuple[list[Audit], int]:
        """A page of audits, newest first (owner None: every owner's)."""
        where, args = ("owner = ?", [owner]) if owner is not None else ("1 = 1", [])

        def read(db: sqlite3.Connection) -> tuple[list[Audit], int]:
            total = db.execute(f"SELECT count(*) FROM audits WHERE {where}", args).fetchone()[0]  # noqa: S608
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM audits WHERE {where}"  # noqa: S608 (constant clauses)
                " ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                [*args, matches, first_row],
            ).fetchall()
            return [_audit(r) for r in rows], int(total)

        return await self._store.run(read)

    async def results(self, audit_id: str, first_row: int, matches: int) -> list[dict[str, Any]]:
        """A page of decided rows in input order, each as a preview recipient entry."""
        rows = await self._store.run(
            lambda db: db.execute(
                "SELECT result FROM audit_rows WHERE audit_id = ? AND result IS NOT NULL"
                " ORDER BY row LIMIT ? OFFSET ?",
                (audit_id, matches, first_row),
            ).fetchall()
        )
        return [json.loads(r[0]) for r in rows]

    async def result_batches(
        self, audit_id: str, size: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every decided row in input order, a batch at a time (for streaming)."""
        after = -1
        while True:
            rows = await self._store.run(partial(sql.result_batch, audit_id, after, size))
            if not rows:
                return
            after = rows[-1][0]
            yield [json.loads(r[1]) for r in rows]

    async def domain_progress(self, audit_id: str) -> tuple[int, int]:
        """(distinct domains with a decided recipient, distinct domains in the list)."""
        domain = "substr(key, instr(key, '@') + 1)"
        row = await self._store.run(
            lambda db: db.execute(
                f"SELECT count(DISTINCT CASE WHEN method IS NOT NULL THEN {domain} END),"  # noqa: S608
                f" count(DISTINCT {domain}) FROM audit_rows"
                " WHERE audit_id = ? AND instr(key, '@') > 0 AND substr(key, 1, 1) != char(0)",
                (audit_id,),
            ).fetchone()
        )
        return int(row[0]), int(row[1])

    # Cancelling

    async def cancel(self, audit_id: str) -> Audit | None:
        """Stop a queued or running audit; its results so far stay."""
        self._cancelled.add(audit_id)
        self._metrics.audit_jobs.labels("cancelled").inc()
        now = iso(datetime.now(UTC))
        await self._store.run(
            lambda db: sql.execute(
                db,
                "UPDATE audits SET status = 'cancelled', finished_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (now, audit_id),
            )
        )
        return await self.get(audit_id)

    # Running

    async def run(self) -> None:
        """Resume what a previous process left, then serve the queue with a few workers."""
        pending = await self._store.run(sql.resume)
        for audit_id in pending:
            self._enqueue(audit_id)
        workers = [asyncio.create_task(self._worker()) for _ in range(self._workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        """Take one chunk of the audit at the head of the queue; requeue it if it has more."""
        while True:
            audit_id = await self._queue.get()
            try:
                more = await self._step(audit_id)
            except Exception:
                log.exception("audit %s failed", audit_id)
                more = False
                try:
                    await self._fail(audit_id)
                except Exception:  # the database itself is failing: the next start resumes
                    log.exception("could not mark audit %s failed", audit_id)
            if more:
                self._queue.put_nowait(audit_id)  # to the back: jobs take turns chunk by chunk
            else:
                self._active.discard(audit_id)

    async def _step(self, audit_id: str) -> bool:
        audit = await self.get(audit_id)
        if audit is None or audit.status in FINISHED or audit_id in self._cancelled:
            return False
        rows = await self._store.run(
            lambda db: db.execute(
                "SELECT row, input FROM audit_rows WHERE audit_id = ? AND method IS NULL"
                " ORDER BY row LIMIT ?",
                (audit_id, self._chunk),
            ).fetchall()
        )
        if rows:
            preview = await self._preview.preview(
                [r[1] for r in rows], Policy(audit.policy), audit.user, None, self._slots
            )
            if self._reports is not None:
                self._reports.record_preview(audit.user or "", preview)
            for method, count in preview.summary().items():
                self._metrics.preview_recipients.labels("audit", method).inc(count)
            decided = [(r.to_json(), str(r.decision.method)) for r in preview.results]
            if len(decided) != len(rows):
                raise RuntimeError("a chunk's rows and results do not line up")
            pairs = [(row[0], d) for row, d in zip(rows, decided, strict=True)]
            return await self._store.run(lambda db: sql.save_chunk(db, audit_id, pairs))
        await self._store.run(lambda db: sql.finish(db, audit_id))
        self._metrics.audit_jobs.labels("done").inc()
        return False

    async def _fail(self, audit_id: str) -> None:
        self._metrics.audit_jobs.labels("failed").inc()
        await self._store.run(
            lambda db: sql.execute(
                db,
                "UPDATE audits SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
                (iso(datetime.now(UTC)), "internal error while auditing", audit_id),
            )
        )


class AuditInputError(ValueError):
    """A list that cannot be audited (empty, or too long)."""


async def _chain(first: list[str], rest: AsyncIterator[list[str]]) -> AsyncIterator[list[str]]:
    yield first
    async for batch in rest:
        yield batch
