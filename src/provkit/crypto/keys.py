"""EC P-256 keys in the encodings FCC and KCM use.

KCM stores private keys as SEC1 ``ECPrivateKey`` DER and public keys as
SubjectPublicKeyInfo DER (pelion-fcc.md §1.3); devices only support NIST P-256
(``KCM_SCHEME_EC_SECP256R1``). Every parse failure is a :class:`~provkit.errors.CryptoError`.
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.errors import CryptoError

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey
"""An EC private key object."""

PublicKey: TypeAlias = ec.EllipticCurvePublicKey
"""An EC public key object."""


class UnsupportedCurveError(CryptoError):
    """The key parses but is not on NIST P-256, the only curve devices support."""


def generate_p256() -> PrivateKey:
    """Generate a fresh NIST P-256 (secp256r1) private key."""
    return ec.generate_private_key(ec.SECP256R1())


def _is_pem(data: bytes) -> bool:
    return data.lstrip()[:10] == b"-----BEGIN"


def load_private_key(der_or_pem: bytes) -> PrivateKey:
    """Load an unencrypted EC private key (SEC1 or PKCS#8, DER or PEM).

    Raises:
        CryptoError: the bytes are not an unencrypted EC private key.
    """
    try:
        if _is_pem(der_or_pem):
            key = serialization.load_pem_private_key(der_or_pem, None)
        else:
            key = serialization.load_der_private_key(der_or_pem, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"not an unencrypted private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoError("the private key is not an EC key")
    return key


def load_public_key(der_or_pem: bytes) -> PublicKey:
    """Load an EC public key from SubjectPublicKeyInfo DER or PEM.

    Raises:
        CryptoError: the bytes are not an EC public key.
    """
    try:
        if _is_pem(der_or_pem):
            key = serialization.load_pem_public_key(der_or_pem)
        else:
            key = serialization.load_der_public_key(der_or_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"not a public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CryptoError("the public key is not an EC key")
    return key


def require_p256(key: PrivateKey | PublicKey) -> None:
    """Check that ``key`` is on P-256.

    Raises:
        UnsupportedCurveError: the key uses another curve.
    """
    if not isinstance(key.curve, ec.SECP256R1):
        raise UnsupportedCurveError(f"curve {key.curve.name} is not supported; only secp256r1 is")


def private_key_der(key: PrivateKey) -> bytes:
    """Return ``key`` as SEC1 ``ECPrivateKey`` DER, the form FCC stores."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """Return the public half of ``key`` as SubjectPublicKeyInfo DER."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def keys_match(priv: PrivateKey, pub: PublicKey) -> bool:
    """Return whether ``pub`` is the public half of ``priv``.

    Compared as encoded points, so keys loaded from different encodings still match.
    """
    point = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    try:
        return priv.public_key().public_bytes(*point) == pub.public_bytes(*point)
    except ValueError:
        return False
