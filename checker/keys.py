"""Recipient keys: check an uploaded OpenPGP key or S/MIME certificate before encrypting to it."""

# OpenPGP through pysequoia: Sequoia's policy-checked parser in a typed binary wheel that raises no
# warnings; PGPy is unmaintained (last release 2022) and warns under newer cryptography releases.

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

import pysequoia
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x448, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pysequoia.packet import Packet, PacketPile, SignatureType, Tag

from checker.models import iso

MAX_KEY_BYTES = 64 * 1024
_EPOCH = datetime.min.replace(tzinfo=UTC)
_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

# Any PEM private key (PKCS#8, "RSA"/"EC"/"OPENSSH", encrypted) and the OpenPGP secret key armor.
_PRIVATE_ARMOR = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PGP_PUBLIC_ARMOR = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
# Public key types that CMS can encrypt to (RFC 8550/8551: key transport or key agreement).
_CMS_RECIPIENT_KEYS = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    x25519.X25519PublicKey,
    x448.X448PublicKey,
)


class KeyType(StrEnum):
    """How mail to the recipient gets encrypted."""

    PGP = "pgp"
    SMIME = "smime"


class KeyProblem(StrEnum):
    """Why an uploaded key was refused; the `code` of `InvalidKey`."""

    KEY_TOO_LARGE = "key_too_large"
    INVALID_KEY = "invalid_key"
    PRIVATE_KEY = "private_key"
    EXPIRED_KEY = "expired_key"
    REVOKED_KEY = "revoked_key"
    ADDRESS_MISMATCH = "address_mismatch"
    NO_ENCRYPTION_KEY = "no_encryption_key"


class InvalidKey(ValueError):
    """An uploaded key we will not encrypt to; `code` and `message` are safe to show a client."""

    def __init__(self, code: KeyProblem, message: str) -> None:
        super().__init__(message)
        self.code: str = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A recipient key that passed every check, reduced to what we store and show."""

    type: KeyType
    fingerprint: str
    created_at: datetime | None
    expires_at: datetime | None
    addresses: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The API form, with ISO 8601 UTC times ending in `Z`."""
        return {
            "type": self.type.value,
            "fingerprint": self.fingerprint,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "addresses": list(self.addresses),
        }


def parse_key(key_type: KeyType, text: str, address: str, now: datetime) -> ParsedKey:
    """Parse and validate an armored OpenPGP public key or a PEM S/MIME certificate for `address`.

    Checks run in a fixed order, and the first failure raises `InvalidKey`: size, private key
    material, parsing, revocation, validity at `now`, encryption capability, then the address.
    """
    data = text.encode("utf-8", errors="replace")
    if len(data) > MAX_KEY_BYTES:
        raise InvalidKey(KeyProblem.KEY_TOO_LARGE, f"the key is larger than {MAX_KEY_BYTES} bytes")
    if _PRIVATE_ARMOR.search(text):
        raise _private_key()
    parsed = _parse_pgp(data, now) if key_type == KeyType.PGP else _parse_smime(data, now)
    if _canonical(address) not in {_canonical(a) for a in parsed.addresses}:
        raise InvalidKey(KeyProblem.ADDRESS_MISMATCH, "the key is not issued for this address")
    return parsed


def _canonical(address: str) -> str:
    """Compare addresses by `Recipient.key` (A-label domain), whatever form each side uses."""
    from checker.recipients import parse_recipient  # a leaf module; imported late to stay so

    recipient = parse_recipient(address)
    return recipient.key if recipient.address else address.lower()


def _private_key() -> InvalidKey:
    return InvalidKey(KeyProblem.PRIVATE_KEY, "this is a private key; upload the public key only")


@dataclass(frozen=True, slots=True)
class _Component:
    """The primary key or one subkey, as its newest self-signature at `now` describes it."""

    can_encrypt: bool
    revoked: bool
    expires_at: datetime | None


def _parse_pgp(data: bytes, now: datetime) -> ParsedKey:
    if _PGP_PUBLIC_ARMOR not in data:
        raise InvalidKey(KeyProblem.INVALID_KEY, "expected an ASCII-armored OpenPGP public key")
    cert = _load_cert(data)
    if cert.is_revoked:
        raise InvalidKey(KeyProblem.REVOKED_KEY, "the OpenPGP key has been revoked")
    expires_at = cert.expiration
    if _expired(expires_at, now):
        raise InvalidKey(KeyProblem.EXPIRED_KEY, "the OpenPGP key has expired")
    packets = list(PacketPile.from_bytes(bytes(cert)))
    components = _components(packets, cert.fingerprint, now)
    expires_at = _earliest(expires_at, _encryption_expiry(components, now))
    _probe_encryption(cert)
    return ParsedKey(
        type=KeyType.PGP,
        fingerprint=cert.fingerprint.lower(),
        created_at=packets[0].key_created,
        expires_at=expires_at,
        addresses=_pgp_addresses(cert, packets),
    )


def _load_cert(data: bytes) -> pysequoia.Cert:
    # pysequoia reports every malformed input as RuntimeError; nothing else is caught here.
    try:
        first_block = list(PacketPile.from_bytes(data))
        certs = pysequoia.Cert.split_bytes(data)
    except RuntimeError:
        raise InvalidKey(KeyProblem.INVALID_KEY, "not a readable OpenPGP key") from None
    if any(p.tag in (Tag.SecretKey, Tag.SecretSubkey) for p in first_block):
        raise _private_key()
    if len(certs) != 1:
        raise InvalidKey(
            KeyProblem.INVALID_KEY, f"expected exactly one OpenPGP key, found {len(certs)}"
        )
    return certs[0]


def _components(packets: list[Packet], fingerprint: str, now: datetime) -> list[_Component]:
    """Group the self-signatures of the canonical cert under the primary key and each subkey."""
    groups: list[tuple[Packet, list[Packet]]] = []
    for packet in packets:
        if packet.tag in (Tag.PublicKey, Tag.PublicSubkey):
            groups.append((packet, []))
        elif (
            packet.tag == Tag.Signature and groups and _is_self_signature(packet, fingerprint, now)
        ):
            groups[-1][1].append(packet)
    return [_component(key, signatures) for key, signatures in groups]


def _is_self_signature(signature: Packet, fingerprint: str, now: datetime) -> bool:
    issuer = signature.issuer_fingerprint
    created = signature.signature_created
    return (issuer is None or issuer == fingerprint) and (created is None or created <= now)


def _component(key: Packet, signatures: list[Packet]) -> _Component:
    revoked = any(s.signature_type == SignatureType.SubkeyRevocation for s in signatures)
    flagged = [s for s in signatures if s.key_flags is not None]
    newest = max(flagged, key=lambda s: s.signature_created or _EPOCH, default=None)
    flags = newest.key_flags if newest is not None else None
    if newest is None or flags is None:
        return _Component(can_encrypt=False, revoked=revoked, expires_at=None)
    period, created = newest.key_validity_period, key.key_created
    return _Component(
        can_encrypt=flags.transport_encryption or flags.storage_encryption,
        revoked=revoked,
        expires_at=created + period if period and created is not None else None,
    )


def _encryption_expiry(components: list[_Component], now: datetime) -> datetime | None:
    """When the longest-lived usable encryption (sub)key expires; raise if there is none."""
    capable = [c for c in components if c.can_encrypt]
    if not capable:
        raise InvalidKey(KeyProblem.NO_ENCRYPTION_KEY, "the OpenPGP key has no encryption subkey")
    usable = [c for c in capable if not c.revoked and not _expired(c.expires_at, now)]
    if not usable:
        if all(c.revoked for c in capable):
            raise InvalidKey(KeyProblem.REVOKED_KEY, "the encryption subkey has been revoked")
        raise InvalidKey(KeyProblem.EXPIRED_KEY, "the encryption subkey has expired")
    ends = [c.expires_at for c in usable]
    return None if None in ends else max(e for e in ends if e is not None)


def _probe_encryption(cert: pysequoia.Cert) -> None:
    # pysequoia verifies binding signatures only inside its own operations, so a trial encryption
    # (in memory, at Sequoia's current time) lets its standard policy have the last word on
    # forged bindings and weak algorithms that the packet view above cannot see.
    try:
        pysequoia.encrypt(b"", [cert])
    except RuntimeError:
        raise InvalidKey(
            KeyProblem.NO_ENCRYPTION_KEY, "no encryption subkey is usable under the OpenPGP policy"
        ) from None


def _pgp_addresses(cert: pysequoia.Cert, packets: list[Packet]) -> tuple[str, ...]:
    valid_uids = {str(uid) for uid in cert.user_ids}  # the non-revoked, validly bound User IDs
    emails = (
        p.user_id_email
        for p in packets
        if p.tag == Tag.UserID and p.user_id in valid_uids and p.user_id_email
    )
    return _unique_lower(emails)


def _parse_smime(data: bytes, now: datetime) -> ParsedKey:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InvalidKey(
            KeyProblem.INVALID_KEY, "expected a PEM-encoded X.509 certificate"
        ) from None
    if len(certs) != 1:
        raise InvalidKey(
            KeyProblem.INVALID_KEY, f"expected exactly one certificate, found {len(certs)}"
        )
    cert = certs[0]
    if now < cert.not_valid_before_utc:
        raise InvalidKey(KeyProblem.EXPIRED_KEY, "the certificate is not valid yet")
    if now > cert.not_valid_after_utc:
        raise InvalidKey(KeyProblem.EXPIRED_KEY, "the certificate has expired")
    try:
        extensions = cert.extensions
        subject = cert.subject
    except (ValueError, x509.DuplicateExtension):
        raise InvalidKey(KeyProblem.INVALID_KEY, "the certificate is malformed") from None
    _check_smime_encryption(cert, extensions)
    return ParsedKey(
        type=KeyType.SMIME,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        created_at=cert.not_valid_before_utc,
        expires_at=cert.not_valid_after_utc,
        addresses=_smime_addresses(subject, extensions),
    )


def _check_smime_encryption(cert: x509.Certificate, extensions: x509.Extensions) -> None:
    try:
        public_key = cert.public_key()
    except UnsupportedAlgorithm:
        public_key = None
    except ValueError:  # e.g. an EC point that is not on its curve
        raise InvalidKey(
            KeyProblem.INVALID_KEY, "the certificate's public key is malformed"
        ) from None
    if not isinstance(public_key, _CMS_RECIPIENT_KEYS):
        raise InvalidKey(KeyProblem.NO_ENCRYPTION_KEY, "the certificate's key cannot encrypt")
    usage = _extension(extensions, x509.KeyUsage)
    if usage is not None and not (usage.key_encipherment or usage.key_agreement):
        raise InvalidKey(
            KeyProblem.NO_ENCRYPTION_KEY, "the certificate's key usage does not allow encryption"
        )
    purposes = _extension(extensions, x509.ExtendedKeyUsage)
    allowed = (ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
    if purposes is not None and not any(oid in purposes for oid in allowed):
        raise InvalidKey(
            KeyProblem.NO_ENCRYPTION_KEY, "the certificate is not issued for e-mail protection"
        )


def _smime_addresses(subject: x509.Name, extensions: x509.Extensions) -> tuple[str, ...]:
    found = [
        a.value
        for a in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
        if isinstance(a.value, str)
    ]
    alt_names = _extension(extensions, x509.SubjectAlternativeName)
    if alt_names is not None:
        found.extend(alt_names.get_values_for_type(x509.RFC822Name))
    return _unique_lower(found)


def _extension(extensions: x509.Extensions, kind: type[_Ext]) -> _Ext | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    candidates = [t for t in (first, second) if t is not None]
    return min(candidates) if candidates else None


def _unique_lower(addresses: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip().lower() for a in addresses if a))
