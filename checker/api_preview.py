"""Route: POST /v1/preview — how each recipient's message would travel, and why."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from checker.access import acting_user, principal
from checker.api_domains import wait_seconds
from checker.encoding import json_response
from checker.http_errors import ApiError, bad_request
from checker.http_input import json_object, read_json, string_field, user_address
from checker.policy import Policy
from checker.recipients import split_list
from checker.store import ACCOUNT
from checker.wiring import ENGINE_KEY, LIMITS_KEY, PREVIEW_KEY, REPORTS_KEY, SETTINGS_KEY

routes = web.RouteTableDef()


@routes.post("/v1/preview")
async def post_preview(request: web.Request) -> web.Response:
    """`{"recipients": [...], "policy", "user"}` → `{"policy", "recipients", "summary"}`."""
    settings = request.app[SETTINGS_KEY]
    body = json_object(await read_json(request))
    recipients = recipient_list(body.get("recipients"), settings.max_recipients)
    policy = parse_policy(string_field(body, "policy", required=False))
    named = user_address(string_field(body, "user", required=False, max_length=320))
    user = acting_user(request, named)
    wait = wait_seconds(request.query.get("wait"), settings.request_wait)
    with request.app[LIMITS_KEY].concurrency.hold(principal(request).token):
        preview = await request.app[PREVIEW_KEY].preview(recipients, policy, user, wait)
    request.app[REPORTS_KEY].record_preview(user or ACCOUNT, preview)
    counter = request.app[ENGINE_KEY].metrics.preview_recipients
    for method, count in preview.summary().items():
        counter.labels("preview", method).inc(count)
    return json_response(preview.to_json())


def recipient_list(value: Any, limit: int) -> list[str]:
    """The `recipients` field: a list of strings (or one string), at most `limit` addresses."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request("invalid_request", "'recipients' must be a list of strings")
    if not value:
        raise bad_request("invalid_request", "'recipients' is empty")
    count = sum(1 for item in value for _ in split_list(item[:100_000]))
    if len(value) > limit or count > limit:
        raise ApiError(413, "too_many_recipients", f"at most {limit} recipients per request")
    return value


def parse_policy(raw: str | None) -> Policy:
    """A Policy by name (default tls_or_fallback); 400 invalid_policy for an unknown one."""
    if raw is None:
        return Policy.TLS_OR_FALLBACK
    try:
        return Policy(raw)
    except ValueError:
        names = ", ".join(p.value for p in Policy)
        raise bad_request("invalid_policy", f"policy must be one of: {names}") from None
