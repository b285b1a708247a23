"""Grading: pure functions from probe facts to levels, per address, per MX and per domain."""

from __future__ import annotations

from collections.abc import Iterable

from checker.models import (
    LEVEL_RANK,
    AddressReport,
    MailStatus,
    ProbeFacts,
    ProbeStatus,
    TlsLevel,
)

_VERSIONS = {
    "SSLv2": 0.2,
    "SSLv3": 0.3,
    "TLSv1": 1.0,
    "TLSv1.1": 1.1,
    "TLSv1.2": 1.2,
    "TLSv1.3": 1.3,
}


def version_number(name: str | None) -> float:
    """The numeric TLS version of an OpenSSL version name ("TLSv1.2" → 1.2; unknown → 0)."""
    return _VERSIONS.get(name or "", 0.0)


def grade_address(facts: ProbeFacts, min_tls: str) -> AddressReport:
    """The level one address earns, and the reasons it earns no better."""
    level, reasons = _level(facts, float(min_tls))
    return AddressReport(facts=facts, tls_level=level, reasons=tuple(reasons))


def _level(f: ProbeFacts, minimum: float) -> tuple[TlsLevel, list[str]]:
    if f.status is ProbeStatus.BLOCKED:
        return TlsLevel.UNKNOWN, ["address_blocked"]
    if f.status is not ProbeStatus.OK:
        return TlsLevel.UNKNOWN, [f"smtp_{f.status}"]
    if not f.starttls:
        return TlsLevel.NONE, ["no_starttls"]
    if f.starttls_reply is not None and f.starttls_reply != 220:
        return TlsLevel.NONE, ["starttls_refused"]
    if f.tls_version is None and f.verify_code is not None:
        # The handshake got as far as the certificate (so a version we accept was agreed), but
        # the second look at the certificate failed: encrypted, certificate unverified.
        return TlsLevel.ENCRYPTED, ["certificate_untrusted"]
    if f.tls_version is None:
        legacy = version_number(f.legacy_tls_version)
        if legacy and legacy < minimum:
            return TlsLevel.NONE, ["tls_version_too_old"]
        if not legacy:
            return TlsLevel.NONE, ["tls_handshake_failed"]
        # Only the permissive handshake worked, but its version meets a lowered minimum.
        return TlsLevel.ENCRYPTED, ["certificate_not_checked"]
    if version_number(f.tls_version) < minimum:
        return TlsLevel.NONE, ["tls_version_too_old"]
    cert = f.certificate
    if cert is None:
        return TlsLevel.ENCRYPTED, ["no_certificate"]
    if cert.error is None and cert.trusted and cert.hostname_match:
        return TlsLevel.VERIFIED, []
    return TlsLevel.ENCRYPTED, [f"certificate_{cert.error or 'untrusted'}"]


def worst_level(levels: Iterable[TlsLevel]) -> TlsLevel:
    """The worst known level; `unknown` ones are left out, and only-unknown gives `unknown`."""
    known = [level for level in levels if level is not TlsLevel.UNKNOWN]
    if not known:
        return TlsLevel.UNKNOWN
    return min(known, key=LEVEL_RANK.__getitem__)


def tls_ok(mail: MailStatus, level: TlsLevel, require_verified: bool) -> bool:
    """True when the domain accepts mail and its level meets the requirement."""
    if mail is not MailStatus.ACCEPTS:
        return False
    if level is TlsLevel.VERIFIED:
        return True
    return level is TlsLevel.ENCRYPTED and not require_verified


def merge_reasons(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """Concatenate reason lists, keeping the first occurrence of each."""
    return tuple(dict.fromkeys(r for group in groups for r in group))
