"""AES-GCM sealing for secrets at rest (private keys, symmetric keys, root of trust).

A :class:`Sealer` holds an AES-256-GCM key derived with HKDF-SHA256 from a device
secret. Sealed blobs are ``version (1) || nonce (12) || ciphertext+tag``; the associated
data binds each blob to where it is stored (item type and name), so a blob copied onto
another item fails to open instead of silently becoming that item.
See ``docs/device.md`` for the threat model.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from provkit.errors import CryptoError

SECRET_SIZE: Final = 32
"""Size of a per-device secret in bytes."""

_VERSION: Final = b"\x01"
_NONCE_SIZE: Final = 12
_HKDF_INFO: Final = b"provkit kcm at-rest v1"


class SealError(CryptoError):
    """A sealed blob does not open: wrong secret, wrong item, or tampered bytes."""


def new_secret() -> bytes:
    """Return a fresh random device secret."""
    return secrets.token_bytes(SECRET_SIZE)


def load_or_create_secret(path: Path) -> bytes:
    """Read the device secret at ``path``, creating it (mode 0600) if it does not exist.

    The file is created with ``O_EXCL`` and mode 0600 in one step, so there is no moment
    where another user could read it, and it is synced to disk with its directory entry
    before the secret is used.

    Raises:
        CryptoError: the file exists but does not hold exactly 32 bytes, or cannot be read.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise CryptoError(f"cannot create device secret {path}: {exc}") from exc
    secret = new_secret()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
        handle.flush()
        os.fsync(handle.fileno())
    _sync_directory(path.parent)
    return secret


def _sync_directory(directory: Path) -> None:
    """Make a new directory entry durable.

    Without it a power cut could lose the secret file while the storage it seals
    survives, leaving every sealed item unreadable.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # a platform or file system without directory handles: nothing more can be done
    try:
        with contextlib.suppress(OSError):  # some file systems refuse it; the file itself is synced
            os.fsync(fd)
    finally:
        os.close(fd)


def _read_secret(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CryptoError(f"cannot read device secret {path}: {exc}") from exc
    if len(data) != SECRET_SIZE:
        raise CryptoError(f"device secret {path} holds {len(data)} bytes, expected {SECRET_SIZE}")
    return data


class Sealer:
    """Seal and open small secrets with a key derived from a device secret.

    Args:
        secret: the 32-byte device secret.

    Raises:
        CryptoError: the secret does not have 32 bytes.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SECRET_SIZE:
            raise CryptoError(f"device secret must be {SECRET_SIZE} bytes, got {len(secret)}")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` bound to ``associated``."""
        nonce = os.urandom(_NONCE_SIZE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, blob: bytes, associated: bytes) -> bytes:
        """Return the plaintext of a blob made by :meth:`seal` with the same ``associated``.

        Raises:
            SealError: wrong secret, wrong associated data, or altered bytes.
        """
        if len(blob) < 1 + _NONCE_SIZE + 16 or blob[:1] != _VERSION:
            raise SealError("sealed item is truncated or has an unknown version")
        nonce = blob[1 : 1 + _NONCE_SIZE]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_SIZE :], associated)
        except InvalidTag as exc:
            raise SealError("sealed item does not open with this device secret") from exc
