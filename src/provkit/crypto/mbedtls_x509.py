"""Certificates as a device's Mbed TLS 2.28 reads them, where that differs from OpenSSL.

Three device rules need the certificate's own bytes, not a parsed object:

* :func:`certificate_fault` — ``mbedtls_x509_crt_parse_der`` reads the TBS signature
  algorithm right after the serial number and knows only what the build enables; the
  Linux FCC (``mbed-client-pal/Configs/mbedTLS/mbedTLSConfig_Linux.h`` in
  PelionIoT/mbed-cloud-client) has ECDSA with SHA-224/SHA-256 and nothing else, so any
  other algorithm is ``MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG``, which ``pal_plat_x509CertParse``
  (``factory-configurator-client/crypto-service/source/cs_pal_plat_crypto.c``) reports as
  an invalid MD type ("General error:"). A subject key on another curve is
  ``MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE`` ("Curve unsupported:"). Everything else that does
  not parse is a plain parse failure.
* :func:`subject_value` — ``pal_plat_X509GetField`` walks the subject's attributes in DER
  order, needs an Mbed TLS short name for each one it passes (an unknown attribute type
  before the wanted one is an error) and returns the first whose short name starts with
  the wanted one (``CN``, ``OU``), as its raw value bytes.
* :func:`allows_extended_key_usage`, :func:`allows_client_auth` —
  ``mbedtls_x509_crt_check_extended_key_usage``: no ExtendedKeyUsage extension allows
  every usage, and so does anyExtendedKeyUsage.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from typing import Final

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from provkit.crypto import mbedtls_pk
from provkit.crypto.mbedtls_der import (
    CONTEXT_0,
    INTEGER,
    NULL,
    OID,
    SEQUENCE,
    SET,
    Asn1Error,
    Asn1Fault,
    DeviceRefusal,
    Reader,
    oid_bytes,
    tlv,
)
from provkit.errors import CryptoError

SIGNATURE_ALGORITHMS: Final = frozenset({oid_bytes("1.2.840.10045.4.3.1"), oid_bytes("1.2.840.10045.4.3.2")})
"""ecdsa-with-SHA224 and ecdsa-with-SHA256: the signature algorithms the device's Mbed TLS knows."""

_SERIAL_CONTEXT: Final = 0x82  # x509_get_serial also takes [2] IMPLICIT
_MAX_VERSION: Final = 2

# Mbed TLS 2.28's oid_x520_attr_type table: attribute type -> short name.
_SHORT_NAMES: Final[dict[bytes, str]] = {
    oid_bytes(dotted): short
    for dotted, short in (
        ("2.5.4.3", "CN"),
        ("2.5.4.6", "C"),
        ("2.5.4.7", "L"),
        ("2.5.4.8", "ST"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("1.2.840.113549.1.9.1", "emailAddress"),
        ("2.5.4.5", "serialNumber"),
        ("2.5.4.16", "postalAddress"),
        ("2.5.4.17", "postalCode"),
        ("2.5.4.4", "SN"),
        ("2.5.4.42", "GN"),
        ("2.5.4.43", "initials"),
        ("2.5.4.44", "generationQualifier"),
        ("2.5.4.12", "title"),
        ("2.5.4.46", "dnQualifier"),
        ("2.5.4.65", "pseudonym"),
        ("0.9.2342.19200300.100.1.25", "DC"),
        ("2.5.4.45", "uniqueIdentifier"),
    )
}


class CertFault(Enum):
    """How a device reports a certificate it cannot take or read."""

    PARSE = "certificate does not parse"
    UNKNOWN_SIGNATURE_ALGORITHM = "signature algorithm unknown to the device"
    UNKNOWN_CURVE = "subject key on a curve the device does not support"
    ATTRIBUTE = "subject attribute missing or unreadable"


class MbedtlsCertError(DeviceRefusal[CertFault]):
    """A certificate the device refuses; ``fault`` says how it reports it."""


def _tbs(der: bytes) -> Reader:
    return Reader(der).enter(SEQUENCE).enter(SEQUENCE)


def _skip_to_signature(tbs: Reader) -> bytes:
    """Version and serial; return the TBS signature algorithm's OID (``x509_crt_parse_der_core``)."""
    if tbs.peek() == CONTEXT_0 and tbs.enter(CONTEXT_0).small_int() > _MAX_VERSION:
        raise MbedtlsCertError(CertFault.PARSE, "unknown version")
    if tbs.peek() not in (INTEGER, _SERIAL_CONTEXT):
        raise MbedtlsCertError(CertFault.PARSE, "no serial number")
    tbs.take(tbs.data[tbs.pos])  # the serial's bytes are not checked
    algorithm = tbs.algorithm()
    if algorithm.oid not in SIGNATURE_ALGORITHMS:
        raise MbedtlsCertError(CertFault.UNKNOWN_SIGNATURE_ALGORITHM)
    if algorithm.params_tag not in (0, NULL) or algorithm.params:
        raise MbedtlsCertError(CertFault.PARSE, "ECDSA takes no parameters")
    return algorithm.oid


def certificate_fault(der: bytes) -> CertFault | None:
    """The fault a device reports for a DER certificate up to its subject key, or ``None``.

    Only what comes before and in the ``SubjectPublicKeyInfo`` is judged here; the caller
    still parses the whole certificate (any failure there is :attr:`CertFault.PARSE`).
    """
    try:
        tbs = _tbs(der)
        _skip_to_signature(tbs)
        for _ in ("issuer", "validity", "subject"):
            tbs.enter(SEQUENCE)
        mbedtls_pk.check_public_key(der[tbs.pos : tbs.end])
    except MbedtlsCertError as exc:
        return exc.fault
    except mbedtls_pk.MbedtlsKeyError as exc:
        return CertFault.UNKNOWN_CURVE if exc.fault is mbedtls_pk.PkFault.UNKNOWN_CURVE else CertFault.PARSE
    except Asn1Error:
        return CertFault.PARSE
    return None


def _subject(der: bytes) -> Reader:
    tbs = _tbs(der)
    _skip_to_signature(tbs)
    tbs.enter(SEQUENCE)  # issuer
    tbs.enter(SEQUENCE)  # validity
    return tbs.enter(SEQUENCE)


@lru_cache(maxsize=256)
def subject_value(der: bytes, short_name: str) -> bytes:
    """The raw value of the first subject attribute whose Mbed TLS short name starts with ``short_name``.

    Raises:
        MbedtlsCertError: :attr:`CertFault.ATTRIBUTE` when an attribute the device has no
            name for comes first, or none matches.
    """
    try:
        subject = _subject(der)
        while not subject.at_end():
            rdn = subject.enter(SET)
            while not rdn.at_end():
                pair = rdn.enter(SEQUENCE)
                name = _SHORT_NAMES.get(pair.take(OID))
                if name is None:
                    raise MbedtlsCertError(CertFault.ATTRIBUTE, "attribute type unknown to the device")
                if name.startswith(short_name):
                    tag = pair.peek()
                    if tag is None:
                        raise Asn1Error(Asn1Fault.OUT_OF_DATA)
                    return pair.take(tag)
    except Asn1Error as exc:
        raise MbedtlsCertError(CertFault.ATTRIBUTE, "subject does not parse") from exc
    raise MbedtlsCertError(CertFault.ATTRIBUTE, f"no {short_name} attribute")


def allows_extended_key_usage(cert: x509.Certificate, usage: x509.ObjectIdentifier) -> bool:
    """Whether the device accepts ``cert`` for ``usage``: no EKU extension, the usage, or any."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return True
    usages = set(extension.value)
    return usage in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def allows_client_auth(cert: x509.Certificate) -> bool:
    """Whether the device takes ``cert`` as a client certificate (FCC's production check)."""
    return allows_extended_key_usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH)


# ---------------------------------------------------------------- subjects of device CSRs

_UTF8: Final = 0x0C
_PRINTABLE: Final = 0x13
_IA5: Final = 0x16
_MAX_VALUE_BYTES: Final = 256  # MBEDTLS_X509_MAX_DN_NAME_SIZE

# x509_create.c's x509_attrs: the names mbedtls_x509_string_to_names takes, exactly.
_SUBJECT_KEYS: Final[dict[bytes, tuple[bytes, int]]] = {
    name.encode(): (oid_bytes(dotted), tag)
    for name, dotted, tag in (
        ("CN", "2.5.4.3", _UTF8),
        ("commonName", "2.5.4.3", _UTF8),
        ("C", "2.5.4.6", _PRINTABLE),
        ("countryName", "2.5.4.6", _PRINTABLE),
        ("O", "2.5.4.10", _UTF8),
        ("organizationName", "2.5.4.10", _UTF8),
        ("L", "2.5.4.7", _UTF8),
        ("locality", "2.5.4.7", _UTF8),
        ("R", "1.2.840.113549.1.9.1", _IA5),
        ("OU", "2.5.4.11", _UTF8),
        ("organizationalUnitName", "2.5.4.11", _UTF8),
        ("ST", "2.5.4.8", _UTF8),
        ("stateOrProvinceName", "2.5.4.8", _UTF8),
        ("emailAddress", "1.2.840.113549.1.9.1", _IA5),
        ("serialNumber", "2.5.4.5", _PRINTABLE),
        ("postalAddress", "2.5.4.16", _PRINTABLE),
        ("postalCode", "2.5.4.17", _PRINTABLE),
        ("dnQualifier", "2.5.4.46", _PRINTABLE),
        ("title", "2.5.4.12", _UTF8),
        ("surName", "2.5.4.4", _UTF8),
        ("SN", "2.5.4.4", _UTF8),
        ("givenName", "2.5.4.42", _UTF8),
        ("GN", "2.5.4.42", _UTF8),
        ("initials", "2.5.4.43", _UTF8),
        ("pseudonym", "2.5.4.65", _UTF8),
        ("generationQualifier", "2.5.4.44", _UTF8),
        ("domainComponent", "0.9.2342.19200300.100.1.25", _IA5),
        ("DC", "0.9.2342.19200300.100.1.25", _IA5),
    )
}


class SubjectError(CryptoError):
    """The CSR subject text is one the device's Mbed TLS refuses (unknown attribute, bad escape, too long)."""


def subject_der(text: bytes) -> bytes:
    r"""The DER Name a device writes into its CSR for the ``Subj`` text, as Mbed TLS 2.28 does.

    ``mbedtls_x509_string_to_names`` (``library/x509_create.c``) reads ``KEY=value`` pairs
    separated by commas, skipping spaces after a comma; ``\,`` escapes a comma; text with
    no ``=`` is ignored (``"garbage"`` and ``""`` give an empty subject); a key it does not
    know, another escape or a value of 256 bytes fails. A repeated attribute type keeps
    its first position and its last value. ``mbedtls_x509_write_names`` then writes one
    RDN per attribute, in that order, with the key's string type.

    Args:
        text: the subject as the device holds it (up to its first NUL byte counts).

    Raises:
        SubjectError: the text is one Mbed TLS refuses.
    """
    attributes: dict[bytes, tuple[int, bytes]] = {}
    for oid, tag, value in _subject_attributes(text.split(b"\0", 1)[0]):
        attributes[oid] = (tag, value)  # mbedtls_asn1_store_named_data: replaced in place
    rdns = b"".join(
        tlv(SET, tlv(SEQUENCE, tlv(OID, oid) + tlv(tag, value))) for oid, (tag, value) in attributes.items()
    )
    return tlv(SEQUENCE, rdns)


def _subject_attributes(text: bytes) -> list[tuple[bytes, int, bytes]]:
    found: list[tuple[bytes, int, bytes]] = []
    start = index = 0
    in_key = True
    oid = b""
    tag = 0
    value = bytearray()
    while index <= len(text):
        char = text[index] if index < len(text) else None
        if in_key and char == ord("="):
            key = text[start:index]
            if key not in _SUBJECT_KEYS:
                raise SubjectError(f"subject attribute {key!r} is not one Mbed TLS knows")
            oid, tag = _SUBJECT_KEYS[key]
            start = index + 1
            in_key = False
            value = bytearray()
        if not in_key and char == ord("\\") and index < len(text):
            index += 1
            if index == len(text) or text[index] != ord(","):
                raise SubjectError("only a comma may be escaped in a subject")
            char = text[index]
        elif not in_key and (char == ord(",") or char is None):
            found.append((oid, tag, bytes(value)))
            while index < len(text) - 1 and text[index + 1] == ord(" "):
                index += 1
            start = index + 1
            in_key = True
        if not in_key and start != index + 1:
            assert char is not None
            value.append(char)
            if len(value) == _MAX_VALUE_BYTES:
                raise SubjectError(f"a subject value reaches {_MAX_VALUE_BYTES} bytes")
        index += 1
    return found
