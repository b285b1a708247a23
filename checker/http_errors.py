"""Typed API errors and the middleware that renders every error as JSON, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

from checker.encoding import error_body, json_response

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(Exception):
    """An expected failure with its HTTP status and a stable machine-readable code."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(code: str, message: str) -> ApiError:
    """A 400 with `code`."""
    return ApiError(400, code, message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render ApiError and aiohttp's HTTP errors as JSON; log anything unexpected once."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(error_body(exc.code, exc.message), exc.status, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return json_response(error_body(code, exc.reason), exc.status, headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.rel_url.path)
        return json_response(error_body("internal_error", "internal server error"), 500)
