"""What the fs group reads and writes: mounted file systems, as Zephyr's VFS presents them.

A :class:`Mount` answers the few operations Zephyr's ``fs_mgmt`` performs (stat, open for
writing, write at the end or from 0, read at an offset) and fails with the fs group's
return code, as ``fs_mgmt.c`` maps the file system's errno. :class:`DirectoryMount` keeps
ordinary files in a host directory (a LittleFS partition on a real board).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Protocol

from smp.file_management import FS_MGMT_ERR

from provkit.errors import SmpDeviceError
from provkit.wire.smp import FS_GROUP, describe_rc, provkit_code

DEFAULT_MAX_FILE_BYTES: Final = 1 << 20
"""Largest ordinary file the virtual device stores (its partition's size)."""


def fault(rc: FS_MGMT_ERR, why: str, *, length: int | None = None) -> SmpDeviceError:
    """The fs group's answer ``rc`` (with ``len`` for ``FILE_OFFSET_NOT_VALID``) as an error."""
    return SmpDeviceError(
        f"{why}: {describe_rc(rc, fs=True)}",
        group=int(FS_GROUP),
        rc=int(rc),
        code=provkit_code(rc, fs=True),
        length=length,
    )


class Mount(Protocol):
    """A mounted file system; every failure is a :class:`~provkit.errors.SmpDeviceError`."""

    prefix: str
    """The mount point, e.g. ``/lfs``."""

    def size(self, path: str) -> int:
        """Stat ``path``: its size (``FILE_NOT_FOUND``, ``FILE_IS_DIRECTORY``, ``FILE_INVALID_NAME``)."""
        ...

    def read(self, path: str, off: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` from ``off`` (``FILE_SEEK_FAILED`` past the end)."""
        ...

    def open_write(self, path: str, total: int | None) -> int:
        """Open ``path`` for writing (``total``: the upload's announced length, at offset 0).

        Returns:
            The file's current size, where an upload without offset 0 goes on.
        """
        ...

    def write(self, path: str, off: int, data: bytes) -> None:
        """Write ``data`` at ``off``: 0 replaces the file, otherwise ``off`` is its size."""
        ...

    def poll(self) -> None:
        """Let time-driven work happen (called before every request)."""
        ...


class DirectoryMount:
    """Ordinary files under ``root``, mounted at ``prefix``.

    Names are relative paths without empty, ``.`` or ``..`` parts (``FILE_INVALID_NAME``);
    a missing parent directory is ``MOUNT_POINT_NOT_FOUND`` on upload, as ``fs_open``'s
    ``-ENOENT`` is mapped; a file beyond ``max_file_bytes`` is ``FILE_WRITE_FAILED``.
    """

    def __init__(
        self, root: str | Path, *, prefix: str = "/lfs", max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ):
        self.root = Path(root)
        self.prefix = prefix
        self.max_file_bytes = max_file_bytes

    def _local(self, path: str) -> Path:
        relative = path[len(self.prefix) :].lstrip("/")
        parts = relative.split("/")
        if not relative or any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
            raise fault(FS_MGMT_ERR.FILE_INVALID_NAME, f"{path} is not a file name")
        return self.root.joinpath(*parts)

    def size(self, path: str) -> int:
        """Stat a file."""
        local = self._local(path)
        if local.is_dir():
            raise fault(FS_MGMT_ERR.FILE_IS_DIRECTORY, f"{path} is a directory")
        try:
            return local.stat().st_size
        except FileNotFoundError:
            raise fault(FS_MGMT_ERR.FILE_NOT_FOUND, f"{path} does not exist") from None
        except OSError as exc:
            raise fault(FS_MGMT_ERR.UNKNOWN, f"{path}: {exc.strerror}") from exc

    def read(self, path: str, off: int, max_bytes: int) -> bytes:
        """Read a piece of a file."""
        if off > self.size(path):
            raise fault(FS_MGMT_ERR.FILE_SEEK_FAILED, f"offset {off} is beyond the end of {path}")
        try:
            with self._local(path).open("rb") as handle:
                handle.seek(off)
                return handle.read(max_bytes)
        except OSError as exc:
            raise fault(FS_MGMT_ERR.FILE_READ_FAILED, f"{path}: {exc.strerror}") from exc

    def open_write(self, path: str, total: int | None) -> int:
        """Create the file if needed; refuse an announced length above the partition's size."""
        local = self._local(path)
        if not local.parent.is_dir():
            raise fault(FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND, f"{local.parent.name or path}: no such directory")
        if local.is_dir():
            raise fault(FS_MGMT_ERR.FILE_IS_DIRECTORY, f"{path} is a directory")
        if total is not None and total > self.max_file_bytes:
            raise fault(
                FS_MGMT_ERR.FILE_WRITE_FAILED, f"{total} bytes do not fit ({self.max_file_bytes} at most)"
            )
        try:
            local.touch()
            return local.stat().st_size
        except OSError as exc:
            raise fault(FS_MGMT_ERR.FILE_OPEN_FAILED, f"{path}: {exc.strerror}") from exc

    def write(self, path: str, off: int, data: bytes) -> None:
        """Replace the file (``off`` 0) or append to it."""
        if off + len(data) > self.max_file_bytes:
            raise fault(FS_MGMT_ERR.FILE_WRITE_FAILED, f"{path} would exceed {self.max_file_bytes} bytes")
        try:
            with self._local(path).open("wb" if off == 0 else "ab") as handle:
                handle.write(data)
        except OSError as exc:
            raise fault(FS_MGMT_ERR.FILE_WRITE_FAILED, f"{path}: {exc.strerror}") from exc

    def poll(self) -> None:
        """Nothing happens on its own in a directory."""
