"""Grading: probe facts to a level per address, worst level, and the `tls_ok` verdict."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from checker.grading import grade_address, merge_reasons, tls_ok, version_number, worst_level
from checker.models import (
    CertError,
    CertificateFacts,
    MailStatus,
    ProbeFacts,
    ProbeStatus,
    TlsLevel,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GOOD_CERT = CertificateFacts(
    subject="CN=mx1.example.net",
    issuer="CN=Test CA",
    san=("mx1.example.net",),
    not_before=NOW - timedelta(days=30),
    not_after=NOW + timedelta(days=60),
    trusted=True,
    hostname_match=True,
    error=None,
)
V, E, N, U = TlsLevel.VERIFIED, TlsLevel.ENCRYPTED, TlsLevel.NONE, TlsLevel.UNKNOWN


def _facts(**changes: Any) -> ProbeFacts:
    """Facts of a good session (TLSv1.3, good certificate), with `changes` applied."""
    base = ProbeFacts(
        host="mx1.example.net",
        ip="192.0.2.10",
        status=ProbeStatus.OK,
        checked_at=NOW,
        reply_code=220,
        starttls=True,
        tls_version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        certificate=GOOD_CERT,
    )
    return dataclasses.replace(base, **changes)


def _cert(error: CertError | None, *, trusted: bool, match: bool) -> CertificateFacts:
    return dataclasses.replace(GOOD_CERT, error=error, trusted=trusted, hostname_match=match)


_NOT_OK = [s for s in ProbeStatus if s not in (ProbeStatus.OK, ProbeStatus.BLOCKED)]


class TestGradeAddress:
    """`grade_address` gives one address its level and the reasons it earns no better."""

    @pytest.mark.parametrize("status", _NOT_OK, ids=str)
    def test_no_session_is_unknown(self, status: ProbeStatus) -> None:
        """Every failed SMTP session is `unknown`, with the status as the reason."""
        facts = _facts(status=status, starttls=None, tls_version=None, certificate=None)
        report = grade_address(facts, "1.2")
        assert (report.tls_level, report.reasons) == (U, (f"smtp_{status}",))

    def test_not_ok_status_ignores_tls_facts(self) -> None:
        """A failed session stays `unknown` even if TLS facts are somehow present."""
        report = grade_address(_facts(status=ProbeStatus.TIMEOUT), "1.2")
        assert (report.tls_level, report.reasons) == (U, ("smtp_timeout",))

    @pytest.mark.parametrize(
        ("changes", "min_tls", "level", "reasons"),
        [
            pytest.param({}, "1.2", V, (), id="tls13-good-cert"),
            pytest.param({"tls_version": "TLSv1.2"}, "1.2", V, (), id="tls12-good-cert"),
            pytest.param({"starttls_reply": 220}, "1.2", V, (), id="starttls-220"),
            pytest.param(
                {"status": ProbeStatus.BLOCKED, "starttls": None, "certificate": None},
                "1.2",
                U,
                ("address_blocked",),
                id="blocked",
            ),
            pytest.param(
                {"starttls": False, "tls_version": None, "certificate": None},
                "1.2",
                N,
                ("no_starttls",),
                id="no-starttls",
            ),
            pytest.param(
                {"starttls_reply": 454, "tls_version": None, "certificate": None},
                "1.2",
                N,
                ("starttls_refused",),
                id="starttls-454",
            ),
            pytest.param(
                {"starttls_reply": 502, "tls_version": None, "certificate": None},
                "1.2",
                N,
                ("starttls_refused",),
                id="starttls-502",
            ),
            pytest.param(
                {"tls_version": None, "certificate": None, "handshake_error": "alert"},
                "1.2",
                N,
                ("tls_handshake_failed",),
                id="handshake-failed",
            ),
            pytest.param(
                {"tls_version": None, "certificate": None, "legacy_tls_version": "TLSv1"},
                "1.2",
                N,
                ("tls_version_too_old",),
                id="legacy-tls1-min-12",
            ),
            pytest.param(
                {"tls_version": None, "certificate": None, "legacy_tls_version": "SSLv3"},
                "1.0",
                N,
                ("tls_version_too_old",),
                id="legacy-ssl3-min-10",
            ),
            pytest.param(
                {"tls_version": None, "certificate": None, "legacy_tls_version": "TLSv1"},
                "1.0",
                E,
                ("certificate_not_checked",),
                id="legacy-tls1-min-10",
            ),
            pytest.param(
                {"tls_version": None, "certificate": None, "legacy_tls_version": "bogus"},
                "1.2",
                N,
                ("tls_handshake_failed",),
                id="legacy-unknown-name",
            ),
            pytest.param({"tls_version": "TLSv1.1"}, "1.2", N, ("tls_version_too_old",), id="11"),
            pytest.param({"tls_version": "TLSv1"}, "1.2", N, ("tls_version_too_old",), id="10"),
            pytest.param({"tls_version": "TLSv1.1"}, "1.1", V, (), id="tls11-min-11"),
            pytest.param(
                {"tls_version": "TLSv1.2"}, "1.3", N, ("tls_version_too_old",), id="tls12-min-13"
            ),
            pytest.param({"tls_version": "TLSv1.3"}, "1.3", V, (), id="tls13-min-13"),
            pytest.param(
                {"tls_version": "TLSv1.3", "certificate": None},
                "1.2",
                E,
                ("no_certificate",),
                id="no-certificate",
            ),
            pytest.param(
                {"certificate": _cert(CertError.EXPIRED, trusted=True, match=True)},
                "1.2",
                E,
                ("certificate_expired",),
                id="cert-expired",
            ),
            pytest.param(
                {"certificate": _cert(CertError.NOT_YET_VALID, trusted=True, match=True)},
                "1.2",
                E,
                ("certificate_not_yet_valid",),
                id="cert-not-yet-valid",
            ),
            pytest.param(
                {"certificate": _cert(CertError.SELF_SIGNED, trusted=False, match=True)},
                "1.2",
                E,
                ("certificate_self_signed",),
                id="cert-self-signed",
            ),
            pytest.param(
                {"certificate": _cert(CertError.UNTRUSTED, trusted=False, match=True)},
                "1.2",
                E,
                ("certificate_untrusted",),
                id="cert-untrusted",
            ),
            pytest.param(
                {"certificate": _cert(CertError.HOSTNAME_MISMATCH, trusted=True, match=False)},
                "1.2",
                E,
                ("certificate_hostname_mismatch",),
                id="cert-hostname-mismatch",
            ),
            pytest.param(
                {"certificate": _cert(None, trusted=False, match=True)},
                "1.2",
                E,
                ("certificate_untrusted",),
                id="cert-untrusted-without-error",
            ),
            pytest.param(
                {"certificate": _cert(None, trusted=True, match=False)},
                "1.2",
                E,
                ("certificate_untrusted",),
                id="cert-mismatch-without-error",
            ),
        ],
    )
    def test_table(
        self, changes: dict[str, Any], min_tls: str, level: TlsLevel, reasons: tuple[str, ...]
    ) -> None:
        """Each combination of probe facts and minimum version earns its level and reasons."""
        report = grade_address(_facts(**changes), min_tls)
        assert (report.tls_level, report.reasons) == (level, reasons)

    @pytest.mark.parametrize("error", list(CertError), ids=str)
    def test_every_certificate_error_is_encrypted(self, error: CertError) -> None:
        """Each certificate error caps the level at `encrypted`, named in the reason."""
        report = grade_address(_facts(certificate=_cert(error, trusted=True, match=True)), "1.2")
        assert (report.tls_level, report.reasons) == (E, (f"certificate_{error}",))

    def test_report_keeps_the_facts(self) -> None:
        """The report carries the very facts it graded."""
        facts = _facts()
        assert grade_address(facts, "1.2").facts is facts


class TestVersionNumber:
    """`version_number` maps OpenSSL version names to comparable numbers."""

    @pytest.mark.parametrize(
        ("name", "number"),
        [
            ("SSLv3", 0.3),
            ("TLSv1", 1.0),
            ("TLSv1.1", 1.1),
            ("TLSv1.2", 1.2),
            ("TLSv1.3", 1.3),
            ("TLSv9", 0.0),
            ("", 0.0),
            (None, 0.0),
        ],
    )
    def test_table(self, name: str | None, number: float) -> None:
        """Known names give their version; unknown or missing names give zero."""
        assert version_number(name) == number


class TestWorstLevel:
    """`worst_level` combines levels: none < encrypted < verified, unknown left out."""

    @pytest.mark.parametrize(
        ("levels", "expected"),
        [
            pytest.param([], U, id="empty"),
            pytest.param([U], U, id="only-unknown"),
            pytest.param([U, U, U], U, id="all-unknown"),
            pytest.param([V], V, id="one-verified"),
            pytest.param([V, U], V, id="unknown-ignored-verified"),
            pytest.param([U, E], E, id="unknown-ignored-encrypted"),
            pytest.param([U, N, U], N, id="unknown-ignored-none"),
            pytest.param([V, E], E, id="encrypted-beats-verified"),
            pytest.param([E, V], E, id="order-does-not-matter"),
            pytest.param([V, N], N, id="none-beats-verified"),
            pytest.param([E, N], N, id="none-beats-encrypted"),
            pytest.param([V, E, N, U], N, id="everything"),
            pytest.param([V, V, V], V, id="all-verified"),
        ],
    )
    def test_table(self, levels: list[TlsLevel], expected: TlsLevel) -> None:
        """The worst known level wins; only unknown levels give unknown."""
        assert worst_level(levels) is expected

    def test_accepts_a_generator(self) -> None:
        """Levels may come from any iterable, consumed once."""
        assert worst_level(level for level in (V, U, E)) is E


_NOT_ACCEPTING = [m for m in MailStatus if m is not MailStatus.ACCEPTS]


class TestTlsOk:
    """`tls_ok` is true only when mail is accepted and the level meets the requirement."""

    @pytest.mark.parametrize(
        ("level", "require_verified", "expected"),
        [
            (V, True, True),
            (V, False, True),
            (E, True, False),
            (E, False, True),
            (N, True, False),
            (N, False, False),
            (U, True, False),
            (U, False, False),
        ],
    )
    def test_accepting_domain(
        self, level: TlsLevel, require_verified: bool, expected: bool
    ) -> None:
        """For a domain that accepts mail, the level and the requirement decide."""
        assert tls_ok(MailStatus.ACCEPTS, level, require_verified) is expected

    @pytest.mark.parametrize("require_verified", [True, False])
    @pytest.mark.parametrize("level", list(TlsLevel), ids=str)
    @pytest.mark.parametrize("mail", _NOT_ACCEPTING, ids=str)
    def test_not_accepting_is_never_ok(
        self, mail: MailStatus, level: TlsLevel, require_verified: bool
    ) -> None:
        """A domain that does not accept mail is never `tls_ok`, whatever its level."""
        assert tls_ok(mail, level, require_verified) is False


class TestMergeReasons:
    """`merge_reasons` concatenates reason lists without repeats."""

    @pytest.mark.parametrize(
        ("groups", "expected"),
        [
            ([], ()),
            ([[], []], ()),
            ([["a"], ["b"]], ("a", "b")),
            ([["b", "a"], ["a", "c"], ["b"]], ("b", "a", "c")),
        ],
    )
    def test_table(self, groups: list[list[str]], expected: tuple[str, ...]) -> None:
        """Reasons keep the order of their first occurrence."""
        assert merge_reasons(groups) == expected
