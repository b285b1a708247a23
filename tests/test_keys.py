"""Recipient keys: the OpenPGP keys and S/MIME certificates a user uploads for a recipient."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pysequoia
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from pysequoia.packet import Packet, PacketPile, Tag

from checker.keys import MAX_KEY_BYTES, InvalidKey, KeyProblem, KeyType, parse_key

ALICE = "alice@example.com"
# S/MIME checks are pure in `now`, so certificates are built around a fixed instant.
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
EMAIL_PROTECTION = ExtendedKeyUsageOID.EMAIL_PROTECTION
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

CertKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _rejects(key_type: KeyType, text: str, now: datetime, address: str = ALICE) -> InvalidKey:
    """Parse expecting a refusal whose message never repeats the uploaded material."""
    with pytest.raises(InvalidKey) as info:
        parse_key(key_type, text, address, now)
    for line in text.splitlines():
        if len(line.strip()) > 8:
            assert line.strip() not in info.value.message
    return info.value


# --- OpenPGP material ------------------------------------------------------------------------


def _pgp_now() -> datetime:
    # Sequoia stamps its signatures with the real clock, so OpenPGP checks run at the real time.
    return datetime.now(UTC)


def _packets(cert: pysequoia.Cert) -> list[Packet]:
    return list(PacketPile.from_bytes(bytes(cert)))


def _encryption_subkey_span(packets: list[Packet]) -> tuple[int, int]:
    """Index range of the encryption subkey packet and the signatures that follow it."""
    for index, packet in enumerate(packets):
        flags = packet.key_flags
        if packet.tag == Tag.Signature and flags is not None and flags.transport_encryption:
            start = index - 1
            if packets[start].tag == Tag.PublicSubkey:
                return start, index + 1
    raise AssertionError("generated key has no encryption subkey")


def _sign_only(cert: pysequoia.Cert) -> str:
    packets = _packets(cert)
    start, end = _encryption_subkey_span(packets)
    return str(pysequoia.Cert.from_packets(packets[:start] + packets[end:]))


def _forged_binding(cert: pysequoia.Cert) -> str:
    raw = bytearray(bytes(cert))
    packets = _packets(cert)
    _, end = _encryption_subkey_span(packets)
    binding = bytes(packets[end - 1])
    at = bytes(raw).rfind(binding) + len(binding) - 5  # inside the signature value itself
    raw[at] ^= 0xFF
    return pysequoia.armor(bytes(raw), pysequoia.ArmorKind.PublicKey)


def _with_signature(cert: pysequoia.Cert, signature: pysequoia.Sig) -> str:
    return str(pysequoia.Cert.from_bytes(bytes(cert) + bytes(signature)))


@pytest.fixture(scope="module")
def alice_tsk() -> pysequoia.Tsk:
    return pysequoia.Tsk.generate("Alice <alice@example.com>")


@pytest.fixture(scope="module")
def pgp_texts(alice_tsk: pysequoia.Tsk) -> dict[str, str]:
    """Armored OpenPGP inputs by name, all generated here with Cv25519 keys."""
    cert = alice_tsk.extract_certificate()
    revocation = cert.revoke(alice_tsk.certifier())
    bob = pysequoia.Tsk.generate("Bob <bob@example.com>").extract_certificate()
    two_uids = pysequoia.Tsk.generate(user_ids=["Alice <alice@example.com>", "B <bob@example.com>"])
    two_uids_cert = two_uids.extract_certificate()
    bob_uid = next(u for u in two_uids_cert.user_ids if "bob@" in str(u))
    return {
        "valid": str(cert),
        "secret": str(alice_tsk),
        "secret_as_public": pysequoia.armor(bytes(alice_tsk), pysequoia.ArmorKind.PublicKey),
        "revoked": _with_signature(cert, revocation),
        "expiring": str(pysequoia.Tsk.generate(ALICE, validity_seconds=3600).extract_certificate()),
        "bob": str(bob),
        "two_uids": str(two_uids_cert),
        "bob_uid_revoked": _with_signature(
            two_uids_cert, two_uids_cert.revoke_user_id(bob_uid, two_uids.certifier())
        ),
        "sign_only": _sign_only(cert),
        "forged_binding": _forged_binding(cert),
        "two_keys": f"{cert}\n{bob}",
        "signature": str(revocation),
        "truncated": str(cert)[: len(str(cert)) // 2],
    }


class TestPgpAccepted:
    """An OpenPGP public key that can encrypt to the address is accepted and described."""

    def test_valid_key(self, alice_tsk: pysequoia.Tsk, pgp_texts: dict[str, str]) -> None:
        """A fresh key yields its fingerprint, creation time, no expiry and its address."""
        now = _pgp_now()
        parsed = parse_key(KeyType.PGP, pgp_texts["valid"], ALICE, now)
        assert parsed.type is KeyType.PGP
        assert parsed.fingerprint == alice_tsk.extract_certificate().fingerprint
        assert re.fullmatch(r"[0-9a-f]{40}", parsed.fingerprint)
        assert parsed.created_at is not None
        assert parsed.created_at.utcoffset() == timedelta(0)
        assert parsed.created_at <= now
        assert parsed.expires_at is None
        assert parsed.addresses == (ALICE,)

    def test_expiry_is_reported(self, pgp_texts: dict[str, str]) -> None:
        """A key that expires later is accepted and its expiry is the one Sequoia computes."""
        text = pgp_texts["expiring"]
        parsed = parse_key(KeyType.PGP, text, ALICE, _pgp_now())
        assert parsed.expires_at == pysequoia.Cert.from_bytes(text.encode()).expiration

    @pytest.mark.parametrize(
        ("profile", "suite", "hex_digits"),
        [
            pytest.param(pysequoia.Profile.RFC4880, pysequoia.CipherSuite.P256, 40, id="v4-p256"),
            pytest.param(pysequoia.Profile.RFC9580, pysequoia.CipherSuite.Cv25519, 64, id="v6"),
        ],
    )
    def test_other_key_formats(
        self, profile: pysequoia.Profile, suite: pysequoia.CipherSuite, hex_digits: int
    ) -> None:
        """NIST-curve v4 keys and RFC 9580 v6 keys (64-digit fingerprints) are accepted too."""
        cert = pysequoia.Tsk.generate(ALICE, profile=profile, cipher_suite=suite)
        parsed = parse_key(KeyType.PGP, str(cert.extract_certificate()), ALICE, _pgp_now())
        assert re.fullmatch(f"[0-9a-f]{{{hex_digits}}}", parsed.fingerprint)

    @pytest.mark.parametrize(
        ("user_id", "address"),
        [
            ("Alice <Alice@Example.COM>", ALICE),
            ("<ALICE@example.com>", ALICE),
            ("alice@example.com", "Alice@example.com"),
        ],
    )
    def test_address_match_ignores_case(self, user_id: str, address: str) -> None:
        """The User ID address matches whatever the case, and is stored lower-cased."""
        cert = pysequoia.Tsk.generate(user_id).extract_certificate()
        parsed = parse_key(KeyType.PGP, str(cert), address, _pgp_now())
        assert parsed.addresses == (ALICE,)

    def test_any_user_id_address(self, pgp_texts: dict[str, str]) -> None:
        """Every valid User ID counts: the second one's address matches as well as the first."""
        parsed = parse_key(KeyType.PGP, pgp_texts["two_uids"], "bob@example.com", _pgp_now())
        assert parsed.addresses == (ALICE, "bob@example.com")

    def test_text_around_the_armor(self, pgp_texts: dict[str, str]) -> None:
        """Text pasted around the armored block is ignored."""
        text = f"Here is my key:\n\n{pgp_texts['valid']}\nThanks!\n"
        assert parse_key(KeyType.PGP, text, ALICE, _pgp_now()).addresses == (ALICE,)


class TestPgpRefused:
    """OpenPGP input we cannot or must not encrypt to is refused with a specific code."""

    @pytest.mark.parametrize(
        ("case", "later", "code"),
        [
            pytest.param("secret", timedelta(0), KeyProblem.PRIVATE_KEY, id="secret-key"),
            pytest.param(
                "secret_as_public", timedelta(0), KeyProblem.PRIVATE_KEY, id="secret-mislabelled"
            ),
            pytest.param("revoked", timedelta(0), KeyProblem.REVOKED_KEY, id="revoked"),
            pytest.param("expiring", timedelta(hours=2), KeyProblem.EXPIRED_KEY, id="expired"),
            pytest.param("bob", timedelta(0), KeyProblem.ADDRESS_MISMATCH, id="other-address"),
            pytest.param(
                "bob_uid_revoked", timedelta(0), KeyProblem.ADDRESS_MISMATCH, id="uid-revoked"
            ),
            pytest.param("sign_only", timedelta(0), KeyProblem.NO_ENCRYPTION_KEY, id="sign-only"),
            pytest.param(
                "forged_binding", timedelta(0), KeyProblem.NO_ENCRYPTION_KEY, id="forged-binding"
            ),
            pytest.param("two_keys", timedelta(0), KeyProblem.INVALID_KEY, id="two-keys"),
            pytest.param("signature", timedelta(0), KeyProblem.INVALID_KEY, id="wrong-armor"),
            pytest.param("truncated", timedelta(0), KeyProblem.INVALID_KEY, id="truncated"),
        ],
    )
    def test_refusals(
        self, pgp_texts: dict[str, str], case: str, later: timedelta, code: KeyProblem
    ) -> None:
        """Each broken, secret, stale or mismatched key gets the code that names its problem."""
        address = "bob@example.com" if case == "bob_uid_revoked" else ALICE
        error = _rejects(KeyType.PGP, pgp_texts[case], _pgp_now() + later, address)
        assert error.code == code

    def test_certificate_uploaded_as_pgp(self, ec_key: ec.EllipticCurvePrivateKey) -> None:
        """A PEM certificate offered as an OpenPGP key is not an OpenPGP key."""
        error = _rejects(KeyType.PGP, _pem(_certificate(ec_key)), _pgp_now())
        assert error.code == KeyProblem.INVALID_KEY


# --- S/MIME material -------------------------------------------------------------------------


def _usage(*, encipherment: bool = False, agreement: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    key: CertKey,
    *,
    sans: tuple[str, ...] = (ALICE,),
    subject_email: str | None = None,
    starts: timedelta = timedelta(days=-1),
    lasts: timedelta = timedelta(days=365),
    usage: x509.KeyUsage | None = None,
    purposes: tuple[x509.ObjectIdentifier, ...] | None = (EMAIL_PROTECTION,),
) -> x509.Certificate:
    """A self-signed end-entity certificate valid from NOW + `starts` for `lasts`."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "Alice")]
    if subject_email is not None:
        attributes.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, subject_email))
    name = x509.Name(attributes)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + starts)
        .not_valid_after(NOW + starts + lasts)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans:
        alt_names = [x509.RFC822Name(a) for a in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if purposes is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def _pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SmimeBuilder = Callable[[ec.EllipticCurvePrivateKey], str]


class TestSmimeAccepted:
    """A certificate that may protect e-mail for the address is accepted and described."""

    def test_valid_certificate(self, ec_key: ec.EllipticCurvePrivateKey) -> None:
        """The rfc822Name SAN names the address; times and SHA-256 fingerprint come through."""
        cert = _certificate(ec_key, usage=_usage(agreement=True))
        parsed = parse_key(KeyType.SMIME, _pem(cert), ALICE, NOW)
        assert parsed.type is KeyType.SMIME
        assert parsed.fingerprint == cert.fingerprint(hashes.SHA256()).hex()
        assert parsed.created_at == NOW - timedelta(days=1)
        assert parsed.expires_at == NOW + timedelta(days=364)
        assert parsed.addresses == (ALICE,)

    @pytest.mark.parametrize(
        "build",
        [
            pytest.param(lambda k: _pem(_certificate(k, usage=None, purposes=None)), id="no-usage"),
            pytest.param(
                lambda k: _pem(_certificate(k, sans=(), subject_email=ALICE)), id="subject-email"
            ),
            pytest.param(
                lambda k: _pem(_certificate(k, sans=("Alice@Example.COM",))), id="san-upper-case"
            ),
            pytest.param(
                lambda k: _pem(
                    _certificate(k, purposes=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,))
                ),
                id="any-purpose",
            ),
            pytest.param(
                lambda k: f"subject=CN=Alice\n{_pem(_certificate(k))}", id="text-around-pem"
            ),
        ],
    )
    def test_accepted_variants(
        self, ec_key: ec.EllipticCurvePrivateKey, build: SmimeBuilder
    ) -> None:
        """No usage extensions, a subject address, upper case and `anyExtendedKeyUsage` pass."""
        assert parse_key(KeyType.SMIME, build(ec_key), ALICE, NOW).addresses == (ALICE,)

    def test_rsa_key_encipherment(self, rsa_key: rsa.RSAPrivateKey) -> None:
        """An RSA certificate with keyEncipherment is accepted."""
        cert = _certificate(rsa_key, usage=_usage(encipherment=True))
        assert parse_key(KeyType.SMIME, _pem(cert), ALICE, NOW).addresses == (ALICE,)

    def test_addresses_are_collected_once(self, ec_key: ec.EllipticCurvePrivateKey) -> None:
        """Subject and SAN addresses are merged, lower-cased and deduplicated in order."""
        cert = _certificate(
            ec_key, sans=("a2@example.com", ALICE), subject_email="Alice@Example.com"
        )
        parsed = parse_key(KeyType.SMIME, _pem(cert), ALICE, NOW)
        assert parsed.addresses == (ALICE, "a2@example.com")


class TestSmimeRefused:
    """Certificates we cannot or must not encrypt to are refused with a specific code."""

    @pytest.mark.parametrize(
        ("build", "code"),
        [
            pytest.param(
                lambda k: _pem(_certificate(k, starts=timedelta(days=-400))),
                KeyProblem.EXPIRED_KEY,
                id="expired",
            ),
            pytest.param(
                lambda k: _pem(_certificate(k, starts=timedelta(hours=1))),
                KeyProblem.EXPIRED_KEY,
                id="not-yet-valid",
            ),
            pytest.param(
                lambda k: _pem(_certificate(k, purposes=(ExtendedKeyUsageOID.SERVER_AUTH,))),
                KeyProblem.NO_ENCRYPTION_KEY,
                id="eku-without-email",
            ),
            pytest.param(
                lambda k: _pem(_certificate(k, usage=_usage())),
                KeyProblem.NO_ENCRYPTION_KEY,
                id="signature-only-usage",
            ),
            pytest.param(
                lambda k: _pem(_certificate(k, sans=("bob@example.com",))),
                KeyProblem.ADDRESS_MISMATCH,
                id="other-address",
            ),
            pytest.param(
                lambda k: _pem(_certificate(k, sans=())),
                KeyProblem.ADDRESS_MISMATCH,
                id="no-address",
            ),
            pytest.param(
                lambda k: _pem(_certificate(k), _certificate(k)),
                KeyProblem.INVALID_KEY,
                id="two-certificates",
            ),
            pytest.param(
                lambda k: _pem(_certificate(k))[:300],
                KeyProblem.INVALID_KEY,
                id="truncated",
            ),
            pytest.param(
                lambda k: (
                    k.public_key()
                    .public_bytes(
                        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                    .decode()
                ),
                KeyProblem.INVALID_KEY,
                id="bare-public-key",
            ),
        ],
    )
    def test_refusals(
        self, ec_key: ec.EllipticCurvePrivateKey, build: SmimeBuilder, code: KeyProblem
    ) -> None:
        """Each stale, mis-purposed, mismatched or malformed certificate gets its own code."""
        assert _rejects(KeyType.SMIME, build(ec_key), NOW).code == code

    def test_expiry_boundary(self, ec_key: ec.EllipticCurvePrivateKey) -> None:
        """A certificate is valid through its notAfter second and expired just after it."""
        text = _pem(_certificate(ec_key, starts=timedelta(days=-1), lasts=timedelta(days=1)))
        assert parse_key(KeyType.SMIME, text, ALICE, NOW).expires_at == NOW
        later = NOW + timedelta(seconds=1)
        assert _rejects(KeyType.SMIME, text, later).code == KeyProblem.EXPIRED_KEY

    def test_signing_only_algorithm(self) -> None:
        """An Ed25519 certificate cannot receive CMS-encrypted mail."""
        cert = _certificate(ed25519.Ed25519PrivateKey.generate())
        error = _rejects(KeyType.SMIME, _pem(cert), NOW)
        assert error.code == KeyProblem.NO_ENCRYPTION_KEY

    def test_pgp_key_uploaded_as_smime(self, pgp_texts: dict[str, str]) -> None:
        """An OpenPGP key offered as a certificate is not a certificate."""
        assert _rejects(KeyType.SMIME, pgp_texts["valid"], NOW).code == KeyProblem.INVALID_KEY


# --- both kinds --------------------------------------------------------------------------------


def _private_pems(key: ec.EllipticCurvePrivateKey) -> list[str]:
    formats = [
        serialization.PrivateFormat.PKCS8,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.PrivateFormat.OpenSSH,
    ]
    encoding = serialization.Encoding.PEM
    return [key.private_bytes(encoding, f, serialization.NoEncryption()).decode() for f in formats]


class TestEitherKind:
    """Size limits, private keys and garbage are refused the same way for both kinds."""

    @pytest.mark.parametrize("key_type", list(KeyType))
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("A" * (MAX_KEY_BYTES + 1), id="ascii"),
            pytest.param("é" * (MAX_KEY_BYTES // 2 + 1), id="counted-in-utf8-bytes"),
        ],
    )
    def test_oversize(self, key_type: KeyType, text: str) -> None:
        """Input over MAX_KEY_BYTES once UTF-8 encoded is refused before any parsing."""
        assert _rejects(key_type, text, NOW).code == KeyProblem.KEY_TOO_LARGE

    @pytest.mark.parametrize("key_type", list(KeyType))
    def test_at_the_size_limit_is_parsed(self, key_type: KeyType) -> None:
        """Input of exactly MAX_KEY_BYTES is parsed, and garbage is then invalid."""
        error = _rejects(key_type, "A" * MAX_KEY_BYTES, NOW)
        assert error.code == KeyProblem.INVALID_KEY

    @pytest.mark.parametrize("key_type", list(KeyType))
    def test_private_keys(
        self, key_type: KeyType, ec_key: ec.EllipticCurvePrivateKey, pgp_texts: dict[str, str]
    ) -> None:
        """PEM private keys of every format and OpenPGP secret keys are refused for either kind."""
        for text in [*_private_pems(ec_key), pgp_texts["secret"]]:
            assert _rejects(key_type, text, NOW).code == KeyProblem.PRIVATE_KEY

    @pytest.mark.parametrize("key_type", list(KeyType))
    @pytest.mark.parametrize("text", ["", "hello", "-----BEGIN CERTIFICATE-----\nnope\n"])
    def test_garbage(self, key_type: KeyType, text: str) -> None:
        """Text that is no key at all is invalid."""
        assert _rejects(key_type, text, NOW).code == KeyProblem.INVALID_KEY

    @settings(max_examples=150, deadline=None)
    @given(
        key_type=st.sampled_from(list(KeyType)),
        body=st.text(max_size=400),
        armor=st.sampled_from(["{}", "PGP PUBLIC KEY BLOCK", "CERTIFICATE"]),
    )
    def test_arbitrary_text(self, key_type: KeyType, body: str, armor: str) -> None:
        """Whatever is inside the armor, the only outcome is an InvalidKey."""
        text = (
            body if armor == "{}" else f"-----BEGIN {armor}-----\n\n{body}\n-----END {armor}-----\n"
        )
        with pytest.raises(InvalidKey):
            parse_key(key_type, text, ALICE, NOW)


class TestJson:
    """`ParsedKey.to_json` is the API schema."""

    def test_pgp_shape(self, pgp_texts: dict[str, str]) -> None:
        """Five fields, a `Z` creation time, null expiry and a list of addresses."""
        body = parse_key(KeyType.PGP, pgp_texts["valid"], ALICE, _pgp_now()).to_json()
        assert set(body) == {"type", "fingerprint", "created_at", "expires_at", "addresses"}
        assert body["type"] == "pgp"
        assert ISO_Z.match(str(body["created_at"]))
        assert body["expires_at"] is None
        assert body["addresses"] == [ALICE]

    def test_smime_shape(self, ec_key: ec.EllipticCurvePrivateKey) -> None:
        """S/MIME times render as UTC with a `Z`."""
        cert = _certificate(ec_key)
        body = parse_key(KeyType.SMIME, _pem(cert), ALICE, NOW).to_json()
        assert body == {
            "type": "smime",
            "fingerprint": cert.fingerprint(hashes.SHA256()).hex(),
            "created_at": "2026-01-14T12:00:00Z",
            "expires_at": "2027-01-14T12:00:00Z",
            "addresses": [ALICE],
        }
