"""Sender policy: a pure function from what is known about a recipient to its delivery method."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from checker.models import MailStatus, TlsLevel


class Policy(StrEnum):
    """How a sender wants its mail to travel (LuxSci-style names in the README)."""

    TLS_OR_FALLBACK = "tls_or_fallback"
    TLS_EXCLUSIVE = "tls_exclusive"
    NO_TLS_ONLY = "no_tls_only"
    OPPORTUNISTIC = "opportunistic"


class Method(StrEnum):
    """How one message to one recipient would travel."""

    TLS = "tls"
    PGP = "pgp"
    SMIME = "smime"
    ESCROW = "escrow"
    NONE = "none"
    BLOCKED = "blocked"
    SUPPRESSED = "suppressed"
    UNDELIVERABLE = "undeliverable"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything the policy looks at for one recipient."""

    valid: bool
    suppressed: bool = False
    mail: MailStatus | None = None  # None: the domain check is still pending
    tls_level: TlsLevel = TlsLevel.UNKNOWN
    tls_ok: bool = False
    has_pgp: bool = False
    has_smime: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The method and the one reason code that explains it."""

    method: Method
    reason: str


def decide(policy: Policy, s: Situation) -> Decision:
    """Apply the rules of DESIGN.md: invalid, suppressed, undeliverable, then the policy."""
    if not s.valid:
        return Decision(Method.INVALID, "invalid_address")
    if s.suppressed:
        return Decision(Method.SUPPRESSED, "suppressed")
    if s.mail is None:
        return _fallback(policy, s, "check_pending")
    if s.mail is MailStatus.DNS_ERROR:
        return _fallback(policy, s, "dns_error")
    if s.mail is not MailStatus.ACCEPTS:
        return Decision(Method.UNDELIVERABLE, str(s.mail))
    if policy is Policy.NO_TLS_ONLY:
        return _encrypted_fallback(s, "policy_requires_encryption")
    if policy is Policy.OPPORTUNISTIC:
        if s.tls_level in (TlsLevel.VERIFIED, TlsLevel.ENCRYPTED):
            return Decision(Method.TLS, f"tls_{s.tls_level}")
        return Decision(Method.NONE, f"tls_{s.tls_level}")
    if s.tls_ok and s.tls_level in (TlsLevel.VERIFIED, TlsLevel.ENCRYPTED):
        return Decision(Method.TLS, f"tls_{s.tls_level}")
    return _fallback(policy, s, f"tls_{s.tls_level}")


def _fallback(policy: Policy, s: Situation, reason: str) -> Decision:
    """What the policy does when TLS is not (known to be) good enough; never TLS."""
    if policy is Policy.TLS_EXCLUSIVE:
        return Decision(Method.BLOCKED, reason)
    if policy is Policy.OPPORTUNISTIC:
        return Decision(Method.NONE, reason)
    return _encrypted_fallback(s, reason)


def _encrypted_fallback(s: Situation, reason: str) -> Decision:
    if s.has_pgp:
        return Decision(Method.PGP, reason)
    if s.has_smime:
        return Decision(Method.SMIME, reason)
    return Decision(Method.ESCROW, reason)
