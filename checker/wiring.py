"""Builds the engine from Settings; the app factory and the CLI share it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from checker.audits import AuditService
from checker.auth import AuthService
from checker.domain_checker import CheckPolicy, DomainChecker
from checker.guard import AddressGuard
from checker.limits import Limits
from checker.metrics import Metrics
from checker.prefetch import Prefetcher
from checker.preview import PreviewEngine
from checker.reports import ReportLog
from checker.resolver import DnsConfig, DnsResolver, Resolver
from checker.settings import Settings
from checker.smtp_probe import ProbeConfig, Prober, SmtpProber
from checker.store import Store


@dataclass(frozen=True, slots=True)
class Deps:
    """Parts a test may swap in; anything left None is built from the settings."""

    resolver: Resolver | None = None
    prober: Prober | None = None
    metrics: Metrics | None = None
    timer: Callable[[], float] = time.monotonic  # the caches' clock (tests inject their own)


@dataclass(frozen=True, slots=True)
class Engine:
    """The wired engine: everything that checks domains."""

    metrics: Metrics
    resolver: Resolver
    checker: DomainChecker


def build_engine(settings: Settings, deps: Deps | None = None) -> Engine:
    """Wire resolver, prober, guard and checker, each with the settings it needs."""
    deps = deps or Deps()
    metrics = deps.metrics or Metrics()
    resolver = deps.resolver or DnsResolver(
        DnsConfig(
            nameservers=settings.nameservers,
            timeout=settings.dns_timeout,
            min_ttl=settings.dns_min_ttl,
            max_ttl=settings.dns_max_ttl,
            error_ttl=settings.dns_error_ttl,
            cache_size=settings.cache_size,
        ),
        metrics,
        deps.timer,
    )
    prober = deps.prober or SmtpProber(
        ProbeConfig(
            port=settings.smtp_port,
            helo_name=settings.helo_name,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=settings.probe_deadline,
            ca_file=settings.ca_file,
        ),
        metrics,
    )
    policy = CheckPolicy(
        min_tls=settings.min_tls,
        require_verified=settings.require_verified,
        allow_special_use=settings.allow_special_use,
        max_probes=settings.max_probes,
        max_mx=settings.max_mx,
        max_addresses_per_mx=settings.max_addresses_per_mx,
        probe_ttl=settings.probe_ttl,
        probe_failure_ttl=settings.probe_failure_ttl,
        probe_backoff_max=settings.probe_backoff_max,
        refresh_ahead=settings.refresh_ahead,
        stale_seconds=settings.stale_seconds,
        special_use_ttl=settings.dns_max_ttl,
        cache_size=settings.cache_size,
    )
    guard = AddressGuard(settings.allow_networks)
    checker = DomainChecker(policy, resolver, prober, guard, metrics, deps.timer)
    return Engine(metrics=metrics, resolver=resolver, checker=checker)


SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", Engine)
STORE_KEY = web.AppKey("store", Store)
AUTH_KEY = web.AppKey("auth", AuthService)
LIMITS_KEY = web.AppKey("limits", Limits)
PREVIEW_KEY = web.AppKey("preview", PreviewEngine)
REPORTS_KEY = web.AppKey("reports", ReportLog)
AUDITS_KEY = web.AppKey("audits", AuditService)
PREFETCH_KEY = web.AppKey("prefetch", Prefetcher)
