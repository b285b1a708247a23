"""DNS lookups through dnspython's async resolver, with outcomes as values and a TTL cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from checker.cache import FlightCache
from checker.metrics import Metrics
from checker.settings import Nameserver

log = logging.getLogger(__name__)

MAX_RECORDS = 64  # more records than this in one answer are ignored
_ANSWERED = {"servfail", "refused", "notimp", "formerr"}  # errors a live server sends


class DnsOutcome(StrEnum):
    """What a query found; `error` is unknown, never absence."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One question's answer: values for A/AAAA, (preference, host) pairs for MX."""

    name: str
    rdtype: str
    outcome: DnsOutcome
    ttl: float
    expires_at: datetime
    values: tuple[str, ...] = ()
    exchanges: tuple[tuple[int, str], ...] = ()
    canonical: str | None = None  # the target, when the name was an alias (CNAME)
    error: str | None = None


class Resolver(Protocol):
    """What the checker needs from DNS."""

    async def query(self, name: str, rdtype: str, min_remaining: float = 0.0) -> DnsAnswer:
        """Answer one question (from an answer with at least `min_remaining` seconds left);
        never raises for DNS failures."""
        ...

    async def probe_reachability(self) -> bool:
        """True when a nameserver answers at all (for /readyz)."""
        ...

    async def close(self) -> None:
        """Cancel the queries in flight (at shutdown)."""
        ...


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """The resolver's part of the settings."""

    nameservers: tuple[Nameserver, ...] = ()
    timeout: float = 5.0
    min_ttl: float = 30.0
    max_ttl: float = 3600.0
    error_ttl: float = 15.0
    cache_size: int = 100_000


class DnsResolver:
    """Asks the configured (or system) nameservers; caches each answer for its clamped TTL."""

    def __init__(
        self,
        config: DnsConfig,
        metrics: Metrics,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._resolver = _make_resolver(config.nameservers, config.timeout)
        self._cache: FlightCache[tuple[str, str], DnsAnswer] = FlightCache(
            config.cache_size,
            lifetime=lambda a: a.ttl,
            timer=timer,
            on_lookup=metrics.cache_recorder("dns"),
        )

    async def query(self, name: str, rdtype: str, min_remaining: float = 0.0) -> DnsAnswer:
        """Answer from cache or ask; concurrent identical questions share one query."""
        key = (name.lower(), rdtype)
        entry, _ = await self._cache.get(key, lambda: self._ask(*key), min_remaining)
        return entry.value

    async def close(self) -> None:
        """Cancel the queries in flight (at shutdown)."""
        await self._cache.close()

    async def probe_reachability(self) -> bool:
        """Ask for the root NS set; any DNS answer, even negative, means reachable."""
        answer = await self._ask(".", "NS")
        return answer.outcome is not DnsOutcome.ERROR or answer.error in _ANSWERED

    async def _ask(self, name: str, rdtype: str) -> DnsAnswer:
        answer = await self._resolve(name, rdtype)
        self._metrics.dns_queries.labels(rdtype, answer.outcome).inc()
        return answer

    async def _resolve(self, name: str, rdtype: str) -> DnsAnswer:
        cfg = self._config
        try:
            result = await self._resolver.resolve(
                name, rdtype, raise_on_no_answer=False, search=False, lifetime=cfg.timeout
            )
        except dns.resolver.NXDOMAIN as exc:
            ttl = self._clamp(_nxdomain_ttl(exc))
            return DnsAnswer(name, rdtype, DnsOutcome.NXDOMAIN, ttl, _expiry(ttl))
        except dns.resolver.LifetimeTimeout:
            return self._error(name, rdtype, "timeout")
        except dns.resolver.NoNameservers as exc:
            return self._error(name, rdtype, _no_nameservers_reason(exc))
        except dns.exception.DNSException as exc:
            return self._error(name, rdtype, type(exc).__name__)
        canonical = _text(result.canonical_name)
        alias = canonical if canonical != name.rstrip(".").lower() else None
        if result.rrset is None:
            ttl = self._clamp(_negative_ttl(result.response))
            return DnsAnswer(name, rdtype, DnsOutcome.NODATA, ttl, _expiry(ttl), canonical=alias)
        ttl = self._clamp(result.rrset.ttl)
        return DnsAnswer(
            name,
            rdtype,
            DnsOutcome.ANSWER,
            ttl,
            _expiry(ttl),
            values=_values(result.rrset, rdtype),
            exchanges=_exchanges(result.rrset, rdtype),
            canonical=alias,
        )

    def _clamp(self, ttl: float | None) -> float:
        cfg = self._config
        return max(cfg.min_ttl, min(cfg.max_ttl, ttl if ttl is not None else cfg.min_ttl))

    def _error(self, name: str, rdtype: str, why: str) -> DnsAnswer:
        ttl = self._config.error_ttl
        return DnsAnswer(name, rdtype, DnsOutcome.ERROR, ttl, _expiry(ttl), error=why)


def _expiry(ttl: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=ttl)


def _make_resolver(nameservers: Sequence[Nameserver], timeout: float) -> dns.asyncresolver.Resolver:
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(n.ip, n.port) for n in nameservers]
    else:
        try:
            resolver = dns.asyncresolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration:
            log.warning("no system resolver configuration; every DNS query will fail")
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = []
    resolver.cache = None  # answers are cached one level up, with our own lifetimes
    resolver.timeout = max(timeout / 2, 0.5)
    resolver.lifetime = timeout
    return resolver


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _values(rrset: dns.rrset.RRset, rdtype: str) -> tuple[str, ...]:
    if rdtype not in ("A", "AAAA"):
        return ()
    return tuple(sorted({rd.address for rd in list(rrset)[:MAX_RECORDS]}))


def _exchanges(rrset: dns.rrset.RRset, rdtype: str) -> tuple[tuple[int, str], ...]:
    if rdtype != "MX":
        return ()
    pairs = {(int(rd.preference), _text(rd.exchange)) for rd in list(rrset)[:MAX_RECORDS]}
    return tuple(sorted(pairs))


def _negative_ttl(response: dns.message.Message | None) -> float | None:
    """RFC 2308: the lesser of the SOA record's TTL and its MINIMUM field."""
    if response is None:
        return None
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return float(min(rrset.ttl, *(rd.minimum for rd in rrset)))
    return None


def _nxdomain_ttl(exc: dns.resolver.NXDOMAIN) -> float | None:
    # dnspython leaves these two accessors unannotated.
    qnames = exc.qnames()  # type: ignore[no-untyped-call]
    if not qnames:
        return None
    return _negative_ttl(exc.response(qnames[0]))  # type: ignore[no-untyped-call]


def _no_nameservers_reason(exc: dns.resolver.NoNameservers) -> str:
    text = str(exc).lower()
    for word in ("servfail", "refused", "notimp", "formerr"):
        if word in text:
            return word
    return "no_nameservers"
