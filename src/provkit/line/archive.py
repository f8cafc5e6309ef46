"""What becomes of a batch's bundle files once their attempt is over: sealed or removed.

A ``by_tool`` bundle holds the device's private key in clear. It is needed until the
device has answered and the answer was judged; after that the only reason to keep it
is an audit trail. So a bundle whose attempt reached a final state (verified, failed or
superseded) is, by default, **sealed** to the station's bundle archive key — encrypted
to a P-256 public key (ECIES: ephemeral ECDH, HKDF-SHA256, AES-256-GCM), written next to
it as ``<bundle>.sealed`` (mode 0600; by the prepare worker that wrote the bundle, or
when it is settled) before the clear file is deleted — or simply **removed**. Sealing
needs only the public key, so the private half can be kept off the station (an
auditor's machine, a safe); ``provkit batch unseal`` opens a sealed bundle with it.
The archive key pair is created in the FCU keystore on first use
(``bundle_archive.pub``, ``bundle_archive_key.pem`` 0600) unless a public key is given.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from provkit.crypto.keys import (
    PrivateKey,
    generate_p256,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_der,
    public_key_pem,
    require_p256,
)
from provkit.crypto.seal import seal_to, unseal
from provkit.errors import BatchError, CryptoError
from provkit.line.layout import write_atomic

ARCHIVE_PUBLIC_KEY: Final = "bundle_archive.pub"
"""File name of the archive public key in the FCU keystore."""

ARCHIVE_PRIVATE_KEY: Final = "bundle_archive_key.pem"
"""File name of the archive private key in the FCU keystore (move it off the station)."""

SEALED_SUFFIX: Final = ".sealed"
"""Suffix of a sealed bundle file."""

_AAD_PREFIX: Final = b"provkit bundle archive v1:"


class SettledBundles(StrEnum):
    """What the line does with the bundle of an attempt that is over."""

    SEAL = "seal"
    """Encrypt it to the archive key, then delete the clear file (the default)."""
    REMOVE = "remove"
    """Delete it."""


def _associated(bundle_name: str) -> bytes:
    # Binds a sealed blob to its bundle's file name (attempt id and endpoint), so a
    # sealed file renamed to another device's name fails to open instead of misleading.
    return _AAD_PREFIX + bundle_name.encode()


def sealed_path(bundle: Path) -> Path:
    """Where the sealed copy of ``bundle`` is written."""
    return bundle.with_name(bundle.name + SEALED_SUFFIX)


def write_sealed_copy(bundle: Path, clear: bytes, public_key_der: bytes) -> None:
    """Write ``bundle``'s sealed copy next to it (0600, renamed into place).

    Batches call it where the bundle is written, in the prepare workers: sealing is
    public-key work, done there in parallel rather than in the process that talks to the
    devices. Like the bundle itself, the copy is not synced (see ``write_atomic``).

    Raises:
        OSError: the copy cannot be written.
    """
    write_atomic(sealed_path(bundle), seal_to(public_key_der, clear, _associated(bundle.name)), durable=False)


@dataclass(frozen=True, slots=True)
class BundleArchive:
    """Seals or removes the bundles of finished attempts.

    Attributes:
        mode: seal (default) or remove.
        public_key_der: the archive public key (SubjectPublicKeyInfo DER) when sealing.
    """

    mode: SettledBundles = SettledBundles.SEAL
    public_key_der: bytes | None = None

    @classmethod
    def open(
        cls, keystore: Path, mode: SettledBundles = SettledBundles.SEAL, public_key_file: Path | None = None
    ) -> BundleArchive:
        """The archive of a station: ``public_key_file``, else the keystore's key pair (created if missing).

        Raises:
            BatchError: the public key cannot be read, is not P-256, or the key pair cannot be written.
        """
        if mode is SettledBundles.REMOVE:
            return cls(mode)
        path = public_key_file or keystore / ARCHIVE_PUBLIC_KEY
        if public_key_file is None and not path.exists():
            _create_key_pair(keystore)
        try:
            key = load_public_key(path.read_bytes())
            require_p256(key)
        except (OSError, CryptoError) as exc:
            raise BatchError(
                f"bundle archive key {path} is unusable: {exc}",
                hint="give a P-256 public key (PEM or DER), or have settled bundles removed",
            ) from exc
        return cls(mode, public_key_der(key))

    def settle(self, bundle: Path) -> bool:
        """Seal or remove ``bundle``; ``False`` when there is no clear file (already settled).

        The sealed copy is complete on disk before the clear file goes, so a process killed
        in between leaves both, and the next call seals again.

        Raises:
            BatchError: the bundle cannot be read, sealed or deleted.
        """
        if not bundle.exists():
            return False
        try:
            # A bundle sealed where it was written (write_sealed_copy) only loses its clear file.
            if self.mode is SettledBundles.SEAL and not sealed_path(bundle).exists():
                assert self.public_key_der is not None  # open() sets it for sealing
                write_sealed_copy(bundle, bundle.read_bytes(), self.public_key_der)
            with contextlib.suppress(FileNotFoundError):
                bundle.unlink()
        except FileNotFoundError:
            return False  # settled meanwhile by another caller
        except OSError as exc:
            raise BatchError(f"cannot {self.mode.value} bundle {bundle}: {exc}") from exc
        return True


def _create_key_pair(keystore: Path) -> None:
    # Stations sharing a keystore may get here at once: the private key is linked into
    # place with link(2), which fails when the name exists, so exactly one key pair wins
    # and nobody seals to a public key whose private half was overwritten.
    key = generate_p256()
    private, public = keystore / ARCHIVE_PRIVATE_KEY, keystore / ARCHIVE_PUBLIC_KEY
    try:
        keystore.mkdir(parents=True, exist_ok=True)
        private_tmp = _written_temp(private, private_key_pem(key), 0o600)
        public_tmp = _written_temp(public, public_key_pem(key), 0o644)
        try:
            os.link(private_tmp, private)
        except FileExistsError:
            _wait_for(public)  # another station is creating the pair
            return
        finally:
            private_tmp.unlink()
        try:
            os.link(public_tmp, public)
        finally:
            public_tmp.unlink()
    except OSError as exc:
        raise BatchError(f"cannot create the bundle archive key in {keystore}: {exc}") from exc


def _written_temp(path: Path, data: bytes, mode: int) -> Path:
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return temp


def _wait_for(path: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise BatchError(
                f"{path.parent / ARCHIVE_PRIVATE_KEY} exists without {path.name}",
                hint="restore the archive public key, or move the private key away to start a new pair",
            )
        time.sleep(0.05)


def unseal_bundle(sealed: Path, private_key: PrivateKey) -> bytes:
    """Return the clear bundle of a ``.sealed`` file, opened with the archive private key.

    Raises:
        BatchError: the file cannot be read, is not a sealed bundle, or does not open with this
            key (another key, a renamed file, or altered bytes).
    """
    if not sealed.name.endswith(SEALED_SUFFIX):
        raise BatchError(f"{sealed} is not a sealed bundle (its name does not end with {SEALED_SUFFIX})")
    try:
        blob = sealed.read_bytes()
    except OSError as exc:
        raise BatchError(f"cannot read {sealed}: {exc}") from exc
    try:
        return unseal(private_key, blob, _associated(sealed.name[: -len(SEALED_SUFFIX)]))
    except CryptoError as exc:
        raise BatchError(f"{sealed} does not open with this archive key: {exc}") from exc


def load_archive_private_key(path: Path) -> PrivateKey:
    """Read the archive private key (PEM or DER).

    Raises:
        BatchError: the file cannot be read or holds no P-256 private key.
    """
    try:
        key = load_private_key(path.read_bytes())
        require_p256(key)
    except (OSError, CryptoError) as exc:
        raise BatchError(f"archive private key {path} is unusable: {exc}") from exc
    return key


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` (e.g. an unsealed bundle) to ``path``, readable by its owner only.

    Raises:
        BatchError: the file cannot be written.
    """
    try:
        write_atomic(path, data)  # created 0600 (see write_atomic)
    except OSError as exc:
        raise BatchError(f"cannot write {path}: {exc}") from exc
