"""DTLS 1.2 with python-mbedtls: configurations, and reading record headers without decrypting.

Mbed TLS does the handshake, the cookie exchange (HelloVerifyRequest), replay protection
and record protection; provkit drives it sans-IO (:class:`mbedtls.tls.TLSWrappedBuffer`:
bytes in, bytes out) so that one UDP socket serves every peer. Two things need the
record layer's *headers* (RFC 6347 §4.1: type, version, epoch, sequence number, length),
never its protected contents:

* the buffer hands back every outgoing record of a flight as one byte string;
  :func:`datagrams` splits it at record boundaries and packs the records into datagrams
  no larger than the MTU, as Mbed TLS would when it owns the socket;
* a plaintext alert (epoch 0) tells a device *why* a server refused its handshake
  (``unknown_ca``, ``bad_certificate``, ``unknown_psk_identity`` …): :func:`plaintext_alert`.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

from mbedtls import pk, tls
from mbedtls import x509 as mbedtls_x509

RECORD_HEADER: Final = 13
"""Bytes of a DTLS record header."""
CONTENT_ALERT: Final = 21
CONTENT_HANDSHAKE: Final = 22
CONTENT_APPLICATION_DATA: Final = 23
HANDSHAKE_CLIENT_HELLO: Final = 1
DEFAULT_MTU: Final = 1400

ALERT_NAMES: Final[dict[int, str]] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    115: "unknown_psk_identity",
}
"""TLS alert descriptions (RFC 5246 §7.2, RFC 4279 §2) a DTLS peer may send."""


def handshake_over(buffer: tls.TLSWrappedBuffer) -> bool:
    """Whether ``buffer``'s handshake has finished."""
    return buffer._handshake_state.name == "HANDSHAKE_OVER"


def handshake_step(buffer: tls.TLSWrappedBuffer) -> str:
    """The name of the handshake step ``buffer`` is at (``CLIENT_HELLO``, …)."""
    return buffer._handshake_state.name


def records(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(content type, epoch, record bytes)`` of each whole record in ``data``.

    Stops at the first truncated header or body (the rest is not a record).
    """
    offset = 0
    while len(data) - offset >= RECORD_HEADER:
        content, _version, epoch, _seq_hi, _seq_lo, length = struct.unpack_from("!BHHHIH", data, offset)
        end = offset + RECORD_HEADER + length
        if end > len(data):
            return
        yield content, epoch, data[offset:end]
        offset = end


def datagrams(data: bytes, mtu: int = DEFAULT_MTU) -> list[bytes]:
    """Split outgoing records into datagrams of at most ``mtu`` bytes (a record never splits)."""
    out: list[bytes] = []
    current = bytearray()
    for _content, _epoch, record in records(data):
        if current and len(current) + len(record) > mtu:
            out.append(bytes(current))
            current.clear()
        current += record
    if current:
        out.append(bytes(current))
    return out


def is_client_hello(datagram: bytes) -> bool:
    """Whether ``datagram`` starts with an epoch-0 handshake record carrying a ClientHello."""
    if len(datagram) < RECORD_HEADER + 1:
        return False
    content, _version, epoch = struct.unpack_from("!BHH", datagram)
    return content == CONTENT_HANDSHAKE and epoch == 0 and datagram[RECORD_HEADER] == HANDSHAKE_CLIENT_HELLO


def looks_like_dtls(datagram: bytes) -> bool:
    """Whether ``datagram`` starts with a plausible DTLS 1.x record header (a cheap pre-filter)."""
    if len(datagram) < RECORD_HEADER:
        return False
    content, version = struct.unpack_from("!BH", datagram)
    return 20 <= content <= 25 and version in (0xFEFF, 0xFEFD)


def plaintext_alert(datagram: bytes) -> tuple[int, int] | None:
    """Return ``(level, description)`` of the first unprotected (epoch 0) alert record, if any."""
    for content, epoch, record in records(datagram):
        if content == CONTENT_ALERT and epoch == 0 and len(record) >= RECORD_HEADER + 2:
            return record[RECORD_HEADER], record[RECORD_HEADER + 1]
    return None


def alert_name(description: int) -> str:
    """The name of a TLS alert description (``unknown_ca``), or its number."""
    return ALERT_NAMES.get(description, f"alert {description}")


PSK_SUITES: Final = tuple(
    name for name in tls.ciphers_available() if name.startswith(("TLS-ECDHE-PSK-", "TLS-PSK-"))
)
"""Cipher suites of PSK mode (``TLS-ECDHE-PSK-…``, ``TLS-PSK-…``)."""
CERTIFICATE_SUITES: Final = tuple(
    name for name in tls.ciphers_available() if name.startswith("TLS-ECDHE-ECDSA-")
)
"""Cipher suites of certificate mode with EC keys (``TLS-ECDHE-ECDSA-…``)."""


def _certificate(der: bytes) -> mbedtls_x509.CRT:
    return mbedtls_x509.CRT.from_DER(der)


def trust_store(anchors: Sequence[bytes]) -> tls.TrustStore:
    """A Mbed TLS trust store of DER CA certificates."""
    store = tls.TrustStore()
    for der in anchors:
        store.add(_certificate(der))
    return store


def server_configuration(
    chain: Sequence[bytes],
    key_der: bytes,
    anchors: Sequence[bytes],
    psk_store: Mapping[str, bytes] | None,
    *,
    handshake_timeout: float = 16.0,
) -> tls.DTLSConfiguration:
    """The DTLS 1.2 server configuration of one service.

    Args:
        chain: the server certificate and its CA (DER, leaf first).
        key_der: the server key (DER).
        anchors: trusted CA certificates; clients presenting a certificate must chain to
            one of them (mutual authentication).
        psk_store: PSK identity → key, looked up during the handshake (PSK suites are
            offered when given).
        handshake_timeout: the longest retransmission interval before a handshake is given up.
    """
    return tls.DTLSConfiguration(
        certificate_chain=(tuple(_certificate(der) for der in chain), pk.ECC.from_DER(key_der)),
        trust_store=trust_store(anchors),
        validate_certificates=True,
        lowest_supported_version=tls.DTLSVersion.DTLSv1_2,
        highest_supported_version=tls.DTLSVersion.DTLSv1_2,
        anti_replay=True,
        handshake_timeout_min=1.0,
        handshake_timeout_max=handshake_timeout,
        pre_shared_key_store=psk_store if psk_store is not None else {},
    )


def client_configuration(
    *,
    chain: Sequence[bytes] = (),
    key_der: bytes | None = None,
    anchors: Sequence[bytes] = (),
    psk: tuple[str, bytes] | None = None,
    handshake_timeout: float = 8.0,
) -> tls.DTLSConfiguration:
    """A device's DTLS 1.2 client configuration: certificate mode (``chain`` + ``key_der``) or PSK.

    ``anchors`` verify the server when given; without them the caller checks the server
    certificate itself after the handshake (LwM2M certificate usage 3: an exact match).
    """
    certificate_chain = None
    if chain and key_der is not None:
        certificate_chain = (tuple(_certificate(der) for der in chain), pk.ECC.from_DER(key_der))
    # A device offers only the suites of its mode, as Mbed TLS devices configured for one
    # mode do: a PSK device offering certificate suites would be asked for a certificate.
    # And secp256r1 first, as devices do (see prefer_p256).
    prefer_p256()
    ciphers = PSK_SUITES if psk is not None else CERTIFICATE_SUITES
    return tls.DTLSConfiguration(
        ciphers=ciphers,
        certificate_chain=certificate_chain,
        trust_store=trust_store(anchors) if anchors else None,
        validate_certificates=bool(anchors),
        lowest_supported_version=tls.DTLSVersion.DTLSv1_2,
        highest_supported_version=tls.DTLSVersion.DTLSv1_2,
        handshake_timeout_min=0.5,
        handshake_timeout_max=handshake_timeout,
        pre_shared_key=psk,
    )


class _CurveInfo(ctypes.Structure):
    _fields_ = (
        ("grp_id", ctypes.c_int),
        ("tls_id", ctypes.c_uint16),
        ("bit_size", ctypes.c_uint16),
        ("name", ctypes.c_char_p),
    )


def prefer_p256() -> bool:
    """Make this process's Mbed TLS offer secp256r1 first in its ClientHello; return whether it does.

    A DTLS server uses the first curve of the client's list it supports, and Mbed TLS
    lists its curves strongest first, so a python-mbedtls client would pay for secp521r1
    key exchanges that no LwM2M device makes: secp256r1 is the curve RFC 7252 mandates and
    the only one the Pelion and Anjay device builds enable. python-mbedtls has no setting
    for it; the default list (``mbedtls_ecp_grp_id_list``, which every configuration of
    the process points to) is reordered in place, every curve kept. Nothing changes when
    the bundled library cannot be found or does not look as expected.
    """
    global _P256_FIRST
    if _P256_FIRST is not None:
        return _P256_FIRST
    _P256_FIRST = False
    libraries = sorted((Path(tls.__file__).parent.parent / "python_mbedtls.libs").glob("libmbedcrypto*.so*"))
    if len(libraries) != 1:
        return False
    try:
        library = ctypes.CDLL(str(libraries[0]))
        listing = library.mbedtls_ecp_grp_id_list
        listing.restype = ctypes.POINTER(ctypes.c_int)
        describe = library.mbedtls_ecp_curve_info_from_grp_id
        describe.restype = ctypes.POINTER(_CurveInfo)
        describe.argtypes = (ctypes.c_int,)
    except (OSError, AttributeError):
        return False
    ids = listing()
    count = 0
    while ids[count] != 0 and count < 32:
        count += 1
    current = [ids[index] for index in range(count)]
    p256 = [g for g in current if describe(g) and describe(g).contents.name == b"secp256r1"]
    if len(p256) != 1:
        return False
    for index, group in enumerate([p256[0], *(g for g in current if g != p256[0])]):
        ids[index] = group
    _P256_FIRST = True
    return True


_P256_FIRST: bool | None = None


def is_close_notify(error: Exception) -> bool:
    """Whether a python-mbedtls error reports the peer's close_notify (MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)."""
    return "0x7880" in str(error).lower()


def is_psk_suite(cipher: object) -> bool:
    """Whether a negotiated cipher suite name is a PSK suite (``TLS-ECDHE-PSK-…``, ``TLS-PSK-…``)."""
    if isinstance(cipher, bytes):
        cipher = cipher.decode("ascii", "replace")
    return isinstance(cipher, str) and "-PSK-" in cipher
