"""The trusted bootstrap CA identifier (PAL secure time): ``fcc_trust_ca_cert_id_set()`` and its check.

With PAL secure time, FCC remembers which CA signs the time server's answers: when a
session ends it stores the 33-byte identifier of ``mbed.BootstrapServerCACert`` as the
rollback-protected item ``time_srv_id`` (an existing one is kept), and verification in
bootstrap mode warns ``CA identifier wasn't set properly:mbed.BootstrapServerCACert``
when the stored identifier is missing or belongs to another CA — e.g. a keep-alive
bundle verified before its session ended, or a device re-provisioned with a new
bootstrap CA without a storage delete.

The identifier is PAL's certificate id: the CA's P-256 public key as a compressed
SEC1 point (one prefix byte 0x02/0x03 and the 32-byte X coordinate).
"""

from __future__ import annotations

from typing import Final

from provkit.crypto import keys, x509
from provkit.device.kcm import ItemType, Kcm
from provkit.errors import CryptoError, ItemNotFoundError
from provkit.params import names as n

TIME_SERVER_ID: Final = "time_srv_id"
"""The RBP item holding the trusted CA identifier."""

CA_ID_SIZE: Final = 33
_POINT_SIZE: Final = 65  # uncompressed P-256 point: 0x04 || X || Y


def ca_identifier(cert_der: bytes, kcm: Kcm) -> bytes | None:
    """Return the 33-byte identifier of a P-256 certificate, or ``None`` for any other key.

    Args:
        cert_der: the DER certificate.
        kcm: used for its parsed-certificate cache.
    """
    try:
        spki = keys.public_key_der(x509.certificate_public_key(kcm.certificate(cert_der)))
    except CryptoError:
        return None
    # SubjectPublicKeyInfo of a named-curve EC key ends with the uncompressed point.
    point = spki[-_POINT_SIZE:]
    if len(spki) < _POINT_SIZE or point[0] != 0x04:
        return None
    x, y = point[1:33], point[33:]
    return bytes([0x02 | (y[-1] & 1)]) + x


def stored_bootstrap_ca_identifier(kcm: Kcm) -> bytes | None:
    """The identifier of the stored ``mbed.BootstrapServerCACert`` (``None`` if absent or not P-256)."""
    try:
        der = kcm.item_get(n.BOOTSTRAP_SERVER_CA_CERT, ItemType.CERTIFICATE)
    except ItemNotFoundError:
        return None
    return ca_identifier(der, kcm)


def trust_ca_id_set(kcm: Kcm) -> None:
    """Store the bootstrap CA's identifier unless one is stored (``fcc_trust_ca_cert_id_set()``).

    This is the bootstrap-mode part of the C function: the caller reads the mode first
    (:func:`provkit.device.verify.get_bootstrap_mode`). A CA whose key is not P-256 has
    no identifier and stores nothing.

    Raises:
        ItemNotFoundError: there is no ``mbed.BootstrapServerCACert`` (FCC fails the bundle).
    """
    if not kcm.item_exists(n.BOOTSTRAP_SERVER_CA_CERT, ItemType.CERTIFICATE):
        raise ItemNotFoundError(
            "the bootstrap server CA certificate is missing", item=n.BOOTSTRAP_SERVER_CA_CERT
        )
    if kcm.rbp_get(TIME_SERVER_ID) is not None:
        return  # FCC tolerates "already exists": the first trusted CA stays
    identifier = stored_bootstrap_ca_identifier(kcm)
    if identifier is not None:
        kcm.rbp_set(TIME_SERVER_ID, identifier)


def ca_identifier_ok(kcm: Kcm) -> bool:
    """Whether the stored ``time_srv_id`` is the identifier of the stored bootstrap CA."""
    stored = kcm.rbp_get(TIME_SERVER_ID)
    return stored is not None and stored == stored_bootstrap_ca_identifier(kcm)
