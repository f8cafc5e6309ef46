"""The outer signature algorithm of CSRs written by Mbed TLS up to 2.28.4.

Mbed TLS's ``mbedtls_x509_write_sig`` (``library/x509_create.c``) wrote every signature
``AlgorithmIdentifier`` with an explicit ASN.1 NULL parameter until 2.28.5, also for
ecdsa-with-SHA256, where RFC 5758 §3.2 says the parameters must be absent. The Mbed TLS
2.28.2 that PelionIoT/factory-configurator-client-example pins for Linux still does it, so
every by_device CSR from a real FCC carries ``06 08 2a8648ce3d040302 05 00``. The NULL sits
outside ``certificationRequestInfo``, the part the signature covers: dropping it changes no
signed byte. ``cryptography`` refuses the NULL form, so the factory normalises it before
parsing, and provkit's virtual device adds it so lines tested against it meet real CSRs.

Only this one exact byte pattern is rewritten; every other encoding is left to
``cryptography`` to judge. The DER walk is three TLV headers long, so it is done here rather
than with a general ASN.1 library.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.crypto.keys import PrivateKey

_ECDSA_SHA256_OID: Final = bytes.fromhex("06082a8648ce3d040302")
_ALGORITHM_ABSENT: Final = b"\x30\x0a" + _ECDSA_SHA256_OID
"""ecdsa-with-SHA256 as RFC 5758 writes it."""
_ALGORITHM_WITH_NULL: Final = b"\x30\x0c" + _ECDSA_SHA256_OID + b"\x05\x00"
"""ecdsa-with-SHA256 as Mbed TLS <= 2.28.4 writes it."""

_SEQUENCE: Final = 0x30


def _header(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """Read one DER tag and definite length at ``offset``: (tag, content start, content end)."""
    if offset + 2 > len(data):
        return None
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            return None
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    return (tag, start, end) if end <= len(data) else None


def _length_bytes(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _split(der: bytes) -> tuple[bytes, bytes, bytes] | None:
    """Split a CSR into (certificationRequestInfo, signatureAlgorithm, rest), each a whole TLV."""
    outer = _header(der, 0)
    if outer is None or outer[0] != _SEQUENCE or outer[2] != len(der):
        return None
    _, start, end = outer
    info = _header(der, start)
    if info is None:
        return None
    algorithm = _header(der, info[2])
    if algorithm is None:
        return None
    return der[start : info[2]], der[info[2] : algorithm[2]], der[algorithm[2] : end]


def _join(info: bytes, algorithm: bytes, rest: bytes) -> bytes:
    body = info + algorithm + rest
    return bytes([_SEQUENCE]) + _length_bytes(len(body)) + body


def drop_null_signature_parameter(der: bytes) -> bytes:
    """Return ``der`` with an Mbed TLS-style NULL after ecdsa-with-SHA256 removed.

    Anything that is not a CSR whose outer algorithm is exactly that NULL form comes back
    unchanged, for the real parser to accept or refuse.
    """
    parts = _split(der)
    if parts is None or parts[1] != _ALGORITHM_WITH_NULL:
        return der
    return _join(parts[0], _ALGORITHM_ABSENT, parts[2])


def add_null_signature_parameter(der: bytes) -> bytes:
    """Return ``der`` with its ecdsa-with-SHA256 outer algorithm written as Mbed TLS 2.28.2 does.

    Used by the virtual device; a CSR with any other algorithm comes back unchanged.
    """
    parts = _split(der)
    if parts is None or parts[1] != _ALGORITHM_ABSENT:
        return der
    return _join(parts[0], _ALGORITHM_WITH_NULL, parts[2])


def with_subject(der: bytes, subject: bytes, key: PrivateKey) -> bytes:
    """Return the CSR ``der`` with ``subject`` (a DER Name) as its subject, signed again by ``key``.

    The device writes its CSR subject with Mbed TLS's own rules
    (:func:`provkit.crypto.mbedtls_x509.subject_der`), which ``cryptography``'s builder
    cannot express (repeated types, any string type, empty values); the request is built
    with an empty subject, the Name is put in its place and the request signed again, the
    outer algorithm written as Mbed TLS 2.28.2 writes it.
    """
    parts = _split(der)
    if parts is None:
        raise ValueError("not a CSR")
    info = parts[0]
    header = _header(info, 0)
    version = None if header is None else _header(info, header[1])
    name = None if version is None else _header(info, version[2])
    if header is None or version is None or name is None:
        raise ValueError("not a CSR")
    body = info[header[1] : version[2]] + subject + info[name[2] : header[2]]
    new_info = bytes([_SEQUENCE]) + _length_bytes(len(body)) + body
    signature = key.sign(new_info, ec.ECDSA(hashes.SHA256()))
    bit_string = b"\x03" + _length_bytes(len(signature) + 1) + b"\x00" + signature
    return _join(new_info, _ALGORITHM_WITH_NULL, bit_string)
