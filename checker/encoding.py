"""The one JSON encoder every response and every CLI line goes through.

With the optional `fast` extra installed it is orjson, else the standard library; both give the
same JSON. orjson is told to hand datetimes and dataclasses back to `_default`, as the stdlib
does, and whatever it refuses (integers past 64 bits, keys that are not `str`, unknown types) is
rendered by the stdlib, which then produces the same text or raises the same TypeError. What
remains different is spelling only: floats may print as `1e-7` rather than `1e-07` (the same
number), and a NaN or infinite float, which is not JSON at all, becomes `null`, not `NaN`.
"""

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


def _stdlib_dumps(data: object) -> str:
    """The reference rendering: compact, UTF-8 kept as is, datetimes as ISO 8601 UTC."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)


try:
    import orjson
except ImportError:  # the `fast` extra is not installed

    def _fast(data: object) -> bytes | None:
        return None

    ENCODER = "stdlib"
else:
    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def _fast(data: object) -> bytes | None:
        try:
            encoded: bytes = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return None  # the stdlib renders it the same way, or raises the same error
        return encoded

    ENCODER = "orjson"


def dumps(data: object) -> str:
    """Compact JSON, UTF-8 kept as is, datetimes as ISO 8601 UTC."""
    fast = _fast(data)
    return fast.decode() if fast is not None else _stdlib_dumps(data)


def json_response(
    data: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response (`application/json; charset=utf-8`) rendered like `dumps`."""
    fast = _fast(data)
    body = fast if fast is not None else _stdlib_dumps(data).encode()
    return web.Response(
        body=body,
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The `{"error": {"code", "message"}}` body of every error response."""
    return {"error": {"code": code, "message": message, **extra}}
