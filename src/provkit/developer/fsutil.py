"""File-system helpers for the stores: atomic replacement, explicit modes, advisory locks.

Modes are set with ``chmod`` after creation, so the process umask cannot loosen or
tighten them (mbl-cli relied on ``mkdir(mode=…)``, which the umask masks, and left every
file at the umask default — a private key at 0644; ``mbl/cli/utils/store.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

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


PARENT_MODE: Final = 0o750
"""Mode of the directories provkit creates above a store (e.g. ``~/.mbl-store``): the
group may pass through to a team store below, others may not look in."""


def make_dirs(path: Path, mode: int, parent_mode: int = PARENT_MODE) -> bool:
    """Create ``path`` with ``mode`` and each missing parent with ``parent_mode``.

    Existing directories are left as they are. Returns whether ``path`` was created.

    Raises:
        StoreError: a directory cannot be created, or ``path`` exists and is not one.
    """
    try:
        if path.is_dir():
            return False
        if path.exists() or path.is_symlink():
            raise StoreError(f"{path} exists and is not a directory")
        missing = [path, *(parent for parent in path.parents if not parent.exists())]
        for directory in reversed(missing):
            directory.mkdir(exist_ok=True)
            directory.chmod(mode if directory == path else parent_mode)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc}") from exc
    return True


def set_mode(path: Path, mode: int, keep: int = 0) -> None:
    """Bring ``path`` to ``mode`` (plus the bits of ``keep`` it already has), if ours to change.

    Only the owner may chmod: a team member opening another member's store leaves it as
    it is rather than being locked out of the shared store. Symbolic links are not
    followed (nothing provkit writes is one), and a path that vanished is skipped.
    A team administrator's setgid bit on a directory is kept with ``keep=0o2000``.

    Raises:
        StoreError: the owner's chmod failed.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot inspect {path}: {exc}") from exc
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return
    current = stat.S_IMODE(info.st_mode)
    wanted = mode | (current & keep)
    if current != wanted:
        try:
            path.chmod(wanted)
        except OSError as exc:
            raise StoreError(f"cannot set the mode of {path}: {exc}") from exc


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
