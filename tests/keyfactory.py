"""Recipient keys for API tests: OpenPGP keys (pysequoia) and S/MIME certificates (cryptography)."""

from __future__ import annotations

import datetime as dt

import pysequoia
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def pgp_public_key(address: str) -> str:
    """An armored Cv25519 OpenPGP public key with one User ID for `address`."""
    return str(pysequoia.Tsk.generate(f"Test <{address}>").extract_certificate())


def pgp_secret_key(address: str) -> str:
    """An armored OpenPGP secret key (which the API must refuse)."""
    return str(pysequoia.Tsk.generate(f"Test <{address}>"))


def smime_certificate(address: str, days: int = 365) -> str:
    """A PEM S/MIME certificate (EC P-256) naming `address`, usable for key agreement."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def pem_private_key() -> str:
    """A PEM private key (which the API must refuse)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
