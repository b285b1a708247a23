"""Access control: API credentials, auth codes, OAuth access tokens, and who may see what."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cachetools import TTLCache

from checker import credentials as cred
from checker.models import iso
from checker.store import Store, transaction

MAX_CLOCK_SKEW = 300  # seconds either side of our clock a signed date may lie
_CACHE_SECONDS = 5.0  # how long a verified bearer is trusted without asking the database


class Scope(StrEnum):
    """What a credential reaches: everything, or one user's data."""

    ACCOUNT = "account"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the credential's token, scope and (for user scope) the user."""

    token: str
    scope: Scope
    user: str | None

    def may_act_as(self, user: str | None) -> bool:
        """True when this caller may read or write `user`'s data (None: account-level data)."""
        return self.scope is Scope.ACCOUNT or (user is not None and user == self.user)


ANONYMOUS_ACCOUNT = Principal("-", Scope.ACCOUNT, None)  # every request when CHECKER_AUTH=off


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential as listed (never with its secret)."""

    token: str
    scope: Scope
    user: str | None
    name: str | None
    created_at: str
    revoked_at: str | None

    def to_json(self) -> dict[str, Any]:
        """Metadata only."""
        return {
            "token": self.token,
            "scope": self.scope,
            "user": self.user,
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class AuthError(Exception):
    """A refused credential; `code` is safe to show, and never says which part was wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AuthService:
    """Issues and checks credentials, codes and tokens; all state is in the store."""

    def __init__(
        self,
        store: Store,
        master_key: bytes,
        code_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._master = master_key
        self._code_ttl = code_ttl
        self.clock = clock
        self._verified: TTLCache[str, tuple[Principal, float]] = TTLCache(10_000, _CACHE_SECONDS)

    @property
    def code_ttl(self) -> float:
        """Seconds an auth code or access token lives."""
        return self._code_ttl

    async def create_credential(
        self, scope: Scope, user: str | None, name: str | None
    ) -> tuple[Credential, str]:
        """A new credential and its secret (shown once; only its hash is stored)."""
        if (scope is Scope.USER) != (user is not None):
            raise ValueError("a user credential needs a user, an account credential none")
        token = cred.new_token()
        secret = cred.derive_secret(self._master, token)
        created = iso(datetime.now(UTC)) or ""
        row = (token, cred.digest(secret), str(scope), user, name, created)
        await self._store.run(
            lambda db: _write(
                db,
                "INSERT INTO credentials (token, secret_hash, scope, user, name, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        )
        return Credential(token, scope, user, name, created, None), secret

    async def list_credentials(self) -> list[Credential]:
        """Every credential, revoked ones included."""
        rows = await self._store.run(
            lambda db: db.execute(
                "SELECT token, scope, user, name, created_at, revoked_at FROM credentials"
                " ORDER BY created_at, token"
            ).fetchall()
        )
        return [Credential(r[0], Scope(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    async def revoke_credential(self, token: str) -> bool:
        """Revoke a credential and every code issued for it; False when unknown or revoked."""
        now = iso(datetime.now(UTC))

        def write(db: sqlite3.Connection) -> bool:
            with transaction(db):
                changed = db.execute(
                    "UPDATE credentials SET revoked_at = ? WHERE token = ? AND revoked_at IS NULL",
                    (now, token),
                ).rowcount
                db.execute("UPDATE auth_codes SET revoked = 1 WHERE token = ?", (token,))
                return changed > 0

        self._verified.clear()
        return await self._store.run(write)

    async def exchange(self, token: str, date: int, signature: str) -> tuple[str, float]:
        """Trade a signed (token, date) for a fresh auth code in a new session."""
        now = self.clock()
        if abs(now - date) > MAX_CLOCK_SKEW:
            raise AuthError("stale_date", "date must lie within 5 minutes of the server's clock")
        secret = cred.derive_secret(self._master, token)
        if not cred.same(cred.signature(secret, token, date), signature.lower()):
            raise AuthError("invalid_signature", "the signature does not verify")
        code = cred.new_code("mpa_")
        expires = now + self._code_ttl

        def write(db: sqlite3.Connection) -> str | None:
            with transaction(db):
                if not _active(db, token):
                    return "invalid_signature"
                db.execute("DELETE FROM used_signatures WHERE expires_at < ?", (now,))
                used = db.execute(
                    "INSERT OR IGNORE INTO used_signatures (signature, expires_at) VALUES (?, ?)",
                    (cred.digest(signature.lower()), now + 2 * MAX_CLOCK_SKEW),
                ).rowcount
                if not used:
                    return "replayed_signature"
                _insert_code(db, code, code, token, "auth", expires)
                return None

        refused = await self._store.run(write)
        if refused == "replayed_signature":
            raise AuthError(refused, "this signature has been used already")
        if refused:
            raise AuthError(refused, "the signature does not verify")
        return code, expires

    async def issue_access_token(self, token: str, secret: str) -> tuple[str, float]:
        """OAuth 2.0 client credentials: a bearer token for a valid (client id, secret)."""
        expected = cred.derive_secret(self._master, token)
        if not cred.same(expected, secret):
            raise AuthError("invalid_client", "client authentication failed")
        access = cred.new_code("mpo_")
        expires = self.clock() + self._code_ttl

        def write(db: sqlite3.Connection) -> bool:
            with transaction(db):
                if not _active(db, token, cred.digest(secret)):
                    return False
                _insert_code(db, access, access, token, "oauth", expires)
                return True

        if not await self._store.run(write):
            raise AuthError("invalid_client", "client authentication failed")
        return access, expires

    async def authenticate(self, bearer: str) -> Principal:
        """The principal behind an auth code or access token; AuthError when invalid."""
        now = self.clock()
        hit = self._verified.get(bearer)
        if hit is not None and hit[1] > now:
            return hit[0]
        row = await self._store.run(
            lambda db: db.execute(
                "SELECT c.token, c.scope, c.user, a.expires_at FROM auth_codes a"
                " JOIN credentials c ON c.token = a.token"
                " WHERE a.code_hash = ? AND a.revoked = 0 AND c.revoked_at IS NULL",
                (cred.digest(bearer),),
            ).fetchone()
        )
        if row is None or row[3] <= now:
            raise AuthError("invalid_token", "missing, expired or revoked credential")
        principal = Principal(row[0], Scope(row[1]), row[2])
        self._verified[bearer] = (principal, row[3])
        return principal

    async def revoke_session(self, bearer: str) -> bool:
        """Revoke the session a code belongs to, and every code issued in it."""
        code_hash = cred.digest(bearer)

        def write(db: sqlite3.Connection) -> bool:
            with transaction(db):
                return (
                    db.execute(
                        "UPDATE auth_codes SET revoked = 1 WHERE session_id ="
                        " (SELECT session_id FROM auth_codes WHERE code_hash = ?)",
                        (code_hash,),
                    ).rowcount
                    > 0
                )

        self._verified.clear()
        return await self._store.run(write)


def _active(db: sqlite3.Connection, token: str, secret_hash: str | None = None) -> bool:
    row = db.execute(
        "SELECT secret_hash FROM credentials WHERE token = ? AND revoked_at IS NULL", (token,)
    ).fetchone()
    return row is not None and (secret_hash is None or cred.same(row[0], secret_hash))


def _insert_code(
    db: sqlite3.Connection, code: str, session: str, token: str, kind: str, expires: float
) -> None:
    db.execute(
        "INSERT INTO auth_codes (code_hash, session_id, token, kind, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (cred.digest(code), cred.digest("session:" + session), token, kind, expires),
    )


def _write(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> None:
    with transaction(db):
        db.execute(sql, args)
