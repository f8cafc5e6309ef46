"""Storing one bundle's groups in KCM, the way ``fcc_bundle_*_utils.c`` does.

Every failure is raised as :class:`~provkit.errors.DeviceError` carrying the
``ReturnStatus`` and the complete InfoMessage (``<prefix><item>``), so the handler only
has to answer it.
"""

from __future__ import annotations

from typing import Final

from provkit.codes import FccStatus, KcmStatus
from provkit.crypto import csr, keys, x509
from provkit.device.clock import DeviceClock
from provkit.device.kcm import ItemType, Kcm, check_name
from provkit.errors import CryptoError, DeviceError, StorageError
from provkit.params import FOUR_BYTE_INTEGER_PARAMS
from provkit.params import names as n
from provkit.wire.bundle import (
    BigNum,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    CsrRequest,
    KeyItem,
)
from provkit.wire.response import CsrResult

_U64: Final = 1 << 64
_KEY_TYPES: Final = {"ECCPrivate": ItemType.PRIVATE_KEY, "ECCPublic": ItemType.PUBLIC_KEY}
_MD_SHA256: Final = 1
_DEVICE_MEDIUM: Final = "Device"


def store_key(kcm: Kcm, item: KeyItem) -> None:
    """Store a ``Keys`` entry."""
    try:
        kcm.item_store(item.name, _KEY_TYPES[item.type], item.data)
    except StorageError as exc:
        raise DeviceError.from_kcm(exc, item.name) from exc


def _check_with_key(kcm: Kcm, cert_der: bytes, cert_name: str, prkn: str) -> None:
    # kcm_certificate_verify_with_private_key: a missing key or a mismatch is status 34.
    try:
        key = kcm.private_key(prkn)
    except StorageError as exc:
        raise DeviceError(
            exc.kcm_status.prefix + prkn,
            fcc_status=FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR,
            item=prkn,
        ) from exc
    try:
        matches = x509.matches_private_key(kcm.certificate(cert_der), key)
    except CryptoError as exc:
        raise DeviceError(
            KcmStatus.CRYPTO_PARSING_DER_CERT.prefix + cert_name,
            fcc_status=FccStatus.KCM_CRYPTO_ERROR,
            item=cert_name,
        ) from exc
    if not matches:
        status = KcmStatus.SELF_GENERATED_CERTIFICATE_VERIFICATION_ERROR
        raise DeviceError(status.prefix + cert_name, fcc_status=status.fcc_status, item=cert_name)


def store_certificate(kcm: Kcm, item: CertificateItem) -> None:
    """Store a ``Certificates`` entry, checking it against ``PrKN`` first."""
    try:
        check_name(item.name)
        if item.prkn is not None:
            _check_with_key(kcm, item.data, item.name, item.prkn)
        kcm.item_store(item.name, ItemType.CERTIFICATE, item.data)
    except StorageError as exc:
        raise DeviceError.from_kcm(exc, item.name) from exc


def store_chain(kcm: Kcm, item: CertificateChainItem) -> None:
    """Store a ``CertificateChains`` entry, checking the leaf against ``PrKN``."""
    try:
        check_name(item.name)
        # As for single certificates, FCC checks the leaf against PrKN before storing.
        if item.prkn is not None:
            _check_with_key(kcm, item.certificates[0], item.name, item.prkn)
        kcm.cert_chain_store(item.name, item.certificates)
    except StorageError as exc:
        raise DeviceError.from_kcm(exc, item.name) from exc


def config_bytes(param: ConfigParam) -> bytes:
    """Return the bytes FCC stores for a config param (§1.6).

    Integers become a little-endian uint64, cut to 4 bytes for UseBootstrap,
    MemoryTotalKB and FirstToClaim; a tag 2 bignum is stored as the bytes received (its
    first 4 for those three names), as ``fcc_bundle_get_variant`` hands them to KCM.

    Raises:
        DeviceError: 20 for a negative integer below int64.
    """
    data = param.data
    if data is None:
        return b""
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, bytes):
        return data
    if isinstance(data, BigNum):
        return data.raw[:4] if param.name in FOUR_BYTE_INTEGER_PARAMS else data.raw
    if data >= _U64:
        return data.to_bytes((data.bit_length() + 7) // 8, "big")
    if data < -(1 << 63):
        raise DeviceError.of(FccStatus.BUNDLE_ERROR)
    raw = (data % _U64).to_bytes(8, "little")
    return raw[:4] if param.name in FOUR_BYTE_INTEGER_PARAMS else raw


def store_config(kcm: Kcm, clock: DeviceClock, param: ConfigParam) -> None:
    """Store a ``ConfigParams`` entry; ``mbed.CurrentTime`` sets the clock instead."""
    if param.name == n.CURRENT_TIME:
        if not isinstance(param.data, int) or not 0 <= param.data < _U64:
            raise DeviceError.of(FccStatus.BUNDLE_ERROR)
        clock.set(param.data)
        return
    try:
        kcm.item_store(param.name, ItemType.CONFIG, config_bytes(param))
    except StorageError as exc:
        raise DeviceError.from_kcm(exc, param.name) from exc


def process_csr(kcm: Kcm, request: CsrRequest) -> CsrResult:
    """Generate a P-256 key pair on the device, store it and return its CSR (§1.7).

    A KCM failure answers its prefix without an item name (FCC stores CSR errors with
    no name): ``Desired generated key name already exists:``.
    """
    name = request.prkn
    storage = request.storage
    if storage is not None and (
        storage.private != _DEVICE_MEDIUM or storage.public not in (None, _DEVICE_MEDIUM)
    ):
        # No secure element here: "SE" is not supported.
        raise DeviceError.of(FccStatus.NOT_SUPPORTED)
    want_public = storage is not None and storage.public is not None
    try:
        check_name(name)
        if request.md != _MD_SHA256:
            raise StorageError("only SHA-256 is supported", kcm_status=KcmStatus.CRYPTO_INVALID_MD_TYPE)
        if kcm.item_exists(name, ItemType.PRIVATE_KEY) or (
            want_public and kcm.item_exists(name, ItemType.PUBLIC_KEY)
        ):
            raise StorageError("generated key name exists", kcm_status=KcmStatus.KEY_EXIST)
        key = keys.generate_p256()
        try:
            der = csr.build_csr(key, request.subject, request.key_usage, request.ext_key_usage)
        except CryptoError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.CRYPTO_INVALID_NAME_FORMAT) from exc
        kcm.item_store(name, ItemType.PRIVATE_KEY, keys.private_key_der(key))
        if want_public:
            kcm.item_store(name, ItemType.PUBLIC_KEY, keys.public_key_der(key))
    except StorageError as exc:
        raise DeviceError.from_kcm(exc, "") from exc
    return CsrResult(name, der)
