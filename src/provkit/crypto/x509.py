"""X.509 certificates: parsing, chain signatures and the attributes FCC checks.

Device verification (pelion-fcc.md §4) needs a certificate's CN and OU, whether it has
the clientAuth extended key usage, whether it is self-signed, its validity window and
whether its key matches a stored private key; KCM needs DER parsing and the signature
check between consecutive chain certificates (§1.5). Failures are
:class:`~provkit.errors.CryptoError`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.crypto.keys import PrivateKey, PublicKey, keys_match
from provkit.errors import CryptoError

Certificate: TypeAlias = x509.Certificate
"""An X.509 certificate object."""

_PEM_BLOCK: Final = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)

# mbedTLS subject short names (x509_create.c's table) -> OIDs.
_DN_OIDS: Final[dict[str, x509.ObjectIdentifier]] = {
    "CN": NameOID.COMMON_NAME,
    "commonName": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
    "countryName": NameOID.COUNTRY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "organizationName": NameOID.ORGANIZATION_NAME,
    "L": NameOID.LOCALITY_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "R": NameOID.EMAIL_ADDRESS,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "organizationalUnitName": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "stateOrProvinceName": NameOID.STATE_OR_PROVINCE_NAME,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "postalAddress": NameOID.POSTAL_ADDRESS,
    "postalCode": NameOID.POSTAL_CODE,
    "dnQualifier": NameOID.DN_QUALIFIER,
    "title": NameOID.TITLE,
    "SN": NameOID.SURNAME,
    "GN": NameOID.GIVEN_NAME,
    "initials": NameOID.INITIALS,
    "pseudonym": NameOID.PSEUDONYM,
    "generationQualifier": NameOID.GENERATION_QUALIFIER,
    "DC": NameOID.DOMAIN_COMPONENT,
}


def load_certificate(der_or_pem: bytes) -> Certificate:
    """Load one X.509 certificate from DER or PEM.

    Raises:
        CryptoError: the bytes are not a certificate.
    """
    try:
        if der_or_pem.lstrip()[:10] == b"-----BEGIN":
            return x509.load_pem_x509_certificate(der_or_pem)
        cert = x509.load_der_x509_certificate(der_or_pem)
        # Parsing is lazy in cryptography; touching the key and validity forces the
        # fields KCM and verification rely on to be decoded now, not at first use.
        cert.public_key()
        cert.not_valid_after_utc  # noqa: B018 - force decoding
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"not an X.509 certificate: {exc}") from exc
    return cert


def load_certificate_chain(pem_text: str | bytes) -> list[Certificate]:
    """Load every PEM certificate of a chain file, in file order (leaf first).

    Raises:
        CryptoError: no certificate found, or one block does not parse.
    """
    text = pem_text.decode("ascii", "replace") if isinstance(pem_text, bytes) else pem_text
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise CryptoError("no PEM certificate found")
    return [load_certificate(block.encode("ascii")) for block in blocks]


def certificate_der(cert: Certificate) -> bytes:
    """Return the DER encoding of ``cert``."""
    return cert.public_bytes(serialization.Encoding.DER)


def verify_signed_by(cert: Certificate, issuer: Certificate) -> None:
    """Check that ``issuer``'s public key made ``cert``'s signature.

    Only the signature is checked (as KCM does for chains), not names or validity.

    Raises:
        CryptoError: the signature does not verify or uses an unsupported algorithm.
    """
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CryptoError("issuer key is not an EC key")
    algorithm = cert.signature_hash_algorithm
    if algorithm is None:
        raise CryptoError("certificate signature has no hash algorithm")
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    except InvalidSignature as exc:
        raise CryptoError("certificate signature does not verify with the issuer's key") from exc


def is_self_signed(cert: Certificate) -> bool:
    """Return whether ``cert`` names itself as issuer and verifies with its own key."""
    if cert.issuer != cert.subject:
        return False
    try:
        verify_signed_by(cert, cert)
    except CryptoError:
        return False
    return True


def _attribute(cert: Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def common_name(cert: Certificate) -> str | None:
    """Return the subject CN, or ``None`` if there is none."""
    return _attribute(cert, NameOID.COMMON_NAME)


def organizational_unit(cert: Certificate) -> str | None:
    """Return the subject OU, or ``None`` if there is none."""
    return _attribute(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)


def has_client_auth(cert: Certificate) -> bool:
    """Return whether the extended key usage includes id-kp-clientAuth."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in eku


def sha256_fingerprint(cert: Certificate) -> bytes:
    """Return the SHA-256 digest of the certificate's DER encoding."""
    return cert.fingerprint(hashes.SHA256())


def validity(cert: Certificate) -> tuple[int, int]:
    """Return ``(notBefore, notAfter)`` as Unix seconds."""
    return int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())


def subject_text(cert: Certificate) -> str:
    """Return the subject in RFC 4514 form, for display."""
    return cert.subject.rfc4514_string()


def not_valid_after(cert: Certificate) -> dt.datetime:
    """Return the end of the validity window (UTC)."""
    return cert.not_valid_after_utc


def certificate_public_key(cert: Certificate) -> PublicKey:
    """Return the certificate's EC public key.

    Raises:
        CryptoError: the key is not an EC key.
    """
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CryptoError("certificate key is not an EC key")
    return key


def matches_private_key(cert: Certificate, key: PrivateKey) -> bool:
    """Return whether ``cert`` certifies the public half of ``key``."""
    public = cert.public_key()
    return isinstance(public, ec.EllipticCurvePublicKey) and keys_match(key, public)


def _split_dn(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            # mbedTLS lets a backslash escape the next character (e.g. a comma in O=).
            escaped = next(chars, None)
            if escaped is None:
                raise CryptoError("subject ends with a lone backslash")
            current.append(escaped)
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_dn(mbedtls_subject: str) -> x509.Name:
    r"""Parse an mbedTLS-format subject such as ``"C=GB,O=Acme,CN=dev-1"``.

    Attributes keep their order; ``\\,`` escapes a comma inside a value.

    Raises:
        CryptoError: empty subject, an unknown attribute, a missing ``=`` or a value the
            attribute does not allow (e.g. a three-letter country).
    """
    if not mbedtls_subject.strip():
        raise CryptoError("subject is empty")
    attributes = []
    for part in _split_dn(mbedtls_subject):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not value:
            raise CryptoError(f"subject component {part!r} is not KEY=VALUE")
        oid = _DN_OIDS.get(key)
        if oid is None:
            raise CryptoError(f"subject attribute {key!r} is not supported")
        try:
            attributes.append(x509.NameAttribute(oid, value))
        except ValueError as exc:
            raise CryptoError(f"subject attribute {key}={value!r}: {exc}") from exc
    return x509.Name(attributes)
