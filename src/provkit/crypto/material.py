"""Reading factory input material: certificates, chains and keys given as DER or PEM files.

Factory-side complement of :mod:`provkit.crypto.x509` / :mod:`provkit.crypto.keys`
(whose loaders it reuses): it accepts what FCU users hand in (DER, or PEM possibly
holding a chain, leaf first), answers the FCU "supported crypto scheme" question (EC P-256
with ecdsa-with-SHA256) and computes the first-to-claim enrollment id.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import SignatureAlgorithmOID

from provkit.crypto.issue import Certificate
from provkit.crypto.keys import (
    generate_p256,
    load_private_key,
    load_public_key,
    private_key_der,
    public_key_der,
)
from provkit.crypto.x509 import certificate_der, is_self_signed, load_certificate, load_certificate_chain

__all__ = [
    "certificate_der",
    "enrollment_id",
    "generate_p256",
    "is_p256",
    "is_pem",
    "is_self_signed",
    "load_certificates",
    "load_private_key",
    "load_public_key",
    "private_key_der",
    "public_key_der",
    "supported_scheme",
]


def is_pem(data: bytes) -> bool:
    """Return whether ``data`` looks like PEM text rather than DER."""
    return data.lstrip().startswith(b"-----BEGIN")


def load_certificates(data: bytes) -> list[Certificate]:
    """Load one DER certificate, or every PEM certificate of ``data`` in file order.

    Raises:
        CryptoError: the data holds no parseable X.509 certificate.
    """
    if is_pem(data):
        return load_certificate_chain(data)
    return [load_certificate(data)]


def is_p256(key: object) -> bool:
    """Return whether ``key`` is a P-256 private or public key."""
    return isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    )


def supported_scheme(cert: Certificate) -> bool:
    """Return whether ``cert`` uses the scheme devices support: P-256 key, ecdsa-with-SHA256."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    return is_p256(key) and cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256


def enrollment_id(cert_der: bytes) -> str:
    """Return the first-to-claim enrollment id of a bootstrap device certificate.

    The id is ``A-`` followed by the 32 bytes of the certificate's SHA-256 fingerprint as
    colon-separated upper-case hex (97 characters), as ft_demo prints it.
    """
    digest = hashlib.sha256(cert_der).hexdigest().upper()
    return "A-" + ":".join(digest[i : i + 2] for i in range(0, 64, 2))
