"""The database schema: one migration per version (`PRAGMA user_version` counts them).

Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE suppressions (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('address', 'domain')),
        value TEXT NOT NULL,
        reason TEXT NOT NULL,
        note TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (owner, kind, value)
    );
    CREATE INDEX suppressions_value ON suppressions (kind, value);
    CREATE TABLE keys (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        address TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('pgp', 'smime')),
        fingerprint TEXT NOT NULL,
        key_created_at TEXT,
        expires_at TEXT,
        key_text TEXT NOT NULL,
        stored_at TEXT NOT NULL,
        UNIQUE (owner, address, type)
    );
    """,
    """
    CREATE TABLE credentials (
        token TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('account', 'user')),
        user TEXT,
        name TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE auth_codes (
        code_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        token TEXT NOT NULL REFERENCES credentials (token),
        kind TEXT NOT NULL CHECK (kind IN ('auth', 'oauth')),
        expires_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX auth_codes_session ON auth_codes (session_id);
    CREATE TABLE used_signatures (
        signature TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE audits (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        credential TEXT NOT NULL,
        policy TEXT NOT NULL,
        user TEXT,
        status TEXT NOT NULL,
        total INTEGER NOT NULL DEFAULT 0,
        done INTEGER NOT NULL DEFAULT 0,
        counts TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        error TEXT
    );
    CREATE INDEX audits_owner ON audits (owner, created_at);
    CREATE TABLE audit_rows (
        audit_id TEXT NOT NULL,
        row INTEGER NOT NULL,
        key TEXT NOT NULL,
        input TEXT NOT NULL,
        method TEXT,
        result TEXT,
        PRIMARY KEY (audit_id, row),
        UNIQUE (audit_id, key)
    );
    CREATE TABLE check_log (
        ts REAL NOT NULL,
        owner TEXT NOT NULL,
        domain TEXT NOT NULL,
        mail TEXT NOT NULL,
        level TEXT NOT NULL,
        tls_ok INTEGER NOT NULL,
        reasons TEXT NOT NULL
    );
    CREATE INDEX check_log_ts ON check_log (ts);
    CREATE INDEX check_log_owner ON check_log (owner, ts);
    CREATE TABLE recipient_log (
        ts REAL NOT NULL,
        owner TEXT NOT NULL,
        domain TEXT NOT NULL,
        method TEXT NOT NULL,
        count INTEGER NOT NULL
    );
    CREATE INDEX recipient_log_ts ON recipient_log (ts);
    CREATE INDEX recipient_log_owner ON recipient_log (owner, ts);
    """,
    """
    CREATE TABLE hot_domains (
        domain TEXT PRIMARY KEY,
        hits INTEGER NOT NULL,
        last_hit REAL NOT NULL
    );
    """,
)
