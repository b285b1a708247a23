"""The values that flow through the checker: enums and frozen dataclasses with `to_json()`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def iso(when: datetime | None) -> str | None:
    """Render an aware datetime as ISO 8601 UTC with a `Z`, to the second."""
    if when is None:
        return None
    utc = when.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%SZ}"  # %Y leaves years before 1000 unpadded


class MailStatus(StrEnum):
    """Can the domain receive mail at all."""

    ACCEPTS = "accepts"
    NULL_MX = "null_mx"
    NO_SUCH_DOMAIN = "no_such_domain"
    NO_MAIL_HOST = "no_mail_host"
    DNS_ERROR = "dns_error"


class MxSource(StrEnum):
    """Where the mail hosts came from."""

    MX = "mx"
    IMPLICIT = "implicit"
    NONE = "none"


class ProbeStatus(StrEnum):
    """How the SMTP session with one address went."""

    OK = "ok"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    REJECTED = "rejected"
    PROTOCOL_ERROR = "protocol_error"
    BLOCKED = "blocked"


class TlsLevel(StrEnum):
    """How well mail to an address, MX or domain is protected in transit."""

    VERIFIED = "verified"
    ENCRYPTED = "encrypted"
    NONE = "none"
    UNKNOWN = "unknown"


# Worst first: the domain gets the worst level of its MX hosts.
LEVEL_RANK = {TlsLevel.NONE: 0, TlsLevel.ENCRYPTED: 1, TlsLevel.VERIFIED: 2}


class CertError(StrEnum):
    """Why a certificate does not verify; the first that applies."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    SELF_SIGNED = "self_signed"
    UNTRUSTED = "untrusted"
    HOSTNAME_MISMATCH = "hostname_mismatch"


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What the peer certificate says and how it was judged."""

    subject: str
    issuer: str
    san: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    trusted: bool
    hostname_match: bool
    error: CertError | None

    def to_json(self) -> dict[str, Any]:
        """The `certificate` object of DESIGN.md."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "san": list(self.san),
            "not_before": iso(self.not_before),
            "not_after": iso(self.not_after),
            "trusted": self.trusted,
            "hostname_match": self.hostname_match,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ProbeFacts:
    """What one SMTP session with one (MX host, IP) showed; facts only, no verdict."""

    host: str
    ip: str
    status: ProbeStatus
    checked_at: datetime
    elapsed_ms: int = 0
    error: str | None = None
    reply_code: int | None = None
    starttls: bool | None = None
    starttls_reply: int | None = None
    tls_version: str | None = None
    cipher: str | None = None
    certificate: CertificateFacts | None = None
    handshake_error: str | None = None
    legacy_tls_version: str | None = None
    verify_code: int | None = None  # the chain failed to verify (TLS itself was negotiated)


@dataclass(frozen=True, slots=True)
class AddressReport:
    """One address of an MX: the probe's facts and the level they earn."""

    facts: ProbeFacts
    tls_level: TlsLevel
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The `addresses[]` entry of DESIGN.md."""
        f = self.facts
        return {
            "ip": f.ip,
            "status": f.status,
            "tls_level": self.tls_level,
            "reasons": list(self.reasons),
            "reply_code": f.reply_code,
            "starttls": f.starttls,
            "starttls_reply": f.starttls_reply,
            "tls_version": f.tls_version or f.legacy_tls_version,
            "cipher": f.cipher,
            "certificate": f.certificate.to_json() if f.certificate else None,
            "handshake_error": f.handshake_error,
            "elapsed_ms": f.elapsed_ms,
            "checked_at": iso(f.checked_at),
            "error": f.error,
        }


@dataclass(frozen=True, slots=True)
class MxReport:
    """One MX host with its addresses and its (worst) level."""

    host: str
    preference: int
    tls_level: TlsLevel
    addresses: tuple[AddressReport, ...]
    reasons: tuple[str, ...] = ()
    cname: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `mx[]` entry of DESIGN.md."""
        return {
            "host": self.host,
            "preference": self.preference,
            "tls_level": self.tls_level,
            "reasons": list(self.reasons),
            "cname": self.cname,
            "addresses": [a.to_json() for a in self.addresses],
        }


@dataclass(frozen=True, slots=True)
class DomainReport:
    """The answer for one domain: can it receive mail, and how well is that mail protected."""

    domain: str
    ascii_domain: str
    mail: MailStatus
    mx_source: MxSource
    tls_level: TlsLevel
    tls_ok: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    mx: tuple[MxReport, ...]
    checked_at: datetime
    expires_at: datetime
    cached: bool = False
    stale: bool = False

    def to_json(self) -> dict[str, Any]:
        """The DomainReport JSON of DESIGN.md."""
        return {
            "domain": self.domain,
            "ascii_domain": self.ascii_domain,
            "mail": self.mail,
            "mx_source": self.mx_source,
            "tls_level": self.tls_level,
            "tls_ok": self.tls_ok,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "mx": [m.to_json() for m in self.mx],
            "checked_at": iso(self.checked_at),
            "expires_at": iso(self.expires_at),
            "cached": self.cached,
            "stale": self.stale,
        }
