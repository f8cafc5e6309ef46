"""PKCS#10 certificate signing requests: made on the device for ``CsrReqs``, by the factory for its CA.

The bitmasks are FCC's (``fcc_bundle_csr_utils.c`` in PelionIoT/mbed-cloud-client): key
usage 1 digitalSignature, 2 nonRepudiation, 4 keyCertSign, 8 keyAgreement; extended key
usage 1 any, 2 serverAuth, 4 clientAuth, 8 codeSigning, 16 emailProtection,
256 timeStamping, 512 OCSPSigning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from provkit.crypto.extensions import Extension, basic_constraints
from provkit.crypto.extensions import key_usage as key_usage_extension
from provkit.crypto.keys import PrivateKey, PublicKey, is_pem, require_p256
from provkit.crypto.mbedtls_csr import (
    drop_null_signature_parameter,
    with_subject,
)
from provkit.crypto.mbedtls_x509 import subject_der
from provkit.crypto.names import Name, build_name, subject_fields
from provkit.crypto.signer import CaSigner, as_signer
from provkit.errors import CryptoError

KU_DIGITAL_SIGNATURE: Final = 1
KU_NON_REPUDIATION: Final = 2
KU_KEY_CERT_SIGN: Final = 4
KU_KEY_AGREEMENT: Final = 8
_KU_ALL: Final = 15

_EKU_BITS: Final[dict[int, ObjectIdentifier]] = {
    1: ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    2: ExtendedKeyUsageOID.SERVER_AUTH,
    4: ExtendedKeyUsageOID.CLIENT_AUTH,
    8: ExtendedKeyUsageOID.CODE_SIGNING,
    16: ExtendedKeyUsageOID.EMAIL_PROTECTION,
    256: ExtendedKeyUsageOID.TIME_STAMPING,
    512: ExtendedKeyUsageOID.OCSP_SIGNING,
}
_EKU_ALL: Final = sum(_EKU_BITS)


def _key_usage(bits: int) -> x509.KeyUsage:
    if bits & ~_KU_ALL or bits == 0:
        raise CryptoError(f"key usage bitmask {bits} has unknown or no bits")
    return key_usage_extension(
        digital_signature=bool(bits & KU_DIGITAL_SIGNATURE),
        non_repudiation=bool(bits & KU_NON_REPUDIATION),
        key_agreement=bool(bits & KU_KEY_AGREEMENT),
        key_cert_sign=bool(bits & KU_KEY_CERT_SIGN),
    )


def _ext_key_usage(bits: int) -> x509.ExtendedKeyUsage:
    if bits & ~_EKU_ALL or bits == 0:
        raise CryptoError(f"extended key usage bitmask {bits} has unknown or no bits")
    return x509.ExtendedKeyUsage([oid for bit, oid in _EKU_BITS.items() if bits & bit])


def _sign(key: PrivateKey, name: Name, extensions: Iterable[Extension]) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def build_csr(
    key: PrivateKey,
    subject: str | bytes,
    key_usage: int | None = None,
    ext_key_usage: int | None = None,
) -> bytes:
    """Build a DER PKCS#10 request signed with ``key`` (ecdsa-with-SHA256), as FCC's Mbed TLS does.

    The subject is read and written by Mbed TLS's rules
    (:func:`provkit.crypto.mbedtls_x509.subject_der`), both extensions are non-critical and
    the outer signature algorithm carries the explicit NULL parameter of Mbed TLS up to
    2.28.4 (:mod:`provkit.crypto.mbedtls_csr`), so a line tested against a virtual device
    meets the CSRs real devices send.

    Args:
        key: the device's freshly generated private key.
        subject: Mbed TLS-format subject, e.g. ``"C=GB,O=Acme,CN=dev-1"`` (text, or the bytes
            the device received).
        key_usage: FCC ``KU`` bitmask, or ``None`` for no KeyUsage extension.
        ext_key_usage: FCC ``EKU`` bitmask, or ``None`` for no ExtendedKeyUsage extension.

    Raises:
        CryptoError: the subject or a bitmask is invalid.
    """
    extensions: list[Extension] = []
    if key_usage is not None:
        # mbedtls_x509write_csr_set_key_usage writes KeyUsage non-critical.
        extensions.append((_key_usage(key_usage), False))
    if ext_key_usage is not None:
        extensions.append((_ext_key_usage(ext_key_usage), False))
    raw = subject.encode("utf-8", "surrogateescape") if isinstance(subject, str) else subject
    name = subject_der(raw)
    der = _sign(key, x509.Name([]), extensions).public_bytes(serialization.Encoding.DER)
    return with_subject(der, name, key)


def create_ca_csr(key: PrivateKey | CaSigner, subject: Mapping[str, str]) -> bytes:
    """Return a PEM CSR asking an external CA to make ``key`` an intermediate factory CA.

    ``key`` may be a signer (a token key): the request is then signed in the token.

    Raises:
        CryptoError: the key is not P-256 or a subject field is invalid.
    """
    signer = as_signer(key)
    require_p256(signer.public_key())
    request = _sign(signer.signing_key(), build_name(subject), [basic_constraints(ca=True)])
    return request.public_bytes(serialization.Encoding.PEM)


def load_and_verify_csr(der_or_pem: bytes) -> x509.CertificateSigningRequest:
    """Parse a DER or PEM CSR and check its self-signature.

    A DER request with Mbed TLS's NULL parameter after ecdsa-with-SHA256 is accepted: the
    NULL is outside the signed bytes (:mod:`provkit.crypto.mbedtls_csr`).

    Raises:
        CryptoError: the bytes are not a CSR or the signature does not verify.
    """
    try:
        if is_pem(der_or_pem):
            csr = x509.load_pem_x509_csr(der_or_pem)
        else:
            csr = x509.load_der_x509_csr(drop_null_signature_parameter(der_or_pem))
        valid = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"not a PKCS#10 request: {exc}") from exc
    if not valid:
        raise CryptoError("the CSR's signature does not verify")
    return csr


def load_signed_csr(der_or_pem: bytes) -> tuple[PublicKey, dict[str, str]]:
    """Parse a device CSR, check its self-signature and return its public key and subject fields.

    Args:
        der_or_pem: a DER (or PEM) PKCS#10 request, as the device returns it in ``Csrs``.

    Returns:
        The requested P-256 public key and the subject as fcu.yml-style fields.

    Raises:
        CryptoError: the data is not a CSR, its signature does not verify, or its key is not P-256.
    """
    request = load_and_verify_csr(der_or_pem)
    key = request.public_key()
    require_p256(key)
    assert isinstance(key, PublicKey)
    return key, subject_fields(request.subject)
