"""The access middleware: who is calling, may they, and not too often."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from checker.auth import ANONYMOUS_ACCOUNT, AuthError, Principal, Scope
from checker.http_errors import ApiError
from checker.wiring import AUTH_KEY, ENGINE_KEY, LIMITS_KEY, SETTINGS_KEY

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mailpreflight"'}


def _needs_credential(request: web.Request, metrics_public: bool) -> bool:
    path = request.path
    if path == "/metrics":
        return not metrics_public
    if path == "/v1/auth" and request.method == "POST":
        return False
    return path == "/v1" or path.startswith("/v1/")


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip() or len(value) > 200:
        raise ApiError(
            401, "unauthorized", "an Authorization: Bearer credential is needed", _CHALLENGE
        )
    return value.strip()


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate /v1 (and, unless public, /metrics), then apply the caller's rate limit."""
    settings = request.app[SETTINGS_KEY]
    if not settings.auth:
        request[PRINCIPAL_KEY] = ANONYMOUS_ACCOUNT
        return await handler(request)
    if not _needs_credential(request, settings.metrics_public):
        return await handler(request)
    bearer = _bearer(request)
    try:
        who = await request.app[AUTH_KEY].authenticate(bearer)
    except AuthError as exc:
        request.app[ENGINE_KEY].metrics.auth_failures.labels(exc.code).inc()
        raise ApiError(401, "unauthorized", exc.message, _CHALLENGE) from None
    if request.path == "/metrics" and who.scope is not Scope.ACCOUNT:
        raise ApiError(403, "forbidden", "metrics need an account credential")
    request[PRINCIPAL_KEY] = who
    limits = request.app[LIMITS_KEY]
    try:
        limits.rate.check(who.token)
    except ApiError:
        request.app[ENGINE_KEY].metrics.rate_limited.labels("rate").inc()
        raise
    return await handler(request)


def principal(request: web.Request) -> Principal:
    """The caller (every /v1 handler runs behind the middleware)."""
    return request[PRINCIPAL_KEY]


def authorize(request: web.Request, user: str | None) -> None:
    """403 unless the caller may reach `user`'s data (None: account-level data)."""
    if not principal(request).may_act_as(user):
        raise ApiError(403, "forbidden", "this credential cannot reach that data")


def acting_user(request: web.Request, requested: str | None) -> str | None:
    """The user a request acts as: the one named (if allowed), else a user key's own user."""
    who = principal(request)
    if requested is None:
        return who.user
    authorize(request, requested)
    return requested
