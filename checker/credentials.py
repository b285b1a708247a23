"""Credential material: the master key, tokens, derived secrets, signatures and hashes.

A credential is a public `token` and a `secret`. The secret is never stored: it is derived as
HMAC-SHA256(master key, token), so the server can check an HMAC signed with it (the auth code
exchange) while the database holds only a SHA-256 hash of it. The master key lives in its own
file (`CHECKER_SECRET_KEY_FILE`, mode 0600), apart from the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

MASTER_KEY_BYTES = 32
_DERIVATION_LABEL = b"mailpreflight credential secret v1\n"


def load_master_key(path: Path) -> bytes:
    """Read the master key, creating it (0600, random) on first use; ValueError if unusable."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(MASTER_KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return load_master_key(path)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
            out.flush()
            os.fsync(out.fileno())
    if len(key) < MASTER_KEY_BYTES:
        raise ValueError(f"{path}: the master key must hold at least {MASTER_KEY_BYTES} bytes")
    return key


def new_token() -> str:
    """A public credential token."""
    return "mpk_" + secrets.token_urlsafe(16)


def new_code(prefix: str) -> str:
    """A bearer code or access token: 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def derive_secret(master: bytes, token: str) -> str:
    """The credential's secret, the same every time for one master key and token."""
    digest = hmac.new(master, _DERIVATION_LABEL + token.encode(), hashlib.sha256).digest()
    return "mps_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def digest(value: str) -> str:
    """SHA-256 hex of a high-entropy value (secrets and codes are stored only this way)."""
    return hashlib.sha256(value.encode()).hexdigest()


def signature(secret: str, token: str, date: int) -> str:
    """hex(HMAC-SHA256(secret, token + "\\n" + date + "\\n")), what a client sends to /v1/auth."""
    message = f"{token}\n{date}\n".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
