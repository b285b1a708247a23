"""The one JSON encoder every response and every CLI line goes through."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from checker.models import iso


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(data: object) -> str:
    """Compact JSON, UTF-8 kept as is, datetimes as ISO 8601 UTC."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)


def json_response(
    data: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response rendered by `dumps`."""
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The `{"error": {"code", "message"}}` body of every error response."""
    return {"error": {"code": code, "message": message, **extra}}
