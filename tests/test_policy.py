"""Sender policy: what is known about a recipient to its delivery method (DESIGN.md, preview)."""

from __future__ import annotations

import itertools

import pytest

from checker.models import MailStatus, TlsLevel
from checker.policy import Decision, Method, Policy, Situation, decide

V, E, N, U = TlsLevel.VERIFIED, TlsLevel.ENCRYPTED, TlsLevel.NONE, TlsLevel.UNKNOWN
FALLBACK, EXCLUSIVE = Policy.TLS_OR_FALLBACK, Policy.TLS_EXCLUSIVE
NO_TLS, OPPORTUNISTIC = Policy.NO_TLS_ONLY, Policy.OPPORTUNISTIC
ACCEPTS = MailStatus.ACCEPTS
_ENCRYPT = "policy_requires_encryption"


def _same(method: Method, reason: str) -> dict[Policy, Decision]:
    """The same decision under every policy."""
    return dict.fromkeys(Policy, Decision(method, reason))


def _fallbacks(reason: str, keyed: Method) -> dict[Policy, Decision]:
    """Each policy's fallback, where `keyed` is what the key-based policies choose."""
    return {
        FALLBACK: Decision(keyed, reason),
        EXCLUSIVE: Decision(Method.BLOCKED, reason),
        NO_TLS: Decision(keyed, reason),
        OPPORTUNISTIC: Decision(Method.NONE, reason),
    }


def _accepts(level: TlsLevel, *, tls_ok: bool, pgp: bool = False, smime: bool = False) -> Situation:
    return Situation(
        valid=True, mail=ACCEPTS, tls_level=level, tls_ok=tls_ok, has_pgp=pgp, has_smime=smime
    )


# Each row: a situation and the decision every policy must reach for it.
_ROWS: list[tuple[str, Situation, dict[Policy, Decision]]] = [
    (
        "invalid",
        Situation(valid=False, suppressed=True, mail=ACCEPTS, tls_level=V, tls_ok=True),
        _same(Method.INVALID, "invalid_address"),
    ),
    (
        "invalid-pending",
        Situation(valid=False),
        _same(Method.INVALID, "invalid_address"),
    ),
    (
        "suppressed-good-domain",
        Situation(valid=True, suppressed=True, mail=ACCEPTS, tls_level=V, tls_ok=True),
        _same(Method.SUPPRESSED, "suppressed"),
    ),
    (
        "suppressed-null-mx",
        Situation(valid=True, suppressed=True, mail=MailStatus.NULL_MX),
        _same(Method.SUPPRESSED, "suppressed"),
    ),
    (
        "suppressed-pending",
        Situation(valid=True, suppressed=True, has_pgp=True),
        _same(Method.SUPPRESSED, "suppressed"),
    ),
    (
        "pending-no-keys",
        Situation(valid=True, mail=None, tls_level=V, tls_ok=True),
        _fallbacks("check_pending", Method.ESCROW),
    ),
    (
        "pending-pgp",
        Situation(valid=True, mail=None, tls_level=V, tls_ok=True, has_pgp=True, has_smime=True),
        _fallbacks("check_pending", Method.PGP),
    ),
    (
        "pending-smime",
        Situation(valid=True, mail=None, has_smime=True),
        _fallbacks("check_pending", Method.SMIME),
    ),
    (
        "dns-error-no-keys",
        Situation(valid=True, mail=MailStatus.DNS_ERROR, tls_level=V, tls_ok=True),
        _fallbacks("dns_error", Method.ESCROW),
    ),
    (
        "dns-error-pgp",
        Situation(valid=True, mail=MailStatus.DNS_ERROR, tls_level=E, has_pgp=True),
        _fallbacks("dns_error", Method.PGP),
    ),
    (
        "dns-error-smime",
        Situation(valid=True, mail=MailStatus.DNS_ERROR, tls_level=U, has_smime=True),
        _fallbacks("dns_error", Method.SMIME),
    ),
    *(
        (
            f"{status}-with-keys",
            Situation(
                valid=True, mail=status, tls_level=V, tls_ok=True, has_pgp=True, has_smime=True
            ),
            _same(Method.UNDELIVERABLE, str(status)),
        )
        for status in (MailStatus.NULL_MX, MailStatus.NO_SUCH_DOMAIN, MailStatus.NO_MAIL_HOST)
    ),
    (
        "verified-ok",
        _accepts(V, tls_ok=True),
        {
            FALLBACK: Decision(Method.TLS, "tls_verified"),
            EXCLUSIVE: Decision(Method.TLS, "tls_verified"),
            NO_TLS: Decision(Method.ESCROW, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.TLS, "tls_verified"),
        },
    ),
    (
        "verified-ok-pgp",
        _accepts(V, tls_ok=True, pgp=True, smime=True),
        {
            FALLBACK: Decision(Method.TLS, "tls_verified"),
            EXCLUSIVE: Decision(Method.TLS, "tls_verified"),
            NO_TLS: Decision(Method.PGP, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.TLS, "tls_verified"),
        },
    ),
    (
        "verified-ok-smime",
        _accepts(V, tls_ok=True, smime=True),
        {
            FALLBACK: Decision(Method.TLS, "tls_verified"),
            EXCLUSIVE: Decision(Method.TLS, "tls_verified"),
            NO_TLS: Decision(Method.SMIME, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.TLS, "tls_verified"),
        },
    ),
    (
        "encrypted-ok",
        _accepts(E, tls_ok=True),
        {
            FALLBACK: Decision(Method.TLS, "tls_encrypted"),
            EXCLUSIVE: Decision(Method.TLS, "tls_encrypted"),
            NO_TLS: Decision(Method.ESCROW, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.TLS, "tls_encrypted"),
        },
    ),
    (
        "verified-not-ok",
        _accepts(V, tls_ok=False),
        {
            FALLBACK: Decision(Method.ESCROW, "tls_verified"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_verified"),
            NO_TLS: Decision(Method.ESCROW, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.TLS, "tls_verified"),
        },
    ),
    (
        "encrypted-not-ok",
        _accepts(E, tls_ok=False),
        {
            FALLBACK: Decision(Method.ESCROW, "tls_encrypted"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_encrypted"),
            NO_TLS: Decision(Method.ESCROW, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.TLS, "tls_encrypted"),
        },
    ),
    (
        "encrypted-not-ok-pgp",
        _accepts(E, tls_ok=False, pgp=True, smime=True),
        {
            FALLBACK: Decision(Method.PGP, "tls_encrypted"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_encrypted"),
            NO_TLS: Decision(Method.PGP, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.TLS, "tls_encrypted"),
        },
    ),
    (
        "none-pgp",
        _accepts(N, tls_ok=False, pgp=True),
        {
            FALLBACK: Decision(Method.PGP, "tls_none"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_none"),
            NO_TLS: Decision(Method.PGP, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.NONE, "tls_none"),
        },
    ),
    (
        "none-smime",
        _accepts(N, tls_ok=False, smime=True),
        {
            FALLBACK: Decision(Method.SMIME, "tls_none"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_none"),
            NO_TLS: Decision(Method.SMIME, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.NONE, "tls_none"),
        },
    ),
    (
        "none-no-keys",
        _accepts(N, tls_ok=False),
        {
            FALLBACK: Decision(Method.ESCROW, "tls_none"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_none"),
            NO_TLS: Decision(Method.ESCROW, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.NONE, "tls_none"),
        },
    ),
    (
        "unknown-no-keys",
        _accepts(U, tls_ok=False),
        {
            FALLBACK: Decision(Method.ESCROW, "tls_unknown"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_unknown"),
            NO_TLS: Decision(Method.ESCROW, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.NONE, "tls_unknown"),
        },
    ),
    (
        "unknown-smime",
        _accepts(U, tls_ok=False, smime=True),
        {
            FALLBACK: Decision(Method.SMIME, "tls_unknown"),
            EXCLUSIVE: Decision(Method.BLOCKED, "tls_unknown"),
            NO_TLS: Decision(Method.SMIME, _ENCRYPT),
            OPPORTUNISTIC: Decision(Method.NONE, "tls_unknown"),
        },
    ),
]

_TABLE = [
    pytest.param(policy, situation, expected[policy], id=f"{policy}-{name}")
    for name, situation, expected in _ROWS
    for policy in Policy
]

_MAIL: list[MailStatus | None] = [None, *MailStatus]


def _every_situation(levels: tuple[TlsLevel, ...] = tuple(TlsLevel)) -> list[Situation]:
    """Every combination of the situation's fields, restricted to `levels`."""
    return [
        Situation(valid, suppressed, mail, level, tls_ok, pgp, smime)
        for valid, suppressed, mail, level, tls_ok, pgp, smime in itertools.product(
            (True, False), (True, False), _MAIL, levels, (True, False), (True, False), (True, False)
        )
    ]


class TestDecide:
    """`decide` applies invalid, suppressed, undeliverable, then the sender's policy."""

    def test_table_covers_every_policy(self) -> None:
        """Every row of the table names a decision for each policy."""
        assert all(set(expected) == set(Policy) for _, _, expected in _ROWS)

    @pytest.mark.parametrize(("policy", "situation", "expected"), _TABLE)
    def test_table(self, policy: Policy, situation: Situation, expected: Decision) -> None:
        """The policy reaches the decision DESIGN.md prescribes, with its reason code."""
        assert decide(policy, situation) == expected

    @pytest.mark.parametrize("policy", list(Policy))
    def test_unknown_level_never_tls(self, policy: Policy) -> None:
        """An `unknown` TLS level never yields `tls`, whatever else is known."""
        # Including tls_ok=True, which grading never pairs with an unknown level.
        for situation in _every_situation((U,)):
            assert decide(policy, situation).method is not Method.TLS, situation

    @pytest.mark.parametrize("policy", list(Policy))
    def test_unchecked_domain_never_tls(self, policy: Policy) -> None:
        """A pending or failed domain check never yields `tls`, even with good TLS facts."""
        for situation in _every_situation():
            if situation.mail in (None, MailStatus.DNS_ERROR):
                assert decide(policy, situation).method is not Method.TLS, situation

    @pytest.mark.parametrize("policy", [FALLBACK, EXCLUSIVE, NO_TLS])
    def test_tls_only_when_ok(self, policy: Policy) -> None:
        """Outside opportunistic mode, `tls` requires `tls_ok` and a domain that accepts mail."""
        for situation in _every_situation():
            if decide(policy, situation).method is Method.TLS:
                assert situation.tls_ok
                assert situation.mail is ACCEPTS

    def test_no_tls_only_never_tls(self) -> None:
        """`no_tls_only` never sends with TLS alone, whatever the situation."""
        for situation in _every_situation():
            assert decide(NO_TLS, situation).method is not Method.TLS, situation

    @pytest.mark.parametrize("policy", list(Policy))
    def test_every_decision_has_a_reason(self, policy: Policy) -> None:
        """Every decision carries a non-empty reason code."""
        for situation in _every_situation():
            assert decide(policy, situation).reason, situation
