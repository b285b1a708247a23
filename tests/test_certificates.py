"""Judging a peer certificate: RFC 6125 host name matching and the first error that applies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from checker.certificates import describe, hostname_matches
from checker.models import CertError

# `describe` is pure in `now`, so every certificate is built around one fixed instant.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOST = "mx1.example.net"
_KEY = ec.generate_private_key(ec.SECP256R1())
_CA_KEY = ec.generate_private_key(ec.SECP256R1())
_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])

# OpenSSL X509_V_ERR_* codes as the TLS handshake reports them.
CERT_HAS_EXPIRED = 10
DEPTH_ZERO_SELF_SIGNED = 18
SELF_SIGNED_IN_CHAIN = 19
UNABLE_TO_GET_ISSUER_LOCALLY = 20


def _cert(
    *,
    cn: str | None = HOST,
    san: Sequence[str] | None = (HOST,),
    not_before: datetime = NOW - timedelta(days=30),
    not_after: datetime = NOW + timedelta(days=60),
    self_signed: bool = False,
    san_ips: Sequence[str] = (),
) -> bytes:
    """A DER leaf certificate, issued by a test CA unless `self_signed`."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    issuer = subject if self_signed else _CA_NAME
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if san is not None:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in san]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in san_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    signer = _KEY if self_signed else _CA_KEY
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class TestHostnameMatches:
    """`hostname_matches` follows RFC 6125 with a single left-most wildcard label."""

    @pytest.mark.parametrize(
        ("host", "names", "expected"),
        [
            pytest.param("mx.example.com", ["mx.example.com"], True, id="exact"),
            pytest.param("MX.Example.COM", ["mx.example.com"], True, id="host-upper-case"),
            pytest.param("mx.example.com", ["MX.EXAMPLE.COM"], True, id="name-upper-case"),
            pytest.param("mx.example.com.", ["mx.example.com"], True, id="host-trailing-dot"),
            pytest.param("mx.example.com", ["mx.example.com."], True, id="name-trailing-dot"),
            pytest.param("mx.example.com", ["a.example.com", "mx.example.com"], True, id="second"),
            pytest.param("mx.example.com", [], False, id="no-names"),
            pytest.param("mx.example.com", ["mx2.example.com"], False, id="other-host"),
            pytest.param("mx.example.com", ["example.com"], False, id="parent-is-not-child"),
            pytest.param("example.com", ["mx.example.com"], False, id="child-is-not-parent"),
            pytest.param("mx.example.com", ["mx.example.co"], False, id="suffix-prefix"),
            pytest.param("mx.example.com", ["*.example.com"], True, id="wildcard"),
            pytest.param("MX.EXAMPLE.COM.", ["*.Example.Com."], True, id="wildcard-case-dots"),
            pytest.param("example.com", ["*.example.com"], False, id="wildcard-not-bare-parent"),
            pytest.param("a.mx.example.com", ["*.example.com"], False, id="wildcard-not-two"),
            pytest.param(".example.com", ["*.example.com"], False, id="wildcard-not-empty"),
            pytest.param("mx.example.org", ["*.example.com"], False, id="wildcard-other-parent"),
            pytest.param("foo.example.com", ["f*.example.com"], False, id="partial-prefix"),
            pytest.param("foo.example.com", ["*o.example.com"], False, id="partial-suffix"),
            pytest.param("foo.example.com", ["f*o.example.com"], False, id="partial-middle"),
            pytest.param("example.com", ["*.com"], False, id="wildcard-tld"),
            pytest.param("example.com", ["*"], False, id="bare-star"),
            pytest.param("a.b.example.com", ["a.*.example.com"], False, id="wildcard-not-left"),
            pytest.param("a.b.example.com", ["*.*.example.com"], False, id="two-wildcards"),
            pytest.param("mx.example.com", ["mx.*.com"], False, id="wildcard-middle"),
            pytest.param(
                "mx.xn--bcher-kva.example", ["*.xn--bcher-kva.example"], True, id="idn-wildcard"
            ),
        ],
    )
    def test_table(self, host: str, names: list[str], expected: bool) -> None:
        """A host matches a name exactly or through one whole left-most wildcard label."""
        assert hostname_matches(host, names) is expected


class TestDescribe:
    """`describe` reports the leaf certificate's facts and the first error that applies."""

    def test_good_certificate(self) -> None:
        """A trusted, in-date certificate naming the host has no error."""
        facts = describe(_cert(), HOST, None, NOW)
        assert facts.trusted is True
        assert facts.hostname_match is True
        assert facts.error is None
        assert facts.subject == f"CN={HOST}"
        assert facts.issuer == "CN=Test Issuing CA"
        assert facts.not_before == NOW - timedelta(days=30)
        assert facts.not_after == NOW + timedelta(days=60)

    def test_expired(self) -> None:
        """A certificate past its end date is `expired`, even when the chain verified."""
        der = _cert(not_before=NOW - timedelta(days=90), not_after=NOW - timedelta(seconds=1))
        facts = describe(der, HOST, None, NOW)
        assert facts.error is CertError.EXPIRED
        assert facts.trusted is True

    def test_not_yet_valid(self) -> None:
        """A certificate whose start date is still ahead is `not_yet_valid`."""
        der = _cert(not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=90))
        assert describe(der, HOST, None, NOW).error is CertError.NOT_YET_VALID

    def test_expired_but_chain_found(self) -> None:
        """OpenSSL's "certificate has expired" still means a chain was built: trusted, expired."""
        der = _cert(not_before=NOW - timedelta(days=90), not_after=NOW - timedelta(days=1))
        facts = describe(der, HOST, CERT_HAS_EXPIRED, NOW)
        assert facts.trusted is True
        assert facts.error is CertError.EXPIRED

    def test_expired_wins_over_untrusted(self) -> None:
        """The date error is reported first, before trust."""
        der = _cert(not_after=NOW - timedelta(days=1), self_signed=True)
        facts = describe(der, HOST, DEPTH_ZERO_SELF_SIGNED, NOW)
        assert facts.trusted is False
        assert facts.error is CertError.EXPIRED

    def test_self_signed(self) -> None:
        """A self-signed leaf (verify code 18) is untrusted with error `self_signed`."""
        facts = describe(_cert(self_signed=True), HOST, DEPTH_ZERO_SELF_SIGNED, NOW)
        assert facts.trusted is False
        assert facts.error is CertError.SELF_SIGNED
        assert facts.issuer == facts.subject

    @pytest.mark.parametrize(
        ("self_signed", "verify_code", "error"),
        [
            pytest.param(True, DEPTH_ZERO_SELF_SIGNED, CertError.SELF_SIGNED, id="self-signed-18"),
            pytest.param(True, SELF_SIGNED_IN_CHAIN, CertError.SELF_SIGNED, id="self-signed-19"),
            pytest.param(False, DEPTH_ZERO_SELF_SIGNED, CertError.SELF_SIGNED, id="issued-18"),
            pytest.param(False, UNABLE_TO_GET_ISSUER_LOCALLY, CertError.UNTRUSTED, id="issued-20"),
            pytest.param(False, SELF_SIGNED_IN_CHAIN, CertError.UNTRUSTED, id="issued-19"),
        ],
    )
    def test_self_signed_by_code_or_names(
        self, self_signed: bool, verify_code: int, error: CertError
    ) -> None:
        """Verify code 18, or a leaf whose issuer is its subject, is `self_signed`."""
        facts = describe(_cert(self_signed=self_signed), HOST, verify_code, NOW)
        assert facts.trusted is False
        assert facts.error is error

    def test_unknown_issuer(self) -> None:
        """A leaf whose issuer is not found (verify code 20) is `untrusted`."""
        facts = describe(_cert(), HOST, UNABLE_TO_GET_ISSUER_LOCALLY, NOW)
        assert facts.trusted is False
        assert facts.error is CertError.UNTRUSTED

    def test_untrusted_wins_over_mismatch(self) -> None:
        """Trust is judged before the host name."""
        facts = describe(_cert(), "other.example.net", UNABLE_TO_GET_ISSUER_LOCALLY, NOW)
        assert facts.hostname_match is False
        assert facts.error is CertError.UNTRUSTED

    def test_hostname_mismatch(self) -> None:
        """A trusted certificate whose SAN does not name the host is `hostname_mismatch`."""
        facts = describe(_cert(san=["mail.example.org"]), HOST, None, NOW)
        assert facts.trusted is True
        assert facts.hostname_match is False
        assert facts.error is CertError.HOSTNAME_MISMATCH

    def test_wildcard_san_matches(self) -> None:
        """A wildcard SAN covering the host counts as a match."""
        facts = describe(_cert(san=["*.example.net"]), HOST, None, NOW)
        assert facts.hostname_match is True
        assert facts.error is None

    def test_common_name_ignored_when_san_present(self) -> None:
        """With a SAN extension the CN never matches, even when it names the host."""
        facts = describe(_cert(cn=HOST, san=["other.example.net"]), HOST, None, NOW)
        assert facts.hostname_match is False
        assert facts.error is CertError.HOSTNAME_MISMATCH

    def test_common_name_used_without_san(self) -> None:
        """Without any SAN extension the CN is the name that is matched."""
        facts = describe(_cert(cn=HOST, san=None), HOST, None, NOW)
        assert facts.san == ()
        assert facts.hostname_match is True
        assert facts.error is None

    def test_common_name_without_san_can_mismatch(self) -> None:
        """Without any SAN a CN naming another host does not match."""
        facts = describe(_cert(cn="other.example.net", san=None), HOST, None, NOW)
        assert facts.hostname_match is False
        assert facts.error is CertError.HOSTNAME_MISMATCH

    def test_no_names_at_all(self) -> None:
        """A certificate with neither SAN nor CN matches no host."""
        facts = describe(_cert(cn=None, san=None), HOST, None, NOW)
        assert facts.hostname_match is False
        assert facts.error is CertError.HOSTNAME_MISMATCH

    def test_san_list_exposed(self) -> None:
        """Every DNS name of the SAN is reported, in certificate order."""
        names = ["mx2.example.net", HOST, "*.example.org"]
        facts = describe(_cert(san=names), HOST, None, NOW)
        assert facts.san == tuple(names)
        assert facts.to_json()["san"] == names


class TestCommonNameFallback:
    """The CN counts only when the certificate has no SAN extension at all."""

    def test_ip_only_san_ignores_cn(self) -> None:
        """A SAN with only an IP address still hides the CN from name matching."""
        der = _cert(cn=HOST, san=(), san_ips=("192.0.2.10",))
        facts = describe(der, HOST, None, NOW)
        assert facts.hostname_match is False
        assert facts.error is CertError.HOSTNAME_MISMATCH
