"""SQL on the audit tables, run on the store's thread: each function takes the connection."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from checker.models import iso
from checker.store import transaction


def delete_audit(audit_id: str, db: sqlite3.Connection) -> None:
    """Remove an audit and its rows."""
    with transaction(db):
        db.execute("DELETE FROM audit_rows WHERE audit_id = ?", (audit_id,))
        db.execute("DELETE FROM audits WHERE id = ?", (audit_id,))


def execute(db: sqlite3.Connection, sql: str, args: Iterable[Any]) -> None:
    """One statement in its own transaction."""
    with transaction(db):
        db.execute(sql, tuple(args))


def result_batch(
    audit_id: str, after: int, size: int, db: sqlite3.Connection
) -> list[tuple[int, str]]:
    """Up to `size` decided rows after row number `after`, in order."""
    return db.execute(
        "SELECT row, result FROM audit_rows WHERE audit_id = ? AND row > ?"
        " AND result IS NOT NULL ORDER BY row LIMIT ?",
        (audit_id, after, size),
    ).fetchall()


def insert_rows(audit_id: str, rows: list[tuple[Any, ...]], db: sqlite3.Connection) -> None:
    """Store input rows (duplicates ignored) and count them into the audit's total."""
    with transaction(db):
        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO audit_rows (audit_id, row, key, input) VALUES (?, ?, ?, ?)",
            rows,
        )
        added = db.total_changes - before
        db.execute("UPDATE audits SET total = total + ? WHERE id = ?", (added, audit_id))


def save_chunk(
    db: sqlite3.Connection, audit_id: str, pairs: list[tuple[int, tuple[dict[str, Any], str]]]
) -> bool:
    """Write a chunk's results and the audit's progress together; True while rows remain."""
    with transaction(db):
        status, counts_text, started = db.execute(
            "SELECT status, counts, started_at FROM audits WHERE id = ?", (audit_id,)
        ).fetchone()
        if status not in ("queued", "running"):
            return False  # cancelled while the chunk was being decided: keep nothing of it
        db.executemany(
            "UPDATE audit_rows SET method = ?, result = ? WHERE audit_id = ? AND row = ?",
            [(m, json.dumps(r, ensure_ascii=False), audit_id, row) for row, (r, m) in pairs],
        )
        counts = Counter(json.loads(counts_text))
        counts.update(m for _, (_, m) in pairs)
        db.execute(
            "UPDATE audits SET status = 'running', done = done + ?, counts = ?,"
            " started_at = coalesce(started_at, ?) WHERE id = ?",
            (len(pairs), json.dumps(dict(counts)), started or iso(datetime.now(UTC)), audit_id),
        )
    return True


def finish(db: sqlite3.Connection, audit_id: str) -> None:
    """Mark a queued or running audit done."""
    with transaction(db):
        db.execute(
            "UPDATE audits SET status = 'done', finished_at = ?,"
            " started_at = coalesce(started_at, ?)"
            " WHERE id = ? AND status IN ('queued', 'running')",
            (iso(datetime.now(UTC)), iso(datetime.now(UTC)), audit_id),
        )


def resume(db: sqlite3.Connection) -> list[str]:
    """Audits a previous process left queued or running, oldest first: they go on. One it
    left half uploaded is removed (its client never got an id for it)."""
    with transaction(db):
        db.execute(
            "DELETE FROM audit_rows WHERE audit_id IN"
            " (SELECT id FROM audits WHERE status = 'uploading')"
        )
        db.execute("DELETE FROM audits WHERE status = 'uploading'")
    rows = db.execute(
        "SELECT id FROM audits WHERE status IN ('queued', 'running') ORDER BY created_at, id"
    ).fetchall()
    return [str(r[0]) for r in rows]
