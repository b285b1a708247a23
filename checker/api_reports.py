"""Routes: reports over recorded checks and previews, for the whole account or one user."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

from checker.access import authorize
from checker.encoding import json_response
from checker.http_errors import ApiError, bad_request
from checker.http_input import page, user_address
from checker.wiring import REPORTS_KEY

routes = web.RouteTableDef()

MAX_DATE_LENGTH = 64
_OFFSET = re.compile(r"\d{2}(:?\d{2})?")
_DATE_HELP = "ISO 8601 (2026-12-03, 2026-12-03T14:00:00Z, …+02:00) or YYYY-MM-DD HH:MM:SS (UTC)"


@routes.get("/v1/reports/summary")
@routes.get("/v1/users/{user}/reports/summary")
async def get_summary(request: web.Request) -> web.Response:
    """Recipients by method, domains by level, the tls_ok ratio and the top failing domains."""
    owner = _owner(request)
    after, before = date_window(request)
    return json_response(await request.app[REPORTS_KEY].summary(owner, after, before))


@routes.get("/v1/reports/tls-failures")
@routes.get("/v1/users/{user}/reports/tls-failures")
async def get_tls_failures(request: web.Request) -> web.Response:
    """A page of the domains whose latest check in the window is not tls_ok."""
    owner = _owner(request)
    after, before = date_window(request)
    paging = page(request)
    rows, total = await request.app[REPORTS_KEY].tls_failures(
        owner, after, before, paging.first_row, paging.matches
    )
    return json_response({"failures": rows, **paging.to_json(len(rows), total)})


def _owner(request: web.Request) -> str | None:
    """Whose records a route reads: every owner's on account routes, else the path's user's."""
    raw = request.match_info.get("user")
    user = user_address(raw) if raw is not None else None
    authorize(request, user)
    return user


def date_window(request: web.Request) -> tuple[float | None, float | None]:
    """`after_date` and `before_date` as unix seconds (after ≤ ts < before); 400 invalid_date."""
    after = parse_date(request.query.get("after_date"), "after_date")
    before = parse_date(request.query.get("before_date"), "before_date")
    if after is not None and before is not None and after > before:
        raise bad_request("invalid_date", "after_date is later than before_date")
    return after, before


def parse_date(raw: str | None, name: str) -> float | None:
    """Unix seconds of an ISO 8601 date or date-time, or `YYYY-MM-DD HH:MM:SS`; naive is UTC.

    None when absent or blank; 400 invalid_date when it is not a date.
    """
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    head, space, tail = text.rpartition(" ")
    if space and ":" in head and _OFFSET.fullmatch(tail):
        # An unencoded `+` in a query string arrives as a space: "…T16:00:00 02:00".
        text = f"{head}+{tail}"
    if len(text) > MAX_DATE_LENGTH:
        raise _invalid_date(name)
    try:
        when = datetime.fromisoformat(text)
        # Converting to UTC refuses a date that would fall outside years 1-9999 there.
        when = when.replace(tzinfo=when.tzinfo or UTC).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid_date(name) from None
    return when.timestamp()


def _invalid_date(name: str) -> ApiError:
    return bad_request("invalid_date", f"{name} must be {_DATE_HELP}")
