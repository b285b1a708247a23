"""DomainChecker: composes cached DNS answers and cached probe facts into a DomainReport."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cachetools import TTLCache

from checker.cache import Cached, FlightCache
from checker.grading import grade_address, merge_reasons, tls_ok, worst_level
from checker.guard import AddressGuard
from checker.metrics import Metrics
from checker.models import (
    AddressReport,
    DomainReport,
    MailStatus,
    MxReport,
    MxSource,
    ProbeFacts,
    ProbeStatus,
    TlsLevel,
)
from checker.names import DomainName, is_hostname, is_special_use
from checker.resolver import DnsAnswer, DnsOutcome, Resolver
from checker.smtp_probe import Prober

_NULL_EXCHANGES = {"", ".", "@"}
_FAILED_PROBES = {
    ProbeStatus.TIMEOUT,
    ProbeStatus.RATE_LIMITED,
    ProbeStatus.REFUSED,
    ProbeStatus.PROTOCOL_ERROR,
}
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    """The checker's part of the settings."""

    min_tls: str = "1.2"
    require_verified: bool = True
    allow_special_use: tuple[str, ...] = ()
    max_probes: int = 32
    max_mx: int = 5
    max_addresses_per_mx: int = 4
    probe_ttl: float = 3600.0
    probe_failure_ttl: float = 300.0
    probe_backoff_max: float = 3600.0
    special_use_ttl: float = 3600.0
    cache_size: int = 100_000
    refresh_ahead: float = 0.2  # the last fifth of a report's life: a hit then refreshes it
    stale_seconds: float = 300.0  # how long past expiry a report may still be served, marked


@dataclass(slots=True)
class _Host:
    """What DNS said about one MX host."""

    host: str
    preference: int
    addresses: tuple[str, ...] = ()
    error: bool = False
    cname: str | None = None


class DomainChecker:
    """Answers "can this domain receive mail, and how safely?" from caches where it can."""

    def __init__(
        self,
        policy: CheckPolicy,
        resolver: Resolver,
        prober: Prober,
        guard: AddressGuard,
        metrics: Metrics,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._prober = prober
        self._guard = guard
        self._metrics = metrics
        self._probe_slots = asyncio.Semaphore(policy.max_probes)
        self._ip_locks: dict[str, tuple[asyncio.Lock, int]] = {}  # the lock, and its users
        self._failures: TTLCache[tuple[str, str], int] = TTLCache(
            policy.cache_size, max(1.0, 2 * policy.probe_backoff_max), timer=timer
        )
        self._probes: FlightCache[tuple[str, str], ProbeFacts] = FlightCache(
            policy.cache_size,
            self._probe_lifetime,
            timer=timer,
            on_lookup=metrics.cache_recorder("probe"),
        )
        self._reports: FlightCache[str, DomainReport] = FlightCache(
            policy.cache_size,
            _report_lifetime,
            timer=timer,
            on_lookup=metrics.cache_recorder("report"),
            stale=policy.stale_seconds,
        )
        self.wants_refresh: Callable[[DomainName], None] | None = None  # the prefetcher's queue
        self.on_hit: Callable[[str], None] | None = None  # the hot set's counter

    def cached(self, name: DomainName) -> DomainReport | None:
        """The cached report for `name`, marked `cached` (and `stale` past its expiry, within
        the stale bound); a hit late in its life, or a stale one, asks for a refresh."""
        entry = self._reports.lookup(name.ascii)
        if entry is None:
            return None
        if self.on_hit is not None:
            self.on_hit(name.ascii)
        remaining = entry.remaining(self._reports.timer())
        if remaining < self._policy.refresh_ahead * entry.lifetime:
            self._ask_refresh(name)
        return replace(entry.value, cached=True, stale=remaining < 0)

    def start(self, name: DomainName) -> asyncio.Task[DomainReport]:
        """Start (or join) the check of `name`; the task outlives any one waiter."""
        return self._reports.start(name.ascii, lambda: self._check(name, 0.0))

    async def refresh(self, name: DomainName) -> DomainReport:
        """Check `name` again, re-asking every part that would expire within the refresh window
        (the parts with longer to live are reused), and cache the new report."""
        entry = self._reports.peek(name.ascii)
        window = max(1.0, self._policy.refresh_ahead * entry.lifetime) if entry else 0.0
        task = self._reports.start(name.ascii, lambda: self._check(name, window))
        return await asyncio.shield(task)

    def probe_entry(self, host: str, ip: str) -> Cached[ProbeFacts] | None:
        """The cached probe facts for (host, ip), for inspection."""
        return self._probes.peek((host, ip))

    def _ask_refresh(self, name: DomainName) -> None:
        if self.wants_refresh is not None and self._reports.in_flight(name.ascii) is None:
            self.wants_refresh(name)

    async def check(self, name: DomainName, wait: float | None = None) -> DomainReport | None:
        """The report for `name`, or None when it is not ready within `wait` seconds."""
        report = self.cached(name)
        if report is not None:
            return report
        task = self.start(name)
        done, _ = await asyncio.wait({task}, timeout=wait)
        return task.result() if done else None

    async def close(self) -> None:
        """Cancel the checks and probes in flight (at shutdown)."""
        await self._reports.close()
        await self._probes.close()

    async def _check(self, name: DomainName, window: float) -> DomainReport:
        report = await self._compose(name, window)
        self._metrics.checks.labels(report.mail, report.tls_level).inc()
        return report

    async def _compose(self, name: DomainName, window: float) -> DomainReport:
        started = datetime.now(UTC)
        if is_special_use(name.ascii, self._policy.allow_special_use):
            expires = started + timedelta(seconds=self._policy.special_use_ttl)
            return _empty(
                name, MailStatus.NO_SUCH_DOMAIN, ("special_use_domain",), started, expires
            )
        mx = await self._resolver.query(name.ascii, "MX", window)
        expiries = [mx.expires_at]
        if mx.outcome is DnsOutcome.ERROR:
            return _empty(name, MailStatus.DNS_ERROR, (f"dns_{mx.error}",), started, mx.expires_at)
        if mx.outcome is DnsOutcome.NXDOMAIN:
            return _empty(name, MailStatus.NO_SUCH_DOMAIN, ("nxdomain",), started, mx.expires_at)
        warnings: list[str] = []
        exchanges = _real_exchanges(mx, warnings)
        if exchanges is None:
            return _empty(name, MailStatus.NULL_MX, ("null_mx",), started, mx.expires_at)
        source = MxSource.MX if mx.exchanges else MxSource.IMPLICIT
        if source is MxSource.IMPLICIT:
            exchanges = [(0, name.ascii)]
        if len(exchanges) > self._policy.max_mx:
            warnings.append(f"mx_capped: checked {self._policy.max_mx} of {len(exchanges)}")
            exchanges = exchanges[: self._policy.max_mx]
        hosts = await asyncio.gather(*(self._host(p, h, expiries, window) for p, h in exchanges))
        return await self._finish(name, source, list(hosts), warnings, expiries, started, window)

    async def _finish(
        self,
        name: DomainName,
        source: MxSource,
        hosts: list[_Host],
        warnings: list[str],
        expiries: list[datetime],
        started: datetime,
        window: float,
    ) -> DomainReport:
        for h in hosts:
            warnings.extend(_host_warnings(h, source))
        reports = await asyncio.gather(*(self._mx_report(h, expiries, window) for h in hosts))
        mail = _mail_status(hosts)
        if mail is MailStatus.ACCEPTS:
            level = worst_level(r.tls_level for r in reports)
            reasons = merge_reasons(r.reasons for r in reports)
        else:
            level = TlsLevel.UNKNOWN
            reasons = ("dns_error",) if mail is MailStatus.DNS_ERROR else ("no_mail_host",)
        return DomainReport(
            domain=name.unicode,
            ascii_domain=name.ascii,
            mail=mail,
            mx_source=source,
            tls_level=level,
            tls_ok=tls_ok(mail, level, self._policy.require_verified),
            reasons=reasons,
            warnings=tuple(warnings),
            mx=tuple(reports),
            checked_at=started,
            expires_at=min(expiries),
        )

    async def _host(
        self, preference: int, host: str, expiries: list[datetime], window: float
    ) -> _Host:
        a, aaaa = await asyncio.gather(
            self._resolver.query(host, "A", window), self._resolver.query(host, "AAAA", window)
        )
        expiries.extend((a.expires_at, aaaa.expires_at))
        addresses = a.values + aaaa.values
        error = not addresses and DnsOutcome.ERROR in (a.outcome, aaaa.outcome)
        return _Host(host, preference, addresses, error, a.canonical or aaaa.canonical)

    async def _mx_report(self, host: _Host, expiries: list[datetime], window: float) -> MxReport:
        if not host.addresses:
            reason = "dns_error" if host.error else "mx_no_address"
            return MxReport(host.host, host.preference, TlsLevel.UNKNOWN, (), (reason,), host.cname)
        chosen = sample_addresses(host.host, host.addresses, self._policy.max_addresses_per_mx)
        facts = await asyncio.gather(
            *(self._facts(host.host, ip, expiries, window) for ip in chosen)
        )
        addresses = tuple(grade_address(f, self._policy.min_tls) for f in facts)
        return MxReport(
            host=host.host,
            preference=host.preference,
            tls_level=worst_level(a.tls_level for a in addresses),
            addresses=addresses,
            reasons=_mx_reasons(addresses),
            cname=host.cname,
        )

    async def _facts(
        self, host: str, ip: str, expiries: list[datetime], window: float
    ) -> ProbeFacts:
        if not self._guard.permits(ip):
            now = datetime.now(UTC)
            return ProbeFacts(host, ip, ProbeStatus.BLOCKED, now, error="address is not public")
        entry, _ = await self._probes.get((host, ip), lambda: self._probe(host, ip), window)
        left = entry.remaining(self._probes.timer())
        expiries.append(datetime.now(UTC) + timedelta(seconds=max(left, 0.0)))
        return entry.value

    async def _probe(self, host: str, ip: str) -> ProbeFacts:
        # The per-IP turn first: waiting for a slow IP must not hold a global probe slot.
        async with self._ip_lock(ip), self._probe_slots:
            try:
                facts = await self._prober.probe(host, ip)
            except Exception:
                # A hostile server found a path the prober does not expect. Record it like any
                # failure (cached, backed off) instead of failing every check that uses this MX.
                log.exception("probe of %s at %s failed unexpectedly", host, ip)
                now = datetime.now(UTC)
                facts = ProbeFacts(host, ip, ProbeStatus.PROTOCOL_ERROR, now, error="probe failed")
        key = (host, ip)
        if facts.status in _FAILED_PROBES:
            self._failures[key] = self._failures.get(key, 0) + 1
        else:
            self._failures.pop(key, None)
        return facts

    @asynccontextmanager
    async def _ip_lock(self, ip: str) -> AsyncIterator[None]:
        """At most one probe at a time per remote IP, whatever MX name it is reached by."""
        lock, users = self._ip_locks.get(ip, (asyncio.Lock(), 0))
        self._ip_locks[ip] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._ip_locks[ip]
            if users == 1:
                del self._ip_locks[ip]
            else:
                self._ip_locks[ip] = (lock, users - 1)

    def _probe_lifetime(self, facts: ProbeFacts) -> float:
        """Success: the probe lifetime. Failure: the failure lifetime, doubled for each
        failure in a row, up to the back-off maximum (a busy or silent host is asked less)."""
        if facts.status not in _FAILED_PROBES:
            return self._policy.probe_ttl
        failures = self._failures.get((facts.host, facts.ip), 1)
        backoff = self._policy.probe_failure_ttl * float(2 ** min(failures - 1, 30))
        return min(backoff, max(self._policy.probe_backoff_max, self._policy.probe_failure_ttl))


def sample_addresses(host: str, addresses: tuple[str, ...], limit: int) -> tuple[str, ...]:
    """At most `limit` addresses, the same ones every time, alternating IPv4 and IPv6."""
    if len(addresses) <= limit:
        return tuple(sorted(addresses, key=_address_key))

    def rank(ip: str) -> bytes:
        return hashlib.sha256(f"{host}|{ip}".encode()).digest()

    v4 = sorted((ip for ip in addresses if ":" not in ip), key=rank)
    v6 = sorted((ip for ip in addresses if ":" in ip), key=rank)
    picked: list[str] = []
    while len(picked) < limit:
        for family in (v4, v6):
            if family and len(picked) < limit:
                picked.append(family.pop(0))
    return tuple(sorted(picked, key=_address_key))


def _address_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def _real_exchanges(mx: DnsAnswer, warnings: list[str]) -> list[tuple[int, str]] | None:
    """The MX targets to use; None for a null MX (RFC 7505); [] when there is no MX at all."""
    real = [(p, h) for p, h in mx.exchanges if h not in _NULL_EXCHANGES]
    if mx.exchanges and not real:
        return None
    odd = [h for _, h in real if not is_hostname(h)]
    if odd:
        warnings.append(f"mx_invalid_name: {len(odd)} MX target(s) are not host names, skipped")
        real = [(p, h) for p, h in real if is_hostname(h)]
    if len(real) != len(mx.exchanges):
        warnings.append("null_mx_ignored: a null MX stands beside real MX records")
    return real


def _host_warnings(host: _Host, source: MxSource) -> list[str]:
    found: list[str] = []
    if host.cname:
        found.append(f"mx_cname: {host.host} is an alias of {host.cname}")
    if not host.addresses and not host.error and source is MxSource.MX:
        found.append(f"mx_no_address: {host.host} has no A or AAAA record")
    return found


def _mail_status(hosts: list[_Host]) -> MailStatus:
    if any(h.addresses for h in hosts):
        return MailStatus.ACCEPTS
    if any(h.error for h in hosts):
        return MailStatus.DNS_ERROR
    return MailStatus.NO_MAIL_HOST


def _mx_reasons(addresses: tuple[AddressReport, ...]) -> tuple[str, ...]:
    return merge_reasons(a.reasons for a in addresses)


def _empty(
    name: DomainName,
    mail: MailStatus,
    reasons: tuple[str, ...],
    checked_at: datetime,
    expires_at: datetime,
    warnings: tuple[str, ...] = (),
) -> DomainReport:
    return DomainReport(
        domain=name.unicode,
        ascii_domain=name.ascii,
        mail=mail,
        mx_source=MxSource.NONE,
        tls_level=TlsLevel.UNKNOWN,
        tls_ok=False,
        reasons=reasons,
        warnings=warnings,
        mx=(),
        checked_at=checked_at,
        expires_at=expires_at,
    )


def _report_lifetime(report: DomainReport) -> float:
    return (report.expires_at - datetime.now(UTC)).total_seconds()
