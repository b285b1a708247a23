"""Routes: a user's known recipient keys (OpenPGP public keys, S/MIME certificates)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from checker.access import authorize
from checker.encoding import json_response
from checker.http_errors import ApiError, bad_request
from checker.http_input import json_object, page, read_json, string_field, user_address
from checker.keys import MAX_KEY_BYTES, InvalidKey, KeyType, parse_key
from checker.recipients import Recipient, parse_recipient
from checker.wiring import STORE_KEY

routes = web.RouteTableDef()


def _user(request: web.Request) -> str:
    user = user_address(request.match_info["user"]) or ""
    authorize(request, user)
    return user


def _recipient(request: web.Request) -> Recipient:
    recipient = parse_recipient(request.match_info["address"])
    if recipient.address is None:
        raise bad_request("invalid_address", recipient.error or "invalid address")
    return recipient


def _key_type(raw: str | None) -> KeyType:
    try:
        return KeyType(raw or "")
    except ValueError:
        raise bad_request("invalid_key_type", "type must be pgp or smime") from None


@routes.put("/v1/users/{user}/keys/{address}")
async def put_key(request: web.Request) -> web.Response:
    """Validate and store the key (one per type and address; a new one replaces the old)."""
    user, recipient = _user(request), _recipient(request)
    body = json_object(await read_json(request))
    key_type = _key_type(string_field(body, "type", max_length=16))
    text = string_field(body, "key", max_length=4 * MAX_KEY_BYTES) or ""
    try:
        parsed = parse_key(key_type, text, recipient.address or "", datetime.now(UTC))
    except InvalidKey as exc:
        raise ApiError(422 if exc.code != "key_too_large" else 413, exc.code, exc.message) from None
    stored = await request.app[STORE_KEY].put_key(user, recipient.key, parsed, text)
    return json_response(stored.to_json(), 201)


@routes.get("/v1/users/{user}/keys/{address}")
async def get_keys(request: web.Request) -> web.Response:
    """The user's keys for one address, with the key material; 404 when there are none."""
    user, recipient = _user(request), _recipient(request)
    keys, _ = await request.app[STORE_KEY].keys(user, [recipient.key])
    if not keys:
        raise ApiError(404, "not_found", "no key for that address")
    return json_response({"address": recipient.key, "keys": [k.to_json(True) for k in keys]})


@routes.delete("/v1/users/{user}/keys/{address}")
async def delete_keys(request: web.Request) -> web.Response:
    """Remove the user's keys for the address (`?type=` for one type); 404 when none."""
    user, recipient = _user(request), _recipient(request)
    raw = request.query.get("type")
    key_type = _key_type(raw) if raw is not None else None
    removed = await request.app[STORE_KEY].delete_keys(user, recipient.key, key_type)
    if not removed:
        raise ApiError(404, "not_found", "no key for that address")
    return web.Response(status=204)


@routes.get("/v1/users/{user}/keys")
async def list_keys(request: web.Request) -> web.Response:
    """A page of the user's keys (metadata only)."""
    user = _user(request)
    paging = page(request)
    keys, total = await request.app[STORE_KEY].keys(
        user, None, first_row=paging.first_row, matches=paging.matches
    )
    return json_response({"keys": [k.to_json() for k in keys], **paging.to_json(len(keys), total)})
