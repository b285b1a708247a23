"""Judging a peer certificate: dates, trust (as the TLS handshake found it) and the host name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from checker.models import CertError, CertificateFacts

MAX_SAN_NAMES = 200  # a certificate naming more hosts than this is reported with the first ones
MAX_SAN_BYTES = 8192  # and only as many of them as fit in this (cached per MX address)

# OpenSSL verify codes (X509_V_ERR_*) that mean "the chain is fine, the dates are not":
# OpenSSL checks validity dates only after it has built a chain to a trust anchor.
_DATE_CODES = {9, 10}
_SELF_SIGNED_CODES = {18}


def hostname_matches(host: str, names: Sequence[str]) -> bool:
    """RFC 6125 matching of an (A-label) host name against certificate DNS names.

    A wildcard stands only as the whole left-most label and covers exactly one label; it never
    covers a bare public suffix ("*.com").
    """
    host = host.rstrip(".").lower()
    for pattern in names:
        pattern = pattern.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and pattern.count(".") >= 2 and "*" not in pattern[1:]:
            head, _, rest = host.partition(".")
            if head and rest == pattern[2:]:
                return True
    return False


def describe(der: bytes, host: str, verify_code: int | None, now: datetime) -> CertificateFacts:
    """Facts about the leaf certificate `der` for MX `host`.

    `verify_code` is None when the chain verified in the handshake, else OpenSSL's code.
    """
    cert = x509.load_der_x509_certificate(der)
    has_san, san = _dns_names(cert)
    names = san if has_san else _common_names(cert)  # the CN counts only without any SAN
    match = hostname_matches(host, names)
    # A date error counts as "the chain is fine" only when it is the leaf's own dates: OpenSSL
    # stops at the first error, so an expired intermediate leaves the leaf's signature unchecked.
    leaf_out_of_date = not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    trusted = verify_code is None or (verify_code in _DATE_CODES and leaf_out_of_date)
    return CertificateFacts(
        subject=cert.subject.rfc4514_string()[:512],
        issuer=cert.issuer.rfc4514_string()[:512],
        san=tuple(san),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        trusted=trusted,
        hostname_match=match,
        error=_first_error(cert, verify_code, trusted, match, now),
    )


def _first_error(
    cert: x509.Certificate, verify_code: int | None, trusted: bool, match: bool, now: datetime
) -> CertError | None:
    if now > cert.not_valid_after_utc:
        return CertError.EXPIRED
    if now < cert.not_valid_before_utc:
        return CertError.NOT_YET_VALID
    if not trusted:
        if verify_code in _SELF_SIGNED_CODES or cert.issuer == cert.subject:
            return CertError.SELF_SIGNED
        return CertError.UNTRUSTED
    if not match:
        return CertError.HOSTNAME_MISMATCH
    return None


def _dns_names(cert: x509.Certificate) -> tuple[bool, list[str]]:
    """(whether the certificate has a SAN extension at all, its DNS names)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False, []
    names: list[str] = []
    total = 0
    for name in ext.value.get_values_for_type(x509.DNSName)[:MAX_SAN_NAMES]:
        total += len(name[:253])
        if total > MAX_SAN_BYTES:
            break
        names.append(str(name)[:253])
    return True, names


def _common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
