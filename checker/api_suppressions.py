"""Routes: account- and user-level suppressions (an address or a whole domain)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from checker.access import authorize
from checker.encoding import json_response
from checker.http_errors import ApiError, bad_request
from checker.http_input import json_object, page, read_json, string_field, user_address
from checker.names import InvalidDomain, normalize_domain
from checker.recipients import parse_recipient
from checker.store import ACCOUNT
from checker.wiring import STORE_KEY

routes = web.RouteTableDef()

REASONS = ("bounce", "complaint", "unsubscribe", "manual")
MAX_ENTRIES = 1000  # per POST


def _owner(request: web.Request) -> str:
    """Whose entries a route reaches (the account, or the path's user), if the caller may."""
    user = user_address(request.match_info.get("user"))
    authorize(request, user)
    return user or ACCOUNT


@routes.get("/v1/suppressions")
@routes.get("/v1/users/{user}/suppressions")
async def list_suppressions(request: web.Request) -> web.Response:
    """A page of suppressions, optionally filtered by `address` or `domain`."""
    owner = _owner(request)
    paging = page(request)
    kind, value = _filter(request)
    rows, total = await request.app[STORE_KEY].list_suppressions(
        owner, paging.first_row, paging.matches, kind, value
    )
    return json_response(
        {"suppressions": [r.to_json() for r in rows], **paging.to_json(len(rows), total)}
    )


@routes.post("/v1/suppressions")
@routes.post("/v1/users/{user}/suppressions")
async def add_suppressions(request: web.Request) -> web.Response:
    """Add one entry or a list (idempotent: the same entry again updates reason and note)."""
    owner = _owner(request)
    body = await read_json(request)
    items = body if isinstance(body, list) else [json_object(body)]
    if not items or len(items) > MAX_ENTRIES:
        raise ApiError(413 if items else 400, "invalid_request", f"1 to {MAX_ENTRIES} entries")
    entries = [_entry(json_object(item), n) for n, item in enumerate(items)]
    rows = await request.app[STORE_KEY].add_suppressions(owner, entries)
    return json_response({"suppressions": [r.to_json() for r in rows]}, 201)


@routes.delete("/v1/suppressions/{target}")
@routes.delete("/v1/users/{user}/suppressions/{target}")
async def delete_suppression(request: web.Request) -> web.Response:
    """Remove the entry for an address (with @) or a domain; 404 when there is none."""
    owner = _owner(request)
    kind, value = target(request.match_info["target"])
    if not await request.app[STORE_KEY].delete_suppression(owner, kind, value):
        raise ApiError(404, "not_found", f"no suppression for that {kind}")
    return web.Response(status=204)


def target(text: str) -> tuple[str, str]:
    """(kind, canonical value) for an address or a domain; 400 when it is neither."""
    if "@" in text:
        recipient = parse_recipient(text)
        if recipient.address is None:
            raise bad_request("invalid_address", recipient.error or "invalid address")
        return "address", recipient.key
    try:
        return "domain", normalize_domain(text).ascii
    except InvalidDomain as exc:
        raise bad_request("invalid_domain", str(exc)) from None


def _filter(request: web.Request) -> tuple[str | None, str | None]:
    address, domain = request.query.get("address"), request.query.get("domain")
    if address is not None and domain is not None:
        raise bad_request("invalid_request", "filter by address or by domain, not both")
    if address is not None:
        if "@" not in address:
            raise bad_request("invalid_address", "address must contain @")
        return target(address)
    if domain is not None:
        return target(domain.lstrip("@"))
    return None, None


def _entry(item: dict[str, Any], n: int) -> tuple[str, str, str, str | None]:
    address = string_field(item, "address", required=False, max_length=640)
    domain = string_field(item, "domain", required=False, max_length=1024)
    if (address is None) == (domain is None):
        raise bad_request("invalid_request", f"entry {n}: give exactly one of address or domain")
    if address is not None and "@" not in address:
        raise bad_request("invalid_address", f"entry {n}: an address needs an @")
    kind, value = target(address if address is not None else (domain or "").lstrip("@"))
    reason = string_field(item, "reason", max_length=32)
    if reason not in REASONS:
        raise bad_request(
            "invalid_reason", f"entry {n}: reason must be one of {', '.join(REASONS)}"
        )
    note = string_field(item, "note", required=False, max_length=1000)
    return kind, value, reason, note
