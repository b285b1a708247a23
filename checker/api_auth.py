"""Routes: the auth code exchange (POST/DELETE /v1/auth) and OAuth 2.0 client credentials."""

from __future__ import annotations

import asyncio
import base64
import binascii
import urllib.parse
from datetime import UTC, datetime

from aiohttp import web

from checker.access import principal
from checker.auth import AuthError
from checker.encoding import dumps, json_response
from checker.http_errors import ApiError, bad_request
from checker.http_input import json_object, read_json, string_field
from checker.wiring import AUTH_KEY, ENGINE_KEY, SETTINGS_KEY

routes = web.RouteTableDef()

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_DATE = 2**53 - 1  # unix seconds; larger ones cannot be compared with the float clock


@routes.post("/v1/auth")
async def post_auth(request: web.Request) -> web.Response:
    """`{"token", "date", "signature"}` → 201 `{"auth", "expires_at"}`; a signature works once."""
    body = json_object(await read_json(request))
    token = string_field(body, "token", max_length=100) or ""
    signature = string_field(body, "signature", max_length=128) or ""
    date = body.get("date")
    if isinstance(date, str) and date.isascii() and date.isdigit() and len(date) <= 16:
        date = int(date)  # str.isdigit alone also passes "²" and 5000-digit strings
    if not isinstance(date, int) or isinstance(date, bool) or not 0 <= date <= MAX_DATE:
        raise bad_request("invalid_request", "'date' must be unix seconds (an integer)")
    try:
        code, expires = await request.app[AUTH_KEY].exchange(token, date, signature)
    except AuthError as exc:
        request.app[ENGINE_KEY].metrics.auth_failures.labels(exc.code).inc()
        raise ApiError(401, exc.code, exc.message) from None
    expires_at = datetime.fromtimestamp(expires, UTC)
    return json_response({"auth": code, "expires_at": expires_at}, 201, _NO_STORE)


@routes.delete("/v1/auth")
async def delete_auth(request: web.Request) -> web.Response:
    """Revoke the session of the presented code, and every code issued in it."""
    principal(request)  # the middleware has authenticated the bearer
    # With CHECKER_AUTH=off there may be no header at all, and nothing to revoke.
    bearer = request.headers.get("Authorization", "").partition(" ")[2].strip()
    await request.app[AUTH_KEY].revoke_session(bearer)
    return web.Response(status=204)


def _oauth_error(status: int, error: str, description: str, basic: bool = False) -> web.Response:
    """RFC 6749 §5.2 error body (not our usual error shape: OAuth clients expect this one)."""
    headers = dict(_NO_STORE)
    if basic:
        headers["WWW-Authenticate"] = 'Basic realm="mailpreflight"'
    body = {"error": error, "error_description": description}
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


@routes.post("/oauth/token")
async def oauth_token(request: web.Request) -> web.Response:
    """RFC 6749 §4.4: client credentials in HTTP Basic or the form → a Bearer access token."""
    try:
        async with asyncio.timeout(request.app[SETTINGS_KEY].body_timeout):
            form = await request.post()
    except TimeoutError:
        return _oauth_error(408, "invalid_request", "the request body came too slowly")
    except (ValueError, LookupError):  # undecodable bytes, unknown charset, broken multipart
        return _oauth_error(400, "invalid_request", "the body is not a readable form")
    grant = form.get("grant_type")
    if not isinstance(grant, str) or not grant:
        return _oauth_error(400, "invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    basic = _basic(request.headers.get("Authorization", ""))
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if basic is not None and (form_id or form_secret):
        return _oauth_error(400, "invalid_request", "use one client authentication method")
    client_id, secret = basic or (form_id, form_secret)
    if not isinstance(client_id, str) or not isinstance(secret, str) or not client_id:
        return _oauth_error(401, "invalid_client", "client authentication failed", True)
    try:
        token, _ = await request.app[AUTH_KEY].issue_access_token(client_id, secret)
    except AuthError:
        request.app[ENGINE_KEY].metrics.auth_failures.labels("invalid_client").inc()
        return _oauth_error(
            401, "invalid_client", "client authentication failed", basic is not None
        )
    lifetime = int(request.app[AUTH_KEY].code_ttl)
    body = {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
    return web.json_response(body, headers=_NO_STORE, dumps=dumps)
