"""EC P-256 keys in the encodings FCC, KCM and the factory use.

KCM stores private keys as SEC1 ``ECPrivateKey`` DER and public keys as
SubjectPublicKeyInfo DER (docs/device.md, "Keys, certificates, chains"); devices only
support NIST P-256 (``KCM_SCHEME_EC_SECP256R1``). The factory keeps its CA key as
(possibly encrypted) PKCS#8 PEM. Every parse failure is a :class:`~provkit.errors.CryptoError`.
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


def is_pem(data: bytes) -> bool:
    """Return whether ``data`` looks like PEM text rather than DER."""
    return data.lstrip()[:10] == b"-----BEGIN"


def load_any_private_key(der_or_pem: bytes, passphrase: bytes | None = None) -> object:
    """Load a private key of any type (DER or PEM, PKCS#8, SEC1 or PKCS#1).

    Args:
        der_or_pem: the encoded key.
        passphrase: the password of an encrypted key, ``None`` for an unencrypted one.

    Raises:
        CryptoError: the bytes are not a key, or the passphrase is wrong or missing.
    """
    try:
        if is_pem(der_or_pem):
            return serialization.load_pem_private_key(der_or_pem, passphrase)
        return serialization.load_der_private_key(der_or_pem, passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        what = "private key" if passphrase else "unencrypted private key"
        raise CryptoError(f"not an {what}: {exc}") from exc


def load_private_key(der_or_pem: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Load an EC private key (SEC1 or PKCS#8, DER or PEM, encrypted when ``passphrase`` is given).

    Raises:
        CryptoError: the bytes are not an EC private key, or the passphrase is wrong or missing.
    """
    key = load_any_private_key(der_or_pem, passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoError("the private key is not an EC key")
    return key


def load_public_key(der_or_pem: bytes) -> PublicKey:
    """Load an EC public key from SubjectPublicKeyInfo DER or PEM.

    Raises:
        CryptoError: the bytes are not an EC public key.
    """
    try:
        if is_pem(der_or_pem):
            key = serialization.load_pem_public_key(der_or_pem)
        else:
            key = serialization.load_der_public_key(der_or_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"not a public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CryptoError("the public key is not an EC key")
    return key


def is_p256(key: object) -> bool:
    """Return whether ``key`` is a P-256 private or public key."""
    return isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    )


def require_p256(key: object) -> None:
    """Check that ``key`` is an EC key on P-256.

    Raises:
        CryptoError: ``key`` is not an EC key.
        UnsupportedCurveError: the key uses another curve.
    """
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        raise CryptoError("the key must be an EC P-256 (secp256r1) key")
    if not isinstance(key.curve, ec.SECP256R1):
        raise UnsupportedCurveError(f"curve {key.curve.name} is not supported; only secp256r1 is")


def private_key_der(key: PrivateKey) -> bytes:
    """Return ``key`` as SEC1 ``ECPrivateKey`` DER, the form FCC stores."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """Return ``key`` as PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """Return the public half of ``key`` as SubjectPublicKeyInfo DER."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    """Return the public half of ``key`` as SubjectPublicKeyInfo PEM."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def keys_match(left: PrivateKey | PublicKey, right: PrivateKey | PublicKey) -> bool:
    """Return whether two keys (private or public) share one public key.

    Compared as SubjectPublicKeyInfo DER, which names the curve and is the same whatever
    encoding the keys were loaded from.
    """
    return public_key_der(left) == public_key_der(right)
