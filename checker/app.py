"""The app factory: one place that builds and wires the service."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from checker import (
    api_audits,
    api_auth,
    api_domains,
    api_keys,
    api_preview,
    api_reports,
    api_suppressions,
)
from checker.access import access_middleware
from checker.audits import AuditService
from checker.auth import AuthService
from checker.credentials import load_master_key
from checker.http_errors import error_middleware
from checker.limits import Limits
from checker.prefetch import Prefetcher, default_list, read_list
from checker.preview import PreviewEngine
from checker.reports import ReportLog
from checker.settings import Settings
from checker.store import Store
from checker.wiring import (
    AUDITS_KEY,
    AUTH_KEY,
    ENGINE_KEY,
    LIMITS_KEY,
    PREFETCH_KEY,
    PREVIEW_KEY,
    REPORTS_KEY,
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
    app[REPORTS_KEY] = ReportLog(store, settings.report_retention_days, metrics=engine.metrics)
    master = load_master_key(settings.secret_key_file)
    app[AUTH_KEY] = AuthService(store, master, settings.auth_code_ttl)
    app[LIMITS_KEY] = Limits(
        settings.rate_limit, settings.rate_burst, settings.max_concurrent_checks
    )
    app[AUDITS_KEY] = AuditService(
        store,
        app[PREVIEW_KEY],
        settings.audit_workers,
        settings.audit_chunk_size,
        settings.audit_concurrency,
        app[REPORTS_KEY],
        engine.metrics,
    )
    app[PREFETCH_KEY] = Prefetcher(
        engine.checker,
        store,
        engine.metrics,
        workers=settings.prefetch_workers,
        queue_size=settings.prefetch_queue,
        jitter=settings.prefetch_jitter,
        hot_size=settings.hot_set_size,
    )
    engine.metrics.queue_depth.labels("prefetch").set_function(app[PREFETCH_KEY].depth)
    engine.metrics.queue_depth.labels("audit").set_function(app[AUDITS_KEY].depth)
    modules = (api_domains, api_preview, api_suppressions, api_keys, api_auth, api_reports)
    for module in (*modules, api_audits):
        app.router.add_routes(module.routes)
    # Torn down in reverse: the prefetcher and the audit workers stop first, then the checks in
    # flight, then the report log writes its last rows, then the database closes.
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_reports_ctx)
    app.cleanup_ctx.append(_engine_ctx)
    app.cleanup_ctx.append(_audits_ctx)
    app.cleanup_ctx.append(_prefetch_ctx)
    return app


def _background(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A background task whose unexpected end is logged, not silently lost."""
    task = asyncio.create_task(work, name=name)

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("background task %s stopped", name, exc_info=done.exception())

    task.add_done_callback(report)
    return task


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The database is open while the app serves."""
    store = app[STORE_KEY]
    await store.open()
    yield
    await store.close()


async def _reports_ctx(app: web.Application) -> AsyncIterator[None]:
    """The report log writes in the background while the store is open; its last rows at exit."""
    task = _background(app[REPORTS_KEY].run(), "report-log")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # our own teardown is being cancelled, not just the task we stopped


async def _audits_ctx(app: web.Application) -> AsyncIterator[None]:
    """Audit workers run while the store is open; a job cut short resumes at the next start."""
    task = _background(app[AUDITS_KEY].run(), "audits")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _prefetch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Warming and refresh-ahead run while the app serves; the hot set is saved at exit."""
    settings = app[SETTINGS_KEY]
    warm = None
    if settings.prefetch:
        warm = read_list(settings.prefetch_file) if settings.prefetch_file else default_list()
    task = _background(app[PREFETCH_KEY].run(warm), "prefetch")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    """The engine lives as long as the app; checks in flight are cancelled at shutdown."""
    yield
    await app[ENGINE_KEY].checker.close()
    await app[ENGINE_KEY].resolver.close()


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
