"""Reading request input: JSON bodies, typed fields and paging, each failure a typed 4xx."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from checker.http_errors import ApiError, bad_request
from checker.recipients import normalize_address
from checker.wiring import SETTINGS_KEY

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_FIRST_ROW = 2**63 - 1  # SQLite's largest INTEGER; OFFSET takes no more


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; 400 invalid_json when it is not JSON (413 past the size limit)."""
    try:
        async with asyncio.timeout(request.app[SETTINGS_KEY].body_timeout):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, "request_timeout", "the request body came too slowly") from None
    if not raw.strip():
        raise bad_request("invalid_json", "the request body must be JSON")
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body; 400 invalid_json when it is not JSON that every later step can use."""
    try:
        body = json.loads(raw)
        # JSON can escape a lone surrogate ("\ud800") that no UTF-8 text holds: refuse it here
        # (I-JSON, RFC 7493 §2.1) rather than fail in the database or the response encoder.
        json.dumps(body, ensure_ascii=False).encode()
    except (ValueError, UnicodeError):  # UnicodeEncodeError / UnicodeDecodeError among them
        raise bad_request("invalid_json", "the request body is not valid JSON") from None
    except RecursionError:
        raise bad_request("invalid_json", "the request body is nested too deeply") from None
    return body


def json_object(body: Any) -> dict[str, Any]:
    """`body` when it is a JSON object; 400 otherwise."""
    if not isinstance(body, dict):
        raise bad_request("invalid_request", "the request body must be a JSON object")
    return body


def string_field(
    body: dict[str, Any], name: str, *, required: bool = True, max_length: int = 1024
) -> str | None:
    """A string field, present (when required) and bounded; 400 naming the field otherwise."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request("invalid_request", f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise bad_request("invalid_request", f"'{name}' must be a string")
    if len(value) > max_length:
        raise bad_request("invalid_request", f"'{name}' is longer than {max_length} characters")
    return value


def user_address(raw: str | None) -> str | None:
    """A user identifier (an e-mail address) in canonical form; 400 invalid_user if malformed."""
    if raw is None:
        return None
    try:
        return normalize_address(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_user", f"user must be an e-mail address: {exc}") from None


@dataclass(frozen=True, slots=True)
class Page:
    """Which rows to return: `first_row` (0-based) and at most `matches` of them."""

    first_row: int
    matches: int

    def to_json(self, returned: int, total: int) -> dict[str, int]:
        """The paging fields of a list response."""
        return {"first_row": self.first_row, "matches": returned, "total": total}


def page(request: web.Request) -> Page:
    """Read `first_row` and `matches` from the query string; 400 invalid_paging when bad."""
    first_row = _int(request.query.get("first_row", "0"), "first_row")
    matches = _int(request.query.get("matches", str(DEFAULT_PAGE)), "matches")
    if not 0 <= first_row <= MAX_FIRST_ROW or not 1 <= matches <= MAX_PAGE:
        raise bad_request(
            "invalid_paging", f"first_row must be ≥ 0 and matches between 1 and {MAX_PAGE}"
        )
    return Page(first_row, matches)


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise bad_request("invalid_paging", f"{name} must be an integer") from None
