"""KCM: the key and configuration manager's secure storage on top of a backend.

Item types and their separate namespaces, name rules, DER checks, certificate chains,
factory items with backup copies, factory reset and erase follow pelion-fcc.md §5.
Rollback-protected (RBP) items (``factory_done``, ``entropy``, ``rot``, ``saved_time``)
live in their own namespace of the same backend, so one transaction covers them too.
Private keys, symmetric keys and the ROT are sealed with AES-GCM
(:mod:`provkit.crypto.aead`); the associated data is the item's type prefix and name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from provkit.codes import KcmStatus
from provkit.crypto import keys, x509
from provkit.crypto.aead import Sealer, SealError
from provkit.device.storage import StorageBackend
from provkit.errors import CryptoError, ItemExistsError, ItemNotFoundError, StorageError
from provkit.params import NAME_RULE, NameFault, name_fault

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
_SEALED_RBP: Final = frozenset({"rot"})
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


_NAME_FAULTS: Final = {
    NameFault.EMPTY: KcmStatus.INVALID_PARAMETER,
    NameFault.TOO_LONG: KcmStatus.FILE_NAME_TOO_LONG,
    NameFault.INVALID_CHARACTERS: KcmStatus.FILE_NAME_INVALID,
}


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
        try:
            self._sealer = Sealer(backend.device_secret() if secret is None else secret)
        except CryptoError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.INVALID_PARAMETER) from exc
        self._certs: dict[bytes, x509.Certificate] = {}
        self._check_secret()

    def _check_secret(self) -> None:
        check = self.backend.get(_META_NS, _KEYCHECK)
        if check is None:
            self.backend.put(_META_NS, _KEYCHECK, self._sealer.seal(_KEYCHECK_PLAIN, _KEYCHECK.encode()))
            return
        try:
            self._sealer.open(check, _KEYCHECK.encode())
        except SealError as exc:
            raise StorageError(
                "the device secret does not match this storage (wrong or replaced .secret file)",
                kcm_status=KcmStatus.FILE_CORRUPTED,
            ) from exc

    # ------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[Kcm]:
        """Group operations all-or-nothing: any exception undoes every change inside.

        Transactions nest; only the outermost commit makes changes durable.
        """
        self.backend.begin()
        try:
            yield self
        except BaseException:
            self.backend.rollback()
            raise
        self.backend.commit()

    # ------------------------------------------------------------ parsing helpers

    def certificate(self, der: bytes) -> x509.Certificate:
        """Parse a DER certificate, caching by bytes (verification re-reads the same ones).

        Raises:
            CryptoError: not a DER certificate.
        """
        cert = self._certs.get(der)
        if cert is None:
            if der[:1] != b"\x30":
                raise CryptoError("not a DER certificate")
            cert = x509.load_certificate(der)
            x509.check_fields_decode(cert)
            if len(self._certs) >= _CACHE_LIMIT:
                self._certs.clear()
            self._certs[der] = cert
        return cert

    def private_key(self, name: str) -> keys.PrivateKey:
        """Load a stored private key.

        Raises:
            ItemNotFoundError: no such key.
        """
        return keys.load_private_key(self.item_get(name, ItemType.PRIVATE_KEY))

    def _validate(self, name: str, item_type: ItemType, data: bytes) -> None:
        check_name(name)
        if item_type is not ItemType.CONFIG and not data:
            raise StorageError("item data is empty", kcm_status=KcmStatus.ITEM_IS_EMPTY, item=name)
        try:
            if item_type is ItemType.PRIVATE_KEY:
                self._check_key(data, private=True)
            elif item_type is ItemType.PUBLIC_KEY:
                self._check_key(data, private=False)
            elif item_type is ItemType.CERTIFICATE:
                self.certificate(data)
        except keys.UnsupportedCurveError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.CRYPTO_UNSUPPORTED_CURVE, item=name) from exc
        except CryptoError as exc:
            status = {
                ItemType.PRIVATE_KEY: KcmStatus.CRYPTO_PARSING_DER_PRIVATE_KEY,
                ItemType.PUBLIC_KEY: KcmStatus.CRYPTO_PARSING_DER_PUBLIC_KEY,
            }.get(item_type, KcmStatus.CRYPTO_PARSING_DER_CERT)
            raise StorageError(str(exc), kcm_status=status, item=name) from exc

    @staticmethod
    def _check_key(data: bytes, *, private: bool) -> None:
        if data[:1] != b"\x30":  # KCM takes DER only; PEM text must not sneak in
            raise CryptoError("key is not DER")
        key = keys.load_private_key(data) if private else keys.load_public_key(data)
        keys.require_p256(key)

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

    def cert_chain_store(
        self, name: str, ders: list[bytes] | tuple[bytes, ...], *, is_factory: bool = True
    ) -> None:
        """Store a chain, leaf first; each certificate must be signed by the next one.

        Raises:
            StorageError: ``INVALID_NUM_OF_CERT_IN_CHAIN`` (not 1–5 certificates), a parse
                failure, or ``CERTIFICATE_CHAIN_VERIFICATION_FAILED``.
            ItemExistsError: a certificate of that name exists.
        """
        check_name(name)
        if not 1 <= len(ders) <= MAX_CHAIN_LENGTH:
            raise StorageError(
                f"chain has {len(ders)} certificates; 1 to 5 are supported",
                kcm_status=KcmStatus.INVALID_NUM_OF_CERT_IN_CHAIN,
                item=name,
            )
        certs = []
        for der in ders:
            self._validate(name, ItemType.CERTIFICATE, der)
            certs.append(self.certificate(der))
        for cert, issuer in itertools.pairwise(certs):
            try:
                x509.verify_signed_by(cert, issuer)
            except CryptoError as exc:
                raise StorageError(
                    str(exc), kcm_status=KcmStatus.CERTIFICATE_CHAIN_VERIFICATION_FAILED, item=name
                ) from exc
        if self.item_exists(name, ItemType.CERTIFICATE):
            raise ItemExistsError(f"certificate {name!r} already exists", item=name)
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
            self._check_secret()

    # ------------------------------------------------------------ rollback-protected items

    def rbp_get(self, name: str) -> bytes | None:
        """Return a rollback-protected item (``entropy``, ``rot``, ``factory_done``, ``saved_time``)."""
        blob = self.backend.get(_RBP_NS, name)
        if blob is None or name not in _SEALED_RBP:
            return blob
        try:
            return self._sealer.open(blob, f"{_RBP_NS}/{name}".encode())
        except SealError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.RBP_ERROR, item=name) from exc

    def rbp_set(self, name: str, data: bytes) -> None:
        """Write a rollback-protected item (replacing it)."""
        blob = self._sealer.seal(data, f"{_RBP_NS}/{name}".encode()) if name in _SEALED_RBP else data
        self.backend.put(_RBP_NS, name, blob)
