"""File-system helpers for the stores: atomic replacement, explicit modes, advisory locks.

Modes are set with ``chmod`` after creation, so the process umask cannot loosen or
tighten them (mbl-cli relied on ``mkdir(mode=…)``, which the umask masks, and left every
file at the umask default — a private key at 0644; mbl-manifest-peers.md §1.2).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from provkit.errors import StoreError


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a part.

    The bytes go to a temporary file in the same directory (same file system, so the
    rename is atomic), are flushed to disk, get ``mode``, and ``os.replace`` the target.

    Raises:
        StoreError: the directory is not writable or the disk is full.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"cannot write in {path.parent}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise StoreError(f"cannot write {path}: {exc}") from exc
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename is durable only once its directory is)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_dir(path: Path, mode: int, allowed: int) -> None:
    """Create ``path`` (and parents) with ``mode``; tighten an existing one to ``allowed`` bits.

    A team administrator may have set a group and the setgid bit on an existing store;
    those are kept, only permissions beyond ``allowed`` (e.g. world access) are removed.
    Only the owner may chmod: a team member opening another member's directory leaves
    its mode as it is rather than being locked out of the shared store.

    Raises:
        StoreError: the directory cannot be created or is not a directory.
    """
    try:
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(mode)
            return
        if not path.is_dir():
            raise StoreError(f"{path} exists and is not a directory")
        info = path.stat()
        current = info.st_mode & 0o7777
        if current & ~allowed and info.st_uid == os.geteuid():
            path.chmod(current & allowed)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc}") from exc


@contextlib.contextmanager
def locked(directory: Path, *, exclusive: bool, mode: int) -> Iterator[None]:
    """Hold an ``flock`` on ``directory/.lock`` for the duration of the block.

    Every writer of a shared team store takes the exclusive lock around its
    read-modify-write of ``config.json``; readers take the shared lock, so they never see
    a certificate directory between its removal and its replacement.

    Raises:
        StoreError: the lock file cannot be opened.
    """
    lock_path = directory / ".lock"
    try:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, mode)
        except PermissionError:
            # flock works on a read-only descriptor: a team member who may not write the
            # lock file (another member created it) can still take the lock.
            fd = os.open(lock_path, os.O_RDONLY)
    except OSError as exc:
        raise StoreError(f"cannot open lock {lock_path}: {exc}") from exc
    with contextlib.suppress(OSError):
        os.fchmod(fd, mode)  # the creator's umask must not lock the team out; others may not chmod
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
