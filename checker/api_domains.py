"""Routes: domain reports and the operator endpoints (health, readiness, metrics)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from checker.access import principal
from checker.encoding import json_response
from checker.http_errors import bad_request
from checker.names import InvalidDomain, normalize_domain
from checker.store import ACCOUNT
from checker.wiring import ENGINE_KEY, LIMITS_KEY, REPORTS_KEY, SETTINGS_KEY, STORE_KEY

routes = web.RouteTableDef()

OPENAPI_DOCUMENT = (resources.files("checker") / "data" / "openapi.json").read_bytes()
READY_TIMEOUT = 2.0  # a readiness probe must answer faster than the orchestrator gives up


@routes.get("/v1/domains/{domain}")
async def get_domain(request: web.Request) -> web.Response:
    """The DomainReport, or 202 pending when the check outlasts `wait` (it keeps running)."""
    settings = request.app[SETTINGS_KEY]
    try:
        name = normalize_domain(request.match_info["domain"])
    except InvalidDomain as exc:
        raise bad_request(exc.code, str(exc)) from None
    wait = wait_seconds(request.query.get("wait"), settings.request_wait)
    with request.app[LIMITS_KEY].concurrency.hold(principal(request).token):
        report = await request.app[ENGINE_KEY].checker.check(name, wait)
    if report is None:
        body = {"status": "pending", "domain": name.unicode, "ascii_domain": name.ascii}
        return json_response(body, 202, {"Retry-After": "2"})
    request.app[REPORTS_KEY].record_check(principal(request).user or ACCOUNT, report)
    return json_response(report.to_json())


def wait_seconds(raw: str | None, cap: float) -> float:
    if raw is None:
        return cap
    try:
        wait = float(raw)
    except ValueError:
        raise bad_request("invalid_wait", "wait must be a number of seconds") from None
    if not math.isfinite(wait) or wait < 0:
        raise bad_request("invalid_wait", "wait must be a number of seconds, 0 or more")
    return min(wait, cap)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves requests."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the resolver answers; 503 with the failing check otherwise."""
    checks = {
        "resolver": await _within(request.app[ENGINE_KEY].resolver.probe_reachability()),
        "store": await _within(request.app[STORE_KEY].ping()),
    }
    status = 200 if all(checks.values()) else 503
    return json_response(
        {"status": "ready" if status == 200 else "not_ready", "checks": checks}, status
    )


async def _within(check: Coroutine[Any, Any, bool]) -> bool:
    """The check's answer, or False when it does not come in READY_TIMEOUT seconds."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            return await check
    except TimeoutError:
        return False


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API (kept in the repo as checker/data/openapi.json)."""
    return web.Response(body=OPENAPI_DOCUMENT, content_type="application/json")


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of the app's own registry."""
    body = generate_latest(request.app[ENGINE_KEY].metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
