"""KCM: the key and configuration manager's secure storage on top of a backend.

Item types and their separate namespaces, name rules, DER checks, certificate chains,
factory items with backup copies, factory reset and erase follow
``factory-configurator-client/key-config-manager/`` and ``storage/`` of
PelionIoT/mbed-cloud-client. ``kcm_item_store`` checks an item's data before its name
(an empty item, then the key or certificate as the device's Mbed TLS reads it:
:mod:`provkit.crypto.mbedtls_pk`, :mod:`provkit.crypto.mbedtls_x509`), and the name
before it looks for an item of that name. Rollback-protected (RBP) items
(``factory_done``, ``entropy``, ``rot``, ``saved_time``) live in their own namespace of
the same backend, so one transaction covers them too.
Private keys, symmetric keys, the ROT and the Entropy are sealed with AES-GCM
(:mod:`provkit.crypto.aead`); the associated data is the item's type prefix and name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Final

from provkit.codes import KcmStatus
from provkit.crypto import keys, mbedtls_pk, mbedtls_x509, x509
from provkit.crypto.aead import Sealer, SealError, new_secret
from provkit.crypto.mbedtls_pk import MbedtlsKeyError, PkFault
from provkit.crypto.mbedtls_x509 import CertFault, MbedtlsCertError
from provkit.device.storage import StorageBackend
from provkit.errors import (
    CryptoError,
    ItemExistsError,
    ItemNotFoundError,
    SecretUnavailableError,
    StorageError,
)
from provkit.params import NAME_RULE, NameFault, name_fault
from provkit.wire.bundle import ENTROPY_SIZE

MAX_CHAIN_LENGTH: Final = 5
_CACHE_LIMIT: Final = 256
_SEAL_OVERHEAD: Final = 1 + 12 + 16


class ItemType(IntEnum):
    """``kcm_item_type_e``: each type is a separate namespace."""

    PRIVATE_KEY = 0
    PUBLIC_KEY = 1
    SYMMETRIC_KEY = 2
    CERTIFICATE = 3
    CONFIG = 4


_PREFIX: Final[dict[ItemType, str]] = {
    ItemType.PRIVATE_KEY: "PrvKey",
    ItemType.PUBLIC_KEY: "PubKey",
    ItemType.SYMMETRIC_KEY: "SymKey",
    ItemType.CERTIFICATE: "Cert",
    ItemType.CONFIG: "CfgParam",
}
_SEALED_TYPES: Final = frozenset({ItemType.PRIVATE_KEY, ItemType.SYMMETRIC_KEY})
ENTROPY: Final = "entropy"
"""The RBP item holding the 48-byte Entropy a bundle delivers."""
_SEALED_RBP: Final = frozenset({"rot", ENTROPY})
_RBP_NS: Final = "rbp"
_META_NS: Final = "meta"
_KEYCHECK: Final = "keycheck"
_KEYCHECK_PLAIN: Final = b"provkit kcm secret check"


def _ns(working: bool, prefix: str) -> str:
    return ("w." if working else "b.") + prefix


def _chain_prefix(index: int) -> str:
    # Index 0 is the certificate itself (namespace Cert); later links get Crt<i>, as KCM.
    return _PREFIX[ItemType.CERTIFICATE] if index == 0 else f"Crt{index}"


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """One stored item, as :meth:`Kcm.list_items` reports it.

    Attributes:
        name: the item name.
        type: the item type (namespace).
        size: plaintext size in bytes (the leaf's size for a chain).
        is_factory: whether a factory backup copy exists.
        chain_length: number of certificates (1 for anything that is not a chain).
    """

    name: str
    type: ItemType
    size: int
    is_factory: bool
    chain_length: int = 1


_KEY_FAULTS: Final = {
    PkFault.PEM: KcmStatus.INVALID_PARAMETER,
    PkFault.FORMAT: KcmStatus.CRYPTO_PK_KEY_INVALID_FORMAT,
    PkFault.PUBKEY_LENGTH: KcmStatus.CRYPTO_INVALID_PK_PUBKEY,
    PkFault.UNKNOWN_ALGORITHM: KcmStatus.CRYPTO_PK_UNKNOWN_PK_ALG,
    PkFault.UNKNOWN_CURVE: KcmStatus.CRYPTO_UNSUPPORTED_CURVE,
    PkFault.INVALID_POINT: KcmStatus.CRYPTO_ECP_INVALID_KEY,
    PkFault.OTHER: KcmStatus.CRYPTO_PARSING_DER_PUBLIC_KEY,
}
"""KCM status for each key fault (``pal_plat_pkMbedtlsToPalError`` then ``cs_error_handler``)."""

_CERT_FAULTS: Final = {
    CertFault.PARSE: KcmStatus.CRYPTO_PARSING_DER_CERT,
    CertFault.UNKNOWN_SIGNATURE_ALGORITHM: KcmStatus.CRYPTO_INVALID_MD_TYPE,
    CertFault.UNKNOWN_CURVE: KcmStatus.CRYPTO_UNSUPPORTED_CURVE,
    CertFault.ATTRIBUTE: KcmStatus.CRYPTO_INVALID_X509_ATTR,
}
"""KCM status for each certificate fault (``pal_plat_x509CertParse`` then ``cs_error_handler``)."""

_NAME_FAULTS: Final = {
    NameFault.EMPTY: KcmStatus.INVALID_PARAMETER,
    NameFault.TOO_LONG: KcmStatus.FILE_NAME_TOO_LONG,
    NameFault.INVALID_CHARACTERS: KcmStatus.FILE_NAME_INVALID,
}


@lru_cache(maxsize=_CACHE_LIMIT)
def device_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate as the device's Mbed TLS takes it, remembering recent ones.

    A line sends the same CA and update certificates to every device, and verification
    re-reads what was stored: parsed certificates are immutable, so they are shared.

    Raises:
        MbedtlsCertError: the device cannot take it (``fault`` says how it reports that).
    """
    fault = mbedtls_x509.certificate_fault(der)
    if fault is not None:
        raise MbedtlsCertError(fault)
    try:
        cert = x509.load_certificate(der)
        x509.check_fields_decode(cert)
    except CryptoError as exc:
        raise MbedtlsCertError(CertFault.PARSE, str(exc)) from exc
    return cert


def check_name(name: str) -> None:
    """Apply KCM's name rule (:mod:`provkit.params.kcm_name`) with KCM's status for each fault.

    Raises:
        StorageError: ``INVALID_PARAMETER`` (empty), ``FILE_NAME_TOO_LONG`` or ``FILE_NAME_INVALID``.
    """
    fault = name_fault(name)
    if fault is not None:
        raise StorageError(
            f"item name {name!r} is {fault.value}: KCM names are {NAME_RULE}",
            kcm_status=_NAME_FAULTS[fault],
            item=name,
        )


class Kcm:
    """Secure storage for keys, certificates and configuration items.

    Args:
        backend: where items live (:class:`~provkit.device.storage.SqliteStorage` or
            :class:`~provkit.device.storage.MemoryStorage`).
        secret: the 32-byte device secret; default: the backend's own secret.

    Raises:
        StorageError: ``FILE_CORRUPTED`` when the secret does not match the one the
            storage was created with.
    """

    def __init__(self, backend: StorageBackend, *, secret: bytes | None = None) -> None:
        self.backend = backend
        check = backend.get(_META_NS, _KEYCHECK)
        if secret is None:
            secret = self._find_secret(backend, sealed_before=check is not None)
        try:
            self._sealer = Sealer(secret)
        except CryptoError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.INVALID_PARAMETER) from exc
        self._check_secret(check)
        if not backend.read_only:
            self._seal_clear_rbp_items()

    @staticmethod
    def _find_secret(backend: StorageBackend, *, sealed_before: bool) -> bytes:
        """The backend's secret; a new one only for a store that has sealed nothing yet.

        For a store that has, a fresh secret could never open its items. A read-only
        store that has sealed nothing needs no secret at all: a throwaway one is used.
        """
        if sealed_before or not backend.read_only:
            return backend.device_secret(create=not sealed_before)
        try:
            return backend.device_secret(create=False)
        except SecretUnavailableError:
            return new_secret()

    def _check_secret(self, check: bytes | None) -> None:
        if check is None:
            if not self.backend.read_only:
                self.backend.put(_META_NS, _KEYCHECK, self._sealer.seal(_KEYCHECK_PLAIN, _KEYCHECK.encode()))
            return
        try:
            self._sealer.open(check, _KEYCHECK.encode())
        except SealError as exc:
            raise StorageError(
                "the device secret does not match this storage (wrong or replaced .secret file)",
                kcm_status=KcmStatus.FILE_CORRUPTED,
            ) from exc

    def _seal_clear_rbp_items(self) -> None:
        """Seal an Entropy item a provkit before 0.2 stored in clear (48 bytes, no seal header)."""
        blob = self.backend.get(_RBP_NS, ENTROPY)
        if blob is not None and len(blob) == ENTROPY_SIZE:
            self.rbp_set(ENTROPY, blob)

    # ------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self, *, keep_on: tuple[type[BaseException], ...] = ()) -> Iterator[Kcm]:
        """Group operations in one durable step: an exception undoes every change inside.

        Transactions nest; only the outermost commit makes changes durable.

        Args:
            keep_on: exceptions that keep the changes made before them (committed, then
                re-raised), as a device that stores item by item keeps what it stored
                before a failure; any other exception rolls everything back.
        """
        self.backend.begin()
        try:
            yield self
        except keep_on:
            self.backend.commit()
            raise
        except BaseException:
            self.backend.rollback()
            raise
        self.backend.commit()

    # ------------------------------------------------------------ parsing helpers

    def certificate(self, der: bytes) -> x509.Certificate:
        """Parse a DER certificate as the device does (:func:`device_certificate`).

        Raises:
            MbedtlsCertError: the device cannot take it (``fault`` says how it reports that).
        """
        return device_certificate(bytes(der))

    def private_key(self, name: str) -> keys.PrivateKey:
        """Load a stored private key as the device's Mbed TLS reads it.

        Raises:
            ItemNotFoundError: no such key.
            StorageError: the name is not a KCM name, or the stored key does not parse.
        """
        check_name(name)
        data = self.item_get(name, ItemType.PRIVATE_KEY)
        try:
            return mbedtls_pk.parse_private_key(data)
        except MbedtlsKeyError as exc:
            raise StorageError(str(exc), kcm_status=_KEY_FAULTS[exc.fault], item=name) from exc

    def check_data(self, name: str, item_type: ItemType, data: bytes) -> None:
        """``kcm_item_store``'s data checks, which come before the name's.

        The data must not be empty (but for config items) and a key or certificate must be
        one the device's Mbed TLS takes.

        Raises:
            StorageError: ``ITEM_IS_EMPTY`` or the device's status for a key or certificate.
        """
        if item_type is not ItemType.CONFIG and not data:
            raise StorageError("item data is empty", kcm_status=KcmStatus.ITEM_IS_EMPTY, item=name)
        try:
            if item_type is ItemType.PRIVATE_KEY:
                mbedtls_pk.parse_private_key(data)
            elif item_type is ItemType.PUBLIC_KEY:
                mbedtls_pk.parse_public_key(data)
            elif item_type is ItemType.CERTIFICATE:
                self.certificate(data)
        except MbedtlsKeyError as exc:
            raise StorageError(str(exc), kcm_status=_KEY_FAULTS[exc.fault], item=name) from exc
        except MbedtlsCertError as exc:
            raise StorageError(str(exc), kcm_status=_CERT_FAULTS[exc.fault], item=name) from exc

    def _validate(self, name: str, item_type: ItemType, data: bytes) -> None:
        self.check_data(name, item_type, data)
        check_name(name)

    # ------------------------------------------------------------ raw access

    def _write(self, prefix: str, name: str, data: bytes, *, sealed: bool, factory: bool) -> None:
        blob = self._sealer.seal(data, f"{prefix}/{name}".encode()) if sealed else data
        self.backend.put(_ns(True, prefix), name, blob)
        if factory:
            # Backup copies keep the same associated data, so reset can copy them verbatim.
            self.backend.put(_ns(False, prefix), name, blob)

    def _read(self, prefix: str, name: str, *, sealed: bool) -> bytes | None:
        blob = self.backend.get(_ns(True, prefix), name)
        if blob is None or not sealed:
            return blob
        try:
            return self._sealer.open(blob, f"{prefix}/{name}".encode())
        except SealError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.FILE_CORRUPTED, item=name) from exc

    # ------------------------------------------------------------ items

    def item_store(self, name: str, item_type: ItemType, data: bytes, *, is_factory: bool = True) -> None:
        """Validate and store an item.

        Raises:
            StorageError: name rules, empty data or a DER parse failure (with ``kcm_status``).
            ItemExistsError: an item of that type and name exists (``FILE_EXIST``).
        """
        item_type = ItemType(item_type)
        self._validate(name, item_type, data)
        if self.item_exists(name, item_type):
            raise ItemExistsError(f"{_PREFIX[item_type]} item {name!r} already exists", item=name)
        self._write(_PREFIX[item_type], name, data, sealed=item_type in _SEALED_TYPES, factory=is_factory)

    def item_get(self, name: str, item_type: ItemType) -> bytes:
        """Return an item's data (a chain's leaf certificate for chains).

        Raises:
            ItemNotFoundError: no item of that type and name.
        """
        item_type = ItemType(item_type)
        data = self._read(_PREFIX[item_type], name, sealed=item_type in _SEALED_TYPES)
        if data is None:
            raise ItemNotFoundError(f"{_PREFIX[item_type]} item {name!r} does not exist", item=name)
        return data

    def item_exists(self, name: str, item_type: ItemType) -> bool:
        """Return whether an item of that type and name is stored."""
        return self.backend.get(_ns(True, _PREFIX[ItemType(item_type)]), name) is not None

    def item_delete(self, name: str, item_type: ItemType) -> None:
        """Delete a working item (a factory backup stays for :meth:`factory_reset`).

        Raises:
            ItemNotFoundError: no item of that type and name.
        """
        item_type = ItemType(item_type)
        if not self.backend.delete(_ns(True, _PREFIX[item_type]), name):
            raise ItemNotFoundError(f"{_PREFIX[item_type]} item {name!r} does not exist", item=name)
        if item_type is ItemType.CERTIFICATE:
            for index in range(1, MAX_CHAIN_LENGTH):
                self.backend.delete(_ns(True, _chain_prefix(index)), name)

    # ------------------------------------------------------------ chains

    def check_new_chain(self, name: str, length: int) -> None:
        """``kcm_cert_chain_create``'s checks: the name, 1 to 5 certificates, no certificate of that name.

        Raises:
            StorageError: the name rule's status or ``INVALID_NUM_OF_CERT_IN_CHAIN``.
            ItemExistsError: a certificate (single or chain) of that name exists.
        """
        check_name(name)
        if not 1 <= length <= MAX_CHAIN_LENGTH:
            raise StorageError(
                f"chain has {length} certificates; 1 to 5 are supported",
                kcm_status=KcmStatus.INVALID_NUM_OF_CERT_IN_CHAIN,
                item=name,
            )
        if self.item_exists(name, ItemType.CERTIFICATE):
            raise ItemExistsError(f"certificate {name!r} already exists", item=name)

    def cert_chain_store(
        self, name: str, ders: list[bytes] | tuple[bytes, ...], *, is_factory: bool = True
    ) -> None:
        """Store a chain, leaf first; each certificate must be signed by the next one.

        As ``kcm_cert_chain_create`` then ``kcm_cert_chain_add_next`` for each certificate:
        the chain checks (:meth:`check_new_chain`), then each certificate in turn must be
        non-empty (``INVALID_PARAMETER``), parse, and verify the one before it. Nothing is
        stored unless the whole chain passes.

        Raises:
            StorageError: a chain check, an empty or unparsable certificate, or
                ``CERTIFICATE_CHAIN_VERIFICATION_FAILED``.
            ItemExistsError: a certificate of that name exists.
        """
        self.check_new_chain(name, len(ders))
        previous: x509.Certificate | None = None
        for der in ders:
            if not der:
                raise StorageError(
                    "empty certificate in chain", kcm_status=KcmStatus.INVALID_PARAMETER, item=name
                )
            self.check_data(name, ItemType.CERTIFICATE, der)
            cert = self.certificate(der)
            if previous is not None:
                try:
                    x509.verify_signed_by(previous, cert)
                except CryptoError as exc:
                    raise StorageError(
                        str(exc), kcm_status=KcmStatus.CERTIFICATE_CHAIN_VERIFICATION_FAILED, item=name
                    ) from exc
            previous = cert
        for index, der in enumerate(ders):
            self._write(_chain_prefix(index), name, der, sealed=False, factory=is_factory)

    def cert_chain_get(self, name: str) -> list[bytes]:
        """Return a chain's DER certificates, leaf first (a single certificate is a chain of 1).

        Raises:
            ItemNotFoundError: no certificate of that name.
        """
        chain = [self.item_get(name, ItemType.CERTIFICATE)]
        for index in range(1, MAX_CHAIN_LENGTH):
            der = self.backend.get(_ns(True, _chain_prefix(index)), name)
            if der is None:
                break
            chain.append(der)
        return chain

    # ------------------------------------------------------------ listing, reset

    def list_items(self) -> list[ItemInfo]:
        """Return every working item, by type then name."""
        infos = []
        for item_type, prefix in _PREFIX.items():
            backups = {name for name, _ in self.backend.entries(_ns(False, prefix))}
            for name, blob in self.backend.entries(_ns(True, prefix)):
                size = len(blob) - _SEAL_OVERHEAD if item_type in _SEALED_TYPES else len(blob)
                length = 1
                if item_type is ItemType.CERTIFICATE:
                    length = len(self.cert_chain_get(name))
                infos.append(ItemInfo(name, item_type, size, name in backups, length))
        return infos

    def _prefixes(self) -> list[str]:
        return [*_PREFIX.values(), *(_chain_prefix(i) for i in range(1, MAX_CHAIN_LENGTH))]

    def factory_reset(self) -> None:
        """Delete every working item, then restore the factory items from their backups.

        RBP items (factory_done, entropy, ROT, clock) are kept, as KCM does.
        """
        with self.transaction():
            for prefix in self._prefixes():
                for name, _ in self.backend.entries(_ns(True, prefix)):
                    self.backend.delete(_ns(True, prefix), name)
                for name, blob in self.backend.entries(_ns(False, prefix)):
                    self.backend.put(_ns(True, prefix), name, blob)

    def erase(self) -> None:
        """Delete everything: items, backups and RBP items (``fcc_storage_delete``)."""
        with self.transaction():
            self.backend.clear()
            self._check_secret(None)

    # ------------------------------------------------------------ rollback-protected items

    def rbp_get(self, name: str) -> bytes | None:
        """Return a rollback-protected item (``entropy``, ``rot``, ``factory_done``, ``saved_time``)."""
        blob = self.backend.get(_RBP_NS, name)
        if blob is None or name not in _SEALED_RBP:
            return blob
        if name == ENTROPY and len(blob) == ENTROPY_SIZE:
            return blob  # stored in clear by an older provkit; sealed when the store is next opened to write
        try:
            return self._sealer.open(blob, f"{_RBP_NS}/{name}".encode())
        except SealError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.RBP_ERROR, item=name) from exc

    def rbp_set(self, name: str, data: bytes) -> None:
        """Write a rollback-protected item (replacing it)."""
        blob = self._sealer.seal(data, f"{_RBP_NS}/{name}".encode()) if name in _SEALED_RBP else data
        self.backend.put(_RBP_NS, name, blob)

    def rbp_delete(self, name: str) -> None:
        """Remove a rollback-protected item (nothing happens if there is none)."""
        self.backend.delete(_RBP_NS, name)
