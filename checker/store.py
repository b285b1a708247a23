"""SQLite persistence: suppressions and known keys. WAL, versioned schema, durable commits.

All access runs on one dedicated thread with one connection, so writes are serialised and a
write has reached the disk (synchronous=FULL) before the API answers 2xx.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from checker.keys import ParsedKey
from checker.models import iso
from checker.schema import MIGRATIONS

T = TypeVar("T")
ACCOUNT = ""  # the owner of account-level entries


@dataclass(frozen=True, slots=True)
class Suppression:
    """An address or a whole domain that must not be mailed, account-wide or for one user."""

    owner: str
    kind: str
    value: str
    reason: str
    note: str | None
    created_at: str

    def to_json(self) -> dict[str, Any]:
        """`{"address"|"domain", "reason", "note", "created_at", "scope"}`."""
        return {
            self.kind: self.value,
            "reason": self.reason,
            "note": self.note,
            "created_at": self.created_at,
            "scope": "user" if self.owner else "account",
        }


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A validated recipient key a user has stored."""

    owner: str
    address: str
    type: str
    fingerprint: str
    created_at: str | None
    expires_at: str | None
    stored_at: str
    key_text: str

    def to_json(self, with_key: bool = False) -> dict[str, Any]:
        """The key's metadata, and the key itself when asked."""
        body: dict[str, Any] = {
            "address": self.address,
            "type": self.type,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "stored_at": self.stored_at,
        }
        if with_key:
            body["key"] = self.key_text
        return body

    def valid_at(self, now: datetime) -> bool:
        """True when the key has not expired at `now`."""
        return self.expires_at is None or self.expires_at > (iso(now) or "")


class Store:
    """The database behind suppressions and keys."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Open (creating the file and its folder) and migrate to the newest schema."""
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._executor, _connect, self._path)

    async def close(self) -> None:
        """Close the connection and the thread."""
        if self._db is not None:
            await self.run(sqlite3.Connection.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        return bool(await self.run(lambda db: db.execute("SELECT 1").fetchone()[0]))

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the store's thread; the only way to touch the database."""
        if self._db is None:
            raise RuntimeError("store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._db)

    # Suppressions

    async def add_suppressions(
        self, owner: str, entries: Sequence[tuple[str, str, str, str | None]]
    ) -> list[Suppression]:
        """Insert or update (kind, value, reason, note) entries in one transaction."""
        now = iso(datetime.now(UTC)) or ""

        def write(db: sqlite3.Connection) -> list[Suppression]:
            with transaction(db):
                for kind, value, reason, note in entries:
                    db.execute(
                        "INSERT INTO suppressions (owner, kind, value, reason, note, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner, kind, value)"
                        " DO UPDATE SET reason = excluded.reason, note = excluded.note",
                        (owner, kind, value, reason, note, now),
                    )
                return [_suppression(r) for r in _select_entries(db, owner, entries)]

        return await self.run(write)

    async def list_suppressions(
        self, owner: str, first_row: int, matches: int, kind: str | None, value: str | None
    ) -> tuple[list[Suppression], int]:
        """One page of an owner's suppressions (optionally one kind and value) and the total."""
        where, args = "owner = ?", [owner]
        if kind is not None and value is not None:
            where += " AND kind = ? AND value = ?"
            args += [kind, value]

        def read(db: sqlite3.Connection) -> tuple[list[Suppression], int]:
            total = db.execute(f"SELECT count(*) FROM suppressions WHERE {where}", args)  # noqa: S608 (fixed clauses)
            rows = db.execute(
                f"SELECT owner, kind, value, reason, note, created_at FROM suppressions"  # noqa: S608
                f" WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                [*args, matches, first_row],
            )
            return [_suppression(r) for r in rows], int(total.fetchone()[0])

        return await self.run(read)

    async def delete_suppression(self, owner: str, kind: str, value: str) -> bool:
        """Remove one entry; False when there was none."""

        def write(db: sqlite3.Connection) -> bool:
            with transaction(db):
                cursor = db.execute(
                    "DELETE FROM suppressions WHERE owner = ? AND kind = ? AND value = ?",
                    (owner, kind, value),
                )
                return cursor.rowcount > 0

        return await self.run(write)

    async def suppressed(
        self, owners: Sequence[str], addresses: Iterable[str], domains: Iterable[str]
    ) -> dict[tuple[str, str], str]:
        """Which of `addresses` / `domains` the `owners` suppress: (kind, value) → owner.

        When the account and a user both suppress one entry, the account's entry is named.
        """
        wanted = [("address", a) for a in set(addresses)] + [("domain", d) for d in set(domains)]

        def read(db: sqlite3.Connection) -> dict[tuple[str, str], str]:
            found: dict[tuple[str, str], str] = {}
            marks = ",".join("?" * len(owners))
            for chunk in _chunks(wanted, 400):
                pairs = " OR ".join("(kind = ? AND value = ?)" for _ in chunk)
                flat = [x for pair in chunk for x in pair]
                rows = db.execute(
                    f"SELECT owner, kind, value FROM suppressions"  # noqa: S608 (placeholders only)
                    f" WHERE owner IN ({marks}) AND ({pairs})",
                    [*owners, *flat],
                )
                for owner, kind, value in rows:
                    if (kind, value) not in found or owner == ACCOUNT:
                        found[(str(kind), str(value))] = str(owner)
            return found

        return await self.run(read) if wanted and owners else {}

    # Keys

    async def put_key(self, owner: str, address: str, parsed: ParsedKey, text: str) -> StoredKey:
        """Store (or replace) the owner's key of this type for `address`."""
        now = iso(datetime.now(UTC)) or ""
        row = (
            owner,
            address,
            str(parsed.type),
            parsed.fingerprint,
            iso(parsed.created_at),
            iso(parsed.expires_at),
            text,
            now,
        )

        def write(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute(
                    "INSERT INTO keys (owner, address, type, fingerprint, key_created_at,"
                    " expires_at, key_text, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (owner, address, type) DO UPDATE SET"
                    " fingerprint = excluded.fingerprint, key_created_at = excluded.key_created_at,"
                    " expires_at = excluded.expires_at, key_text = excluded.key_text,"
                    " stored_at = excluded.stored_at",
                    row,
                )

        await self.run(write)
        return StoredKey(owner, address, row[2], row[3], row[4], row[5], now, text)

    async def keys(
        self,
        owner: str,
        addresses: Iterable[str] | None = None,
        first_row: int = 0,
        matches: int = 1000,
    ) -> tuple[list[StoredKey], int]:
        """The owner's keys (for some addresses, or a page of all) and the total."""
        wanted = sorted(set(addresses)) if addresses is not None else None

        def read(db: sqlite3.Connection) -> tuple[list[StoredKey], int]:
            cols = "owner, address, type, fingerprint, key_created_at, expires_at, stored_at,"
            cols += " key_text"
            if wanted is None:
                total = db.execute("SELECT count(*) FROM keys WHERE owner = ?", (owner,))
                rows = db.execute(
                    f"SELECT {cols} FROM keys WHERE owner = ? ORDER BY address, type"  # noqa: S608
                    " LIMIT ? OFFSET ?",
                    (owner, matches, first_row),
                )
                return [StoredKey(*r) for r in rows], int(total.fetchone()[0])
            found: list[StoredKey] = []
            for chunk in _chunks(wanted, 400):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT {cols} FROM keys WHERE owner = ? AND address IN ({marks})"  # noqa: S608
                    " ORDER BY address, type",
                    (owner, *chunk),
                )
                found += [StoredKey(*r) for r in rows]
            return found, len(found)

        return await self.run(read)

    async def delete_keys(self, owner: str, address: str, key_type: str | None) -> int:
        """Remove the owner's keys for `address` (of one type, or all); how many went."""

        def write(db: sqlite3.Connection) -> int:
            with transaction(db):
                if key_type is None:
                    sql, args = "DELETE FROM keys WHERE owner = ? AND address = ?", (owner, address)
                    return db.execute(sql, args).rowcount
                sql = "DELETE FROM keys WHERE owner = ? AND address = ? AND type = ?"
                return db.execute(sql, (owner, address, key_type)).rowcount

        return await self.run(write)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        with transaction(db):
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={number:d}")
    return db


class transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _select_entries(
    db: sqlite3.Connection, owner: str, entries: Sequence[tuple[str, str, str, str | None]]
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for kind, value, _, _ in entries:
        rows += db.execute(
            "SELECT owner, kind, value, reason, note, created_at FROM suppressions"
            " WHERE owner = ? AND kind = ? AND value = ?",
            (owner, kind, value),
        ).fetchall()
    return rows


def _suppression(row: Sequence[Any]) -> Suppression:
    return Suppression(*row)


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
