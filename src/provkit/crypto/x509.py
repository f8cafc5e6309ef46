"""X.509 certificates: parsing, encoding, chain signatures and the attributes FCC and FCU check.

Device verification (``fcc_verification.c``, docs/device.md) needs a certificate's CN and
OU, whether it has the clientAuth extended key usage, whether it is self-signed, its
validity window and whether its key matches a stored private key; KCM needs DER parsing
and the signature check between consecutive chain certificates (``kcm_cert_chain_add_next``
in ``key_config_manager.h``). The factory reads the DER or PEM files FCU users hand in and
answers the FCU "supported crypto scheme" question (EC P-256 with ecdsa-with-SHA256).
Failures are :class:`~provkit.errors.CryptoError`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import warnings
from collections.abc import Sequence
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from provkit.crypto.keys import PrivateKey, PublicKey, is_p256, is_pem, keys_match
from provkit.crypto.names import SUBJECT_FIELDS, first_value
from provkit.errors import CryptoError

Certificate: TypeAlias = x509.Certificate
"""An X.509 certificate object."""

_PEM_BLOCK: Final = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)

_EKU_NAMES: Final[dict[str, x509.ObjectIdentifier]] = {
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
}


def load_certificate(der_or_pem: bytes) -> Certificate:
    """Load one X.509 certificate from DER or PEM.

    Raises:
        CryptoError: the bytes are not a certificate.
    """
    try:
        # A zero or negative serial number only draws a deprecation warning from
        # cryptography; mbedTLS accepts it too. Silencing it keeps the outcome the same
        # whatever the warning filters (tests turn warnings into errors).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            if is_pem(der_or_pem):
                return x509.load_pem_x509_certificate(der_or_pem)
            cert = x509.load_der_x509_certificate(der_or_pem)
        # Parsing is lazy in cryptography; touching the key and validity forces the
        # fields KCM and verification rely on to be decoded now, not at first use.
        cert.public_key()
        cert.not_valid_after_utc  # noqa: B018 - force decoding
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
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


def load_certificates(data: bytes) -> list[Certificate]:
    """Load one DER certificate, or every PEM certificate of ``data`` in file order.

    Raises:
        CryptoError: the data holds no parseable X.509 certificate.
    """
    if is_pem(data):
        return load_certificate_chain(data)
    return [load_certificate(data)]


def certificate_der(cert: Certificate) -> bytes:
    """Return the DER encoding of ``cert``."""
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_pem(certs: Sequence[Certificate]) -> bytes:
    """Return the PEM encoding of ``certs``, concatenated in order."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def verify_signed_by(cert: Certificate, issuer: Certificate) -> None:
    """Check that ``issuer``'s public key made ``cert``'s signature.

    Only the signature is checked (as KCM does for chains), not names or validity.

    Raises:
        CryptoError: the signature does not verify or uses an unsupported algorithm.
    """
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CryptoError("issuer key is not an EC key")
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise CryptoError(f"certificate signature algorithm is not supported: {exc}") from exc
    if algorithm is None:
        raise CryptoError("certificate signature has no hash algorithm")
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    except InvalidSignature as exc:
        raise CryptoError("certificate signature does not verify with the issuer's key") from exc


def signed_by(cert: Certificate, issuer: Certificate) -> bool:
    """Return whether ``cert`` names ``issuer`` as its issuer and ``issuer``'s key verifies it."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_fields_decode(cert: Certificate) -> None:
    """Decode every field device verification reads, so a broken one fails now as a parse error.

    cryptography decodes names, extensions and the signature algorithm lazily; KCM must
    refuse such a certificate when it is stored (``Certificate parse failed:``), as
    mbedTLS does, rather than fail later in the middle of verification.

    Raises:
        CryptoError: the subject, issuer, extensions or signature algorithm do not decode.
    """
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        cert.extensions  # noqa: B018 - force decoding
        cert.signature_hash_algorithm  # noqa: B018 - force decoding
    except (ValueError, TypeError, UnsupportedAlgorithm, KeyError) as exc:
        # cryptography 43 (which manifest-tool pins) raises KeyError for a name attribute of
        # an unknown ASN.1 string type where later releases raise ValueError.
        raise CryptoError(f"not an X.509 certificate: {exc}") from exc


def is_self_signed(cert: Certificate) -> bool:
    """Return whether ``cert`` names itself as issuer and verifies with its own key."""
    if cert.issuer != cert.subject:
        return False
    try:
        verify_signed_by(cert, cert)
    except CryptoError:
        return False
    return True


def is_ca_certificate(cert: Certificate) -> bool:
    """Return whether ``cert`` has BasicConstraints CA=true."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def supported_scheme(cert: Certificate) -> bool:
    """Return whether ``cert`` uses the scheme devices support: P-256 key, ecdsa-with-SHA256."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    return is_p256(key) and cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256


def common_name(cert: Certificate) -> str | None:
    """Return the subject CN, or ``None`` if there is none."""
    return first_value(cert.subject, NameOID.COMMON_NAME)


def organizational_unit(cert: Certificate) -> str | None:
    """Return the subject OU, or ``None`` if there is none."""
    return first_value(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)


def subject_attribute(cert: Certificate, field: str) -> str | None:
    """Return the first subject attribute ``field`` (an fcu.yml subject key) of ``cert``, if present."""
    return first_value(cert.subject, SUBJECT_FIELDS[field])


def has_extended_key_usage(cert: Certificate, usage: str) -> bool:
    """Return whether ``cert`` lists ``usage`` (``"clientAuth"`` or ``"codeSigning"``) in its EKU."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return _EKU_NAMES[usage] in eku


def has_client_auth(cert: Certificate) -> bool:
    """Return whether the extended key usage includes id-kp-clientAuth."""
    return has_extended_key_usage(cert, "clientAuth")


def der_fingerprint(der: bytes) -> bytes:
    """Return the SHA-256 fingerprint of a DER certificate (the digest of its bytes)."""
    return hashlib.sha256(der).digest()


def sha256_fingerprint(cert: Certificate) -> bytes:
    """Return the SHA-256 fingerprint of ``cert``."""
    return der_fingerprint(certificate_der(cert))


def enrollment_id(cert_der: bytes) -> str:
    """Return the first-to-claim enrollment id of a bootstrap device certificate.

    The id is ``A-`` followed by the 32 bytes of the certificate's SHA-256 fingerprint as
    colon-separated upper-case hex (97 characters), as ft_demo prints it.
    """
    return enrollment_id_of(der_fingerprint(cert_der))


def enrollment_id_of(fingerprint: bytes) -> str:
    """The enrollment id of a certificate whose SHA-256 fingerprint is known (see :func:`enrollment_id`)."""
    return "A-" + fingerprint.hex(":").upper()


def validity(cert: Certificate) -> tuple[int, int]:
    """Return ``(notBefore, notAfter)`` as Unix seconds."""
    return int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())


def subject_text(cert: Certificate) -> str:
    """Return the subject in RFC 4514 form, for display."""
    return cert.subject.rfc4514_string()


def not_valid_before(cert: Certificate) -> dt.datetime:
    """Return the start of the validity window (aware, UTC)."""
    return cert.not_valid_before_utc


def not_valid_after(cert: Certificate) -> dt.datetime:
    """Return the end of the validity window (aware, UTC)."""
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


def public_key_description(cert: Certificate) -> str:
    """Name the certificate's key for a message: ``"EC secp384r1"``, ``"RSA 2048-bit"``, ``"Ed25519"``."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unsupported"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    size = getattr(key, "key_size", None)
    kind = type(key).__name__.removeprefix("_").removesuffix("PublicKey")
    return f"{kind} {size}-bit" if isinstance(size, int) else kind


def matches_private_key(cert: Certificate, key: PrivateKey) -> bool:
    """Return whether ``cert`` certifies the public half of ``key``."""
    public = cert.public_key()
    return isinstance(public, ec.EllipticCurvePublicKey) and keys_match(key, public)
