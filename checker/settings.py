"""Settings: one frozen dataclass, read once from the environment at the edge."""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TLS_VERSIONS = {"1.0", "1.1", "1.2", "1.3"}
_EVENT_LOOPS = {"auto", "asyncio", "uvloop"}


class SettingsError(ValueError):
    """A CHECKER_* variable holds a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Nameserver:
    """One DNS server the resolver asks: an IP literal and a port."""

    ip: str
    port: int = 53


def _default_helo() -> str:
    name = socket.getfqdn()
    # A bare host name is not a valid EHLO argument for most receivers.
    return name if "." in name and not name.endswith(".localdomain") else "mailpreflight.invalid"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service can be told; see the README for each variable."""

    host: str = "127.0.0.1"
    port: int = 8080
    nameservers: tuple[Nameserver, ...] = ()
    smtp_port: int = 25
    helo_name: str = field(default_factory=_default_helo)
    allow_networks: tuple[IPNetwork, ...] = ()
    ca_file: Path | None = None
    allow_special_use: tuple[str, ...] = ()
    min_tls: str = "1.2"
    require_verified: bool = True
    request_wait: float = 10.0
    dns_timeout: float = 5.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    probe_deadline: float = 60.0
    max_probes: int = 32
    max_mx: int = 5
    max_addresses_per_mx: int = 4
    probe_ttl: float = 3600.0
    probe_failure_ttl: float = 300.0
    probe_backoff_max: float = 3600.0
    refresh_ahead: float = 0.2
    stale_seconds: float = 300.0
    prefetch: bool = True
    prefetch_file: Path | None = None
    prefetch_workers: int = 2
    prefetch_queue: int = 1000
    prefetch_jitter: float = 1.0
    hot_set_size: int = 1000
    dns_min_ttl: float = 30.0
    dns_max_ttl: float = 3600.0
    dns_error_ttl: float = 15.0
    cache_size: int = 100_000
    db: Path = Path("var/mailpreflight.db")
    auth: bool = True
    log_format: str = "text"
    log_level: str = "INFO"
    max_recipients: int = 1000
    secret_key_file: Path = Path("var/secret.key")
    auth_code_ttl: float = 3600.0
    metrics_public: bool = False
    rate_limit: float = 20.0
    rate_burst: int = 40
    max_concurrent_checks: int = 8
    max_body_bytes: int = 1024 * 1024
    body_timeout: float = 30.0
    report_retention_days: float = 90.0
    max_audit_bytes: int = 64 * 1024 * 1024
    max_audit_recipients: int = 1_000_000
    audit_workers: int = 2
    audit_chunk_size: int = 500
    audit_concurrency: int = 8
    event_loop: str = "auto"
    access_log: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read CHECKER_* variables (unset ones keep their defaults); raise SettingsError."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("CHECKER_" + f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            try:
                values[f.name] = _PARSERS.get(f.name, _parse_by_type(f.type))(raw.strip())
            except (ValueError, TypeError) as exc:
                raise SettingsError(f"CHECKER_{f.name.upper()}: {exc}") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check the cross-field rules; raise SettingsError naming the variable."""
        if self.min_tls not in _TLS_VERSIONS:
            raise SettingsError("CHECKER_MIN_TLS: must be one of 1.0, 1.1, 1.2, 1.3")
        if self.log_format not in {"text", "json"}:
            raise SettingsError("CHECKER_LOG_FORMAT: must be text or json")
        if self.event_loop not in _EVENT_LOOPS:
            raise SettingsError("CHECKER_EVENT_LOOP: must be auto, asyncio or uvloop")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError("CHECKER_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")
        if self.prefetch_file is not None and not self.prefetch_file.is_file():
            raise SettingsError(f"CHECKER_PREFETCH_FILE: {self.prefetch_file} is not a file")
        if not 0 <= self.refresh_ahead < 1:
            raise SettingsError("CHECKER_REFRESH_AHEAD: must be a fraction from 0 up to 1")
        for name in _NOT_NEGATIVE:
            if getattr(self, name) < 0:
                raise SettingsError(f"CHECKER_{name.upper()}: must not be negative")
        if not 0 < self.port < 65536 or not 0 < self.smtp_port < 65536:
            raise SettingsError("CHECKER_PORT / CHECKER_SMTP_PORT: must be 1..65535")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise SettingsError(f"CHECKER_{name.upper()}: must be greater than zero")
        if self.dns_min_ttl > self.dns_max_ttl:
            raise SettingsError("CHECKER_DNS_MIN_TTL: must not exceed CHECKER_DNS_MAX_TTL")
        if not self.auth and not _is_loopback_host(self.host):
            raise SettingsError("CHECKER_AUTH=off is allowed only on a loopback bind")


_POSITIVE = (
    "request_wait",
    "dns_timeout",
    "connect_timeout",
    "read_timeout",
    "probe_deadline",
    "max_probes",
    "max_mx",
    "max_addresses_per_mx",
    "auth_code_ttl",
    "rate_burst",
    "max_concurrent_checks",
    "max_body_bytes",
    "body_timeout",
    "max_recipients",
    "cache_size",
    "max_audit_bytes",
    "max_audit_recipients",
    "audit_workers",
    "audit_chunk_size",
    "audit_concurrency",
    "prefetch_workers",
    "prefetch_queue",
    "report_retention_days",
)


_NOT_NEGATIVE = (
    "probe_backoff_max",
    "stale_seconds",
    "prefetch_jitter",
    "hot_set_size",
    "probe_ttl",
    "probe_failure_ttl",
    "dns_min_ttl",
    "dns_max_ttl",
    "dns_error_ttl",
    "rate_limit",
)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_bool(raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean (true/false)")


def _parse_nameservers(raw: str) -> tuple[Nameserver, ...]:
    servers = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        servers.append(_parse_nameserver(item))
    return tuple(servers)


def _parse_nameserver(item: str) -> Nameserver:
    host, port = item, 53
    if item.startswith("["):  # [v6]:port
        host, _, rest = item[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{item!r}: expected [address]:port")
        port = int(rest[1:]) if rest else 53
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
        port = int(port_text)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return Nameserver(host, port)


def _parse_networks(raw: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(x.strip(), strict=False) for x in raw.split(",") if x.strip())


def _parse_suffixes(raw: str) -> tuple[str, ...]:
    return tuple(x.strip().lower().strip(".") for x in raw.split(",") if x.strip())


def _parse_min_tls(raw: str) -> str:
    value = raw.removeprefix("TLSv").removeprefix("tls")
    value = "1.0" if value == "1" else value  # OpenSSL writes TLS 1.0 as "TLSv1"
    if value not in _TLS_VERSIONS:
        raise ValueError(f"{raw!r} is not one of 1.0, 1.1, 1.2, 1.3")
    return value


def _parse_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def _parse_by_type(type_name: object) -> Any:
    text = str(type_name)
    if text == "bool":
        return _parse_bool
    if text == "int":
        return int
    if text == "float":
        return _parse_float
    if "Path" in text:
        return Path
    return str


_PARSERS: dict[str, Any] = {
    "nameservers": _parse_nameservers,
    "allow_networks": _parse_networks,
    "allow_special_use": _parse_suffixes,
    "min_tls": _parse_min_tls,
    "auth": _parse_bool,
    "require_verified": _parse_bool,
    "metrics_public": _parse_bool,
}
