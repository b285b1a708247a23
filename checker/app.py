"""The app factory: one place that builds and wires the service."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from checker import api_auth, api_domains, api_keys, api_preview, api_suppressions
from checker.access import access_middleware
from checker.auth import AuthService
from checker.credentials import load_master_key
from checker.http_errors import error_middleware
from checker.limits import Limits
from checker.preview import PreviewEngine
from checker.settings import Settings
from checker.store import Store
from checker.wiring import (
    AUTH_KEY,
    ENGINE_KEY,
    LIMITS_KEY,
    PREVIEW_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    Deps,
    build_engine,
)

log = logging.getLogger(__name__)


def create_app(settings: Settings, deps: Deps | None = None) -> web.Application:
    """Build the service: settings and engine in typed keys, routes, middlewares, cleanup."""
    app = web.Application(
        middlewares=[_metrics_middleware, error_middleware, access_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS_KEY] = settings
    engine = build_engine(settings, deps)
    app[ENGINE_KEY] = engine
    store = Store(settings.db)
    app[STORE_KEY] = store
    app[PREVIEW_KEY] = PreviewEngine(engine.checker, store)
    master = load_master_key(settings.secret_key_file)
    app[AUTH_KEY] = AuthService(store, master, settings.auth_code_ttl)
    app[LIMITS_KEY] = Limits(
        settings.rate_limit, settings.rate_burst, settings.max_concurrent_checks
    )
    for module in (api_domains, api_preview, api_suppressions, api_keys, api_auth):
        app.router.add_routes(module.routes)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_engine_ctx)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The database is open while the app serves."""
    store = app[STORE_KEY]
    await store.open()
    yield
    await store.close()


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    """The engine lives as long as the app; checks in flight are cancelled at shutdown."""
    yield
    await app[ENGINE_KEY].checker.close()


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests and time them by route template, never by the concrete path."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        status = exc.status
        raise
    else:
        status = response.status
        return response
    finally:
        route = _route_label(request)
        metrics = request.app[ENGINE_KEY].metrics
        metrics.http_requests.labels(route, request.method, str(status)).inc()
        metrics.http_latency.labels(route).observe(time.perf_counter() - started)


def _route_label(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    resource = route.resource if route is not None else None
    if resource is None:
        return "unmatched"
    return resource.canonical
