"""EC keys read as a device's Mbed TLS reads them, with the fault it reports.

A real FCC checks the keys of a bundle with Mbed TLS 2.28 (``library/pkparse.c``),
configured as PelionIoT/mbed-cloud-client configures it for Linux
(``mbed-client-pal/Configs/mbedTLS/mbedTLSConfig_Linux.h``: EC on NIST P-256 only, no RSA,
no PEM, no encrypted PKCS#8), and turns Mbed TLS's error into a KCM status
(``pal_plat_parseECPrivateKeyFromDER`` / ``pal_plat_parseECPublicKeyFromDER`` and
``pal_plat_pkMbedtlsToPalError`` in ``factory-configurator-client/crypto-service/source/
cs_pal_plat_crypto.c``). That parser accepts what OpenSSL refuses (bytes after the key,
a public key in an ``ECPrivateKey`` that does not match the private one, non-minimal
lengths) and refuses what OpenSSL accepts (compressed points, other curves), so provkit's
virtual device walks the DER itself, following ``pkparse.c`` step by step, and leaves
only the arithmetic to ``cryptography``:

* :func:`parse_private_key` — unencrypted PKCS#8, then SEC1 ``ECPrivateKey``; anything
  else is :attr:`PkFault.FORMAT` (``mbedtls_pk_parse_key`` folds every DER failure into
  ``MBEDTLS_ERR_PK_KEY_INVALID_FORMAT``, which KCM reports as "Public key format invalid").
* :func:`parse_public_key` — ``SubjectPublicKeyInfo`` (``mbedtls_pk_parse_subpubkey``),
  whose faults keep their kind.
* Data holding ``-----BEGIN `` or ``-----END `` before its first NUL byte is refused as
  PEM before any parsing (:attr:`PkFault.PEM`), as ``pal_plat_isPEM`` does.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from provkit.crypto.keys import PrivateKey, PublicKey
from provkit.crypto.mbedtls_der import (
    CONTEXT_0,
    CONTEXT_1,
    NULL,
    OCTET_STRING,
    OID,
    SEQUENCE,
    Algorithm,
    Asn1Error,
    Asn1Fault,
    DeviceRefusal,
    Reader,
    oid_bytes,
)

EC_PUBLIC_KEY_OID: Final = oid_bytes("1.2.840.10045.2.1")
"""id-ecPublicKey."""
EC_DH_OID: Final = oid_bytes("1.3.132.1.12")
"""id-ecDH (Mbed TLS's ``MBEDTLS_PK_ECKEY_DH``)."""
RSA_OID: Final = oid_bytes("1.2.840.113549.1.1.1")
"""rsaEncryption: known to Mbed TLS's OID table, but RSA is not built in."""
P256_OID: Final = oid_bytes("1.2.840.10045.3.1.7")
"""secp256r1, the only curve built in."""

_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_PRIME: Final = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_P256_B: Final = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_COORDINATE_BYTES: Final = 32
_PEM_MARKERS: Final = (b"-----BEGIN ", b"-----END ")


class PkFault(Enum):
    """What a device's key parser reports (the ``pal_plat_pkMbedtlsToPalError`` classes)."""

    PEM = "PEM text, not DER"
    FORMAT = "invalid key format"
    PUBKEY_LENGTH = "public key length mismatch"
    UNKNOWN_ALGORITHM = "unknown public key algorithm"
    UNKNOWN_CURVE = "curve not supported"
    INVALID_POINT = "invalid EC point"
    OTHER = "key does not parse"


class MbedtlsKeyError(DeviceRefusal[PkFault]):
    """The key is one a device's Mbed TLS refuses; ``fault`` says how it reports it."""


class _Refused(Exception):
    """One step of the walk failed with ``fault`` (Mbed TLS's composite error, classified)."""

    def __init__(self, fault: PkFault) -> None:
        super().__init__(fault.value)
        self.fault = fault


def _format_or_other(error: Asn1Error) -> _Refused:
    # MBEDTLS_ERR_PK_KEY_INVALID_FORMAT + MBEDTLS_ERR_ASN1_OUT_OF_DATA is the one composite
    # error the PAL maps to "format invalid"; every other low-level error is "parse failed".
    return _Refused(PkFault.FORMAT if error.fault is Asn1Fault.OUT_OF_DATA else PkFault.OTHER)


def _check_pem(data: bytes) -> None:
    text = data.split(b"\0", 1)[0]  # strstr() on the buffer stops at its first NUL
    if any(marker in text for marker in _PEM_MARKERS):
        raise MbedtlsKeyError(PkFault.PEM)


def _curve(params_tag: int, params: bytes) -> None:
    """``pk_use_ecparams``: a named curve that must be P-256."""
    if params_tag != OID:
        raise _Refused(PkFault.FORMAT)  # specified-curve parameters are not built in
    if params != P256_OID:
        raise _Refused(PkFault.UNKNOWN_CURVE)


def _point(encoded: bytes) -> tuple[int, int]:
    """``pk_get_ecpubkey``: an uncompressed P-256 point that lies on the curve; its coordinates."""
    if encoded[:1] == b"\x00":
        # The point at infinity (alone) fails the public-key check; with more bytes it is bad input.
        raise _Refused(PkFault.INVALID_POINT if len(encoded) == 1 else PkFault.OTHER)
    if encoded[:1] != b"\x04":
        raise _Refused(PkFault.OTHER)  # compressed points: MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE
    if len(encoded) != 1 + 2 * _COORDINATE_BYTES:
        raise _Refused(PkFault.OTHER)
    x = int.from_bytes(encoded[1:33], "big")
    y = int.from_bytes(encoded[33:], "big")
    on_curve = (y * y - (x * x * x - 3 * x + _P256_B)) % _P256_PRIME == 0
    if x >= _P256_PRIME or y >= _P256_PRIME or not on_curve:
        raise _Refused(PkFault.INVALID_POINT)
    return x, y


def _algorithm(reader: Reader) -> Algorithm:
    """``pk_get_pk_alg``: an AlgorithmIdentifier in Mbed TLS's key table (RSA, EC, ECDH)."""
    try:
        algorithm = reader.algorithm()
    except Asn1Error as exc:
        raise _Refused(PkFault.OTHER) from exc  # MBEDTLS_ERR_PK_INVALID_ALG + ...
    if algorithm.oid not in (EC_PUBLIC_KEY_OID, EC_DH_OID, RSA_OID):
        raise _Refused(PkFault.UNKNOWN_ALGORITHM)
    if algorithm.oid == RSA_OID and (algorithm.params_tag not in (0, NULL) or algorithm.params):
        raise _Refused(PkFault.OTHER)  # RSA takes no parameters: MBEDTLS_ERR_PK_INVALID_ALG
    return algorithm


# ---------------------------------------------------------------- public keys


def parse_public_key(data: bytes) -> PublicKey:
    """Read a DER ``SubjectPublicKeyInfo`` as a device does.

    Bytes after the outer SEQUENCE are ignored, as Mbed TLS ignores them.

    Raises:
        MbedtlsKeyError: with the fault the device reports.
    """
    x, y = check_public_key(data)
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def check_public_key(data: bytes) -> tuple[int, int]:
    """:func:`parse_public_key` without building a key object: the point's coordinates.

    Raises:
        MbedtlsKeyError: with the fault the device reports.
    """
    _check_pem(data)
    try:
        return _subject_public_key(Reader(data))
    except _Refused as exc:
        raise MbedtlsKeyError(exc.fault) from exc


def _subject_public_key(outer: Reader) -> tuple[int, int]:
    try:
        reader = outer.enter(SEQUENCE)
    except Asn1Error as exc:
        raise _format_or_other(exc) from exc
    algorithm = _algorithm(reader)
    try:
        encoded = reader.bitstring_null()
    except Asn1Error as exc:
        raise _Refused(PkFault.OTHER) from exc  # MBEDTLS_ERR_PK_INVALID_PUBKEY + ...
    if not reader.at_end():
        raise _Refused(PkFault.PUBKEY_LENGTH)
    if algorithm.oid == RSA_OID:
        raise _Refused(PkFault.UNKNOWN_ALGORITHM)  # known OID, but RSA is not built in
    _curve(algorithm.params_tag, algorithm.params)
    return _point(encoded)


# ---------------------------------------------------------------- private keys


def parse_private_key(data: bytes) -> PrivateKey:
    """Read a DER EC private key as a device does: unencrypted PKCS#8, else SEC1.

    Raises:
        MbedtlsKeyError: :attr:`PkFault.PEM`, or :attr:`PkFault.FORMAT` for anything the
            device does not take.
    """
    _check_pem(data)
    for attempt in (_pkcs8, _sec1_standalone):
        try:
            return attempt(data)
        except (_Refused, Asn1Error):
            continue
    raise MbedtlsKeyError(PkFault.FORMAT)


def _pkcs8(data: bytes) -> PrivateKey:
    reader = Reader(data).enter(SEQUENCE)
    if reader.small_int() != 0:
        raise _Refused(PkFault.FORMAT)
    algorithm = _algorithm(reader)
    content = reader.take(OCTET_STRING)
    if not content or algorithm.oid == RSA_OID:
        raise _Refused(PkFault.FORMAT)
    _curve(algorithm.params_tag, algorithm.params)
    return _sec1(content, curve_known=True)


def _sec1_standalone(data: bytes) -> PrivateKey:
    return _sec1(data, curve_known=False)


def _sec1(data: bytes, *, curve_known: bool) -> PrivateKey:
    """``pk_parse_key_sec1_der``: ``ECPrivateKey``, its curve from PKCS#8 or its own [0]."""
    reader = Reader(data).enter(SEQUENCE)
    if reader.small_int() != 1:
        raise _Refused(PkFault.FORMAT)
    secret = int.from_bytes(reader.take(OCTET_STRING), "big")
    if not reader.at_end() and reader.peek() == CONTEXT_0:
        params = reader.enter(CONTEXT_0)
        if params.peek() != OID:
            raise _Refused(PkFault.FORMAT)
        named = params.take(OID)
        if not params.at_end():
            raise _Refused(PkFault.FORMAT)
        _curve(OID, named)
        curve_known = True
    if not reader.at_end() and reader.peek() == CONTEXT_1:
        _embedded_public_key(reader.enter(CONTEXT_1), curve_known)
    # Anything else left in the SEQUENCE is never looked at; a public key that does not
    # match the private one is kept but never checked against it.
    if not curve_known or not 1 <= secret < _P256_ORDER:
        raise _Refused(PkFault.FORMAT)
    return ec.derive_private_key(secret, ec.SECP256R1())


def _embedded_public_key(reader: Reader, curve_known: bool) -> None:
    encoded = reader.bitstring_null()
    if not reader.at_end():
        raise _Refused(PkFault.FORMAT)
    if not curve_known:
        raise _Refused(PkFault.FORMAT)
    try:
        _point(encoded)
    except _Refused:
        # Only a point format Mbed TLS cannot read is tolerated (it derives the point).
        if encoded[:1] in (b"\x00", b"\x04"):
            raise
