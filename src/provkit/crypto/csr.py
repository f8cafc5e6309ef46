"""PKCS#10 certificate signing requests made on the device for ``CsrReqs``.

The bitmasks are FCC's (pelion-fcc.md §1.7): key usage 1 digitalSignature,
2 nonRepudiation, 4 keyCertSign, 8 keyAgreement; extended key usage 1 any, 2 serverAuth,
4 clientAuth, 8 codeSigning, 16 emailProtection, 256 timeStamping, 512 OCSPSigning.
"""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from provkit.crypto.keys import PrivateKey
from provkit.crypto.x509 import parse_dn
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
    return x509.KeyUsage(
        digital_signature=bool(bits & KU_DIGITAL_SIGNATURE),
        content_commitment=bool(bits & KU_NON_REPUDIATION),
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=bool(bits & KU_KEY_AGREEMENT),
        key_cert_sign=bool(bits & KU_KEY_CERT_SIGN),
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _ext_key_usage(bits: int) -> x509.ExtendedKeyUsage:
    if bits & ~_EKU_ALL or bits == 0:
        raise CryptoError(f"extended key usage bitmask {bits} has unknown or no bits")
    return x509.ExtendedKeyUsage([oid for bit, oid in _EKU_BITS.items() if bits & bit])


def build_csr(
    key: PrivateKey,
    subject: str,
    key_usage: int | None = None,
    ext_key_usage: int | None = None,
) -> bytes:
    """Build a DER PKCS#10 request signed with ``key`` (ecdsa-with-SHA256).

    Args:
        key: the device's freshly generated private key.
        subject: mbedTLS-format subject, e.g. ``"C=GB,O=Acme,CN=dev-1"``.
        key_usage: FCC ``KU`` bitmask, or ``None`` for no KeyUsage extension.
        ext_key_usage: FCC ``EKU`` bitmask, or ``None`` for no ExtendedKeyUsage extension.

    Raises:
        CryptoError: the subject or a bitmask is invalid.
    """
    builder = x509.CertificateSigningRequestBuilder().subject_name(parse_dn(subject))
    if key_usage is not None:
        builder = builder.add_extension(_key_usage(key_usage), critical=True)
    if ext_key_usage is not None:
        builder = builder.add_extension(_ext_key_usage(ext_key_usage), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def load_and_verify_csr(der: bytes) -> x509.CertificateSigningRequest:
    """Parse a DER CSR and check its self-signature.

    Raises:
        CryptoError: the bytes are not a CSR or the signature does not verify.
    """
    try:
        csr = x509.load_der_x509_csr(der)
        valid = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"not a PKCS#10 request: {exc}") from exc
    if not valid:
        raise CryptoError("the CSR's signature does not verify")
    return csr
