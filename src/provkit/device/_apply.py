"""Storing one bundle's items in KCM, the way ``fcc_bundle_*_utils.c`` does.

The rules mirror ``factory-configurator-client/fcc-bundle-handler/source/`` of
PelionIoT/mbed-cloud-client (``fcc_bundle_key_utils.c``, ``fcc_bundle_certificate_utils.c``,
``fcc_bundle_config_params_utils.c``, ``fcc_bundle_csr_utils.c``). Every failure is raised
as :class:`~provkit.errors.DeviceError` carrying the ``ReturnStatus`` and the complete
InfoMessage (``<prefix><item>``), so the handler only has to answer it.
"""

from __future__ import annotations

from typing import Final

from provkit.codes import FccStatus, KcmStatus
from provkit.crypto import csr, keys, mbedtls_pk, x509
from provkit.crypto.mbedtls_x509 import subject_der
from provkit.device.clock import DeviceClock
from provkit.device.kcm import ItemType, Kcm, check_name
from provkit.errors import CryptoError, DeviceError, ItemNotFoundError, StorageError
from provkit.params import FOUR_BYTE_INTEGER_PARAMS
from provkit.params import names as n
from provkit.wire.bundle import (
    ECC_PRIVATE,
    ECC_PUBLIC,
    BigNum,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    CsrRequest,
    KeyItem,
    fcc_match,
    wire_bytes,
)
from provkit.wire.response import CsrResult

_U64: Final = 1 << 64
_WORD: Final = 4
_KEY_TYPES: Final = {ECC_PRIVATE: ItemType.PRIVATE_KEY, ECC_PUBLIC: ItemType.PUBLIC_KEY}
_MD_SHA256: Final = 1
_KU_KNOWN: Final = 0x0F  # digitalSignature, nonRepudiation, keyCertSign, keyAgreement
_EKU_KNOWN: Final = 0x31F  # any, serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSP

MIN_SETTABLE_TIME: Final = 1_483_264_800
"""``PAL_MIN_SEC_FROM_EPOCH`` (``mbed-client-pal/Source/PAL-Impl/Services-API/pal_macros.h``):
``pal_plat_osSetTime`` refuses a non-zero time below it."""


def _kcm_failure(error: StorageError, item: str, status: FccStatus | None = None) -> DeviceError:
    """``fcc_bundle_store_kcm_error_info``: the KCM status's prefix, its FCC status unless given."""
    kcm_status = error.kcm_status
    return DeviceError(kcm_status.prefix + item, fcc_status=status or kcm_status.fcc_status, item=item)


def store_key(kcm: Kcm, item: KeyItem) -> None:
    """Store a ``Keys`` entry (``kcm_item_store``: data, then name, then existence)."""
    try:
        kcm.item_store(item.name, _KEY_TYPES[item.type], item.data)
    except StorageError as exc:
        raise _kcm_failure(exc, item.name) from exc


def _check_with_key(kcm: Kcm, cert_der: bytes, cert_name: str, prkn: str) -> None:
    """``kcm_certificate_verify_with_private_key``: every failure is status 34.

    The certificate is read first, then the key; the InfoMessage names the key only when
    it does not exist (``fcc_bundle_process_certificates_cb``).
    """
    correlation = FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR
    if not cert_der:
        raise DeviceError(
            KcmStatus.INVALID_PARAMETER.prefix + cert_name, fcc_status=correlation, item=cert_name
        )
    try:
        kcm.check_data(cert_name, ItemType.CERTIFICATE, cert_der)
        cert = kcm.certificate(cert_der)
        check_name(prkn)
        key_der = kcm.item_get(prkn, ItemType.PRIVATE_KEY)
    except ItemNotFoundError as exc:
        raise _kcm_failure(exc, prkn, correlation) from exc
    except StorageError as exc:
        raise _kcm_failure(exc, cert_name, correlation) from exc
    try:
        matches = x509.matches_private_key(cert, mbedtls_pk.parse_private_key(key_der))
    except CryptoError:
        matches = False
    if not matches:
        status = KcmStatus.SELF_GENERATED_CERTIFICATE_VERIFICATION_ERROR
        raise DeviceError(status.prefix + cert_name, fcc_status=correlation, item=cert_name)


def store_certificate(kcm: Kcm, item: CertificateItem) -> None:
    """Store a ``Certificates`` entry, checking it against ``PrKN`` first."""
    if item.prkn is not None:
        _check_with_key(kcm, item.data, item.name, item.prkn)
    try:
        kcm.item_store(item.name, ItemType.CERTIFICATE, item.data)
    except StorageError as exc:
        raise _kcm_failure(exc, item.name) from exc


def store_chain(kcm: Kcm, item: CertificateChainItem) -> None:
    """Store a ``CertificateChains`` entry: ``PrKN`` check, then create the chain, then add each certificate.

    FCC answers every failure to create the chain (the name, an existing certificate of
    that name) with ``FCC_STATUS_KCM_ERROR`` (15) and KCM's prefix, e.g.
    ``15 Data already exists:<name>``; a certificate that fails to be added keeps KCM's
    own status (18 for a parse or chain validation failure, 15 for an empty one).
    """
    if item.prkn is not None:
        _check_with_key(kcm, item.certificates[0], item.name, item.prkn)
    try:
        kcm.check_new_chain(item.name, len(item.certificates))
    except StorageError as exc:
        raise _kcm_failure(exc, item.name, FccStatus.KCM_ERROR) from exc
    try:
        kcm.cert_chain_store(item.name, item.certificates)
    except StorageError as exc:
        raise _kcm_failure(exc, item.name) from exc


_FOUR_BYTE_NAMES: Final = tuple(sorted(FOUR_BYTE_INTEGER_PARAMS))


def is_four_byte_param(name: str) -> bool:
    """Whether FCC stores the parameter as exactly four bytes (by its name rule, prefixes included)."""
    return fcc_match(name, _FOUR_BYTE_NAMES) is not None


def config_bytes(param: ConfigParam) -> bytes:
    """Return the bytes FCC stores for a config param (``fcc_bundle_config_params_utils.c``).

    Integers become a little-endian uint64 (two's complement for negatives); text and byte
    strings are stored as received, and a tag 2 bignum as its byte string. For
    ``mbed.UseBootstrap``, ``mbed.MemoryTotalKB`` and ``mbed.FirstToClaim`` (and the
    prefixes FCC takes for them) the size is forced to four bytes whatever the value: the
    first four of the uint64, or the four bytes at a string's start in the bundle — a
    shorter string's following bundle bytes, a longer one's first four.

    Raises:
        DeviceError: 15 ``General error:<name>`` for one of those three without ``Data``
            (KCM refuses a NULL pointer with size 4).
    """
    four = is_four_byte_param(param.name)
    data = param.data
    if data is None:
        if four:
            raise DeviceError(KcmStatus.INVALID_PARAMETER.prefix + param.name, fcc_status=FccStatus.KCM_ERROR)
        return b""
    if isinstance(data, int) and not isinstance(data, BigNum):
        raw = (data % _U64).to_bytes(8, "little")
        return raw[:_WORD] if four else raw
    raw = data.raw if isinstance(data, BigNum) else wire_bytes(data) if isinstance(data, str) else data
    if not four:
        return raw
    if param.wire_word is not None:
        return param.wire_word
    return raw[:_WORD].ljust(_WORD, b"\0")


def set_current_time(clock: DeviceClock, param: ConfigParam) -> None:
    """``mbed.CurrentTime``: ``fcc_time_set()`` then ``pal_osSetStrongTime()``.

    An integer is taken as a uint64 (a negative one wraps to ``2**64 - |n|``): 0 clears the
    clock, a value below :data:`MIN_SETTABLE_TIME` is refused with 1 ``General error:``,
    anything else sets it. Text, bytes and a bignum leave the clock as it was: FCC reads
    an integer it never set there (an uninitialised variable); its Debug build answers as
    for an unset time (a Release build answers 1).
    """
    data = param.data
    if not isinstance(data, int) or isinstance(data, BigNum):
        return
    seconds = data % _U64
    if seconds == 0:
        clock.clear()
    elif seconds < MIN_SETTABLE_TIME:
        raise DeviceError.of(FccStatus.ERROR)
    else:
        clock.set(seconds)


def store_config(kcm: Kcm, clock: DeviceClock, param: ConfigParam) -> None:
    """Store a ``ConfigParams`` entry; ``mbed.CurrentTime`` (by FCC's name rule) sets the clock instead."""
    if fcc_match(param.name, (n.CURRENT_TIME,)) is not None:
        set_current_time(clock, param)
        return
    data = config_bytes(param)
    try:
        kcm.item_store(param.name, ItemType.CONFIG, data)
    except StorageError as exc:
        raise _kcm_failure(exc, param.name) from exc


def _csr_failure(status: KcmStatus) -> DeviceError:
    # CSR errors are stored without an item name: "<KCM prefix>".
    return DeviceError(status.prefix, fcc_status=status.fcc_status)


def process_csr(kcm: Kcm, request: CsrRequest) -> CsrResult:
    """Generate a P-256 key pair on the device, store it and return its CSR (``kcm_generate_keys_and_csr``).

    The keys are generated and stored first (name rule, ``17 Desired generated key name
    already exists:``); the CSR follows: extended key usage bits the device does not know
    (15), the subject by Mbed TLS's rules (18), the digest (18), key usage with no known
    bit (15). A failed CSR deletes the keys again. Every failure answers KCM's prefix
    without an item name, as FCC stores CSR errors.
    """
    name = request.prkn
    want_public = request.storage is not None and request.storage.public is not None
    try:
        check_name(name)
        if kcm.item_exists(name, ItemType.PRIVATE_KEY) or (
            want_public and kcm.item_exists(name, ItemType.PUBLIC_KEY)
        ):
            raise StorageError("generated key name exists", kcm_status=KcmStatus.KEY_EXIST)
    except StorageError as exc:
        raise _csr_failure(exc.kcm_status) from exc
    key = keys.generate_p256()
    der = _csr(key, request)
    kcm.item_store(name, ItemType.PRIVATE_KEY, keys.private_key_der(key))
    if want_public:
        kcm.item_store(name, ItemType.PUBLIC_KEY, keys.public_key_der(key))
    return CsrResult(name, der)


def _csr(key: keys.PrivateKey, request: CsrRequest) -> bytes:
    eku = request.ext_key_usage or 0
    if eku & ~_EKU_KNOWN:
        raise _csr_failure(KcmStatus.INVALID_PARAMETER)
    subject = wire_bytes(request.subject)
    try:
        subject_der(subject)
    except CryptoError as exc:
        raise _csr_failure(KcmStatus.CRYPTO_INVALID_NAME_FORMAT) from exc
    if request.md != _MD_SHA256:
        raise _csr_failure(KcmStatus.CRYPTO_INVALID_MD_TYPE)
    ku = request.key_usage or 0
    if ku and not ku & _KU_KNOWN:
        raise _csr_failure(KcmStatus.ERROR)
    return csr.build_csr(key, subject, ku & _KU_KNOWN or None, eku or None)
