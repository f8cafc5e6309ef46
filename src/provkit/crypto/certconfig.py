"""Keys and self-signed certificates as a LwM2M cert-config asks for them (Anjay's ``cert_gen.py``).

Unlike the factory CA (P-256 only, see :mod:`provkit.crypto.issue`), a cert-config may ask
for an RSA key of any length, any of the NIST curves, a SHA-2 digest and an explicit
serial. Curves come from an explicit table rather than ``cryptography``'s private one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provkit.crypto.issue import Digest, SigningKey, sign_certificate
from provkit.crypto.keys import load_any_private_key
from provkit.crypto.names import Name, name_attribute
from provkit.crypto.x509 import certificate_der
from provkit.errors import CryptoError

_CURVES: Final[dict[str, type[ec.EllipticCurve]]] = {
    "secp256r1": ec.SECP256R1,
    "prime256v1": ec.SECP256R1,
    "p-256": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "p-384": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "p-521": ec.SECP521R1,
}
CURVE_NAMES: Final = tuple(_CURVES)
"""The ``ellipticCurve`` names a cert-config may use (lower case)."""

_DIGESTS: Final[dict[str, type[Digest]]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
DIGEST_NAMES: Final = tuple(_DIGESTS)
"""The ``digest`` names a cert-config may use (lower case)."""

_SUBJECT: Final[dict[str, x509.ObjectIdentifier]] = {
    "countryName": NameOID.COUNTRY_NAME,
    "stateOrProvinceName": NameOID.STATE_OR_PROVINCE_NAME,
    "localityName": NameOID.LOCALITY_NAME,
    "organizationName": NameOID.ORGANIZATION_NAME,
    "organizationUnitName": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "emailAddress": NameOID.EMAIL_ADDRESS,
}
SUBJECT_KEYS: Final = tuple(_SUBJECT)
"""The cert-config subject keys, in the order they appear in the DN (``commonName`` last)."""


def is_p256_curve(curve: str) -> bool:
    """Return whether the cert-config curve name ``curve`` means NIST P-256."""
    return _CURVES[curve] is ec.SECP256R1


def generate_key(curve: str, rsa_key_len: int | None = None) -> SigningKey:
    """Generate an RSA key of ``rsa_key_len`` bits when given, else an EC key on ``curve``."""
    if rsa_key_len is not None:
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_key_len)
    return ec.generate_private_key(_CURVES[curve]())


def subject_name(pairs: Iterable[tuple[str, str]], common_name: str) -> Name:
    """Return the name of cert-config subject ``(key, value)`` pairs followed by the CN.

    Raises:
        CryptoError: a value is not allowed in its attribute (e.g. a 3-letter country).
    """
    attributes = [name_attribute(_SUBJECT[key], value, key) for key, value in pairs]
    attributes.append(name_attribute(NameOID.COMMON_NAME, common_name, "commonName"))
    return x509.Name(attributes)


def self_signed_certificate(
    key: SigningKey, name: Name, *, serial: int, not_before: dt.datetime, not_after: dt.datetime, digest: str
) -> bytes:
    """Return a DER certificate for ``key`` signed by itself (issuer = subject = ``name``), no extensions."""
    cert = sign_certificate(
        subject=name,
        issuer=name,
        public_key=key.public_key(),
        signing_key=key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        digest=_DIGESTS[digest](),
    )
    return certificate_der(cert)


def private_key_pkcs8(key: SigningKey) -> bytes:
    """Return ``key`` as unencrypted PKCS#8 DER, the form the Security object takes."""
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def normalize_private_key(der_or_pem: bytes) -> bytes:
    """Return an unencrypted EC or RSA private key (DER or PEM, PKCS#8/SEC1/PKCS#1) as PKCS#8 DER.

    Raises:
        CryptoError: not an unencrypted private key, or neither EC nor RSA.
    """
    key = load_any_private_key(der_or_pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CryptoError("only EC and RSA private keys are supported")
    return private_key_pkcs8(key)


def key_matches_certificate(key_der_or_pem: bytes, cert: x509.Certificate) -> bool:
    """Return whether ``cert`` certifies the public half of the EC or RSA private key.

    Raises:
        CryptoError: the key bytes are not an unencrypted private key.
    """
    key = load_any_private_key(key_der_or_pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return False
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
