"""The SMP file-system group (8) with Zephyr's ``fs_mgmt`` rules.

Mirrors ``subsys/mgmt/mcumgr/grp/fs_mgmt/src/fs_mgmt.c`` (zephyrproject-rtos/zephyr):

* one transfer at a time: an upload or download of another path (or the other direction)
  closes the current one;
* download (``off``, ``name``): the first answer carries ``len``; every answer carries
  ``off`` and up to one chunk of ``data``;
* upload (``off``, ``name``, ``data``, ``len`` at offset 0): offset 0 (re)starts the file;
  any other offset must be the bytes the device holds, else ``FILE_OFFSET_NOT_VALID`` with
  that count as ``len`` (and the transfer is closed); the answer carries the new ``off``;
* status (``name``) answers ``len``; hash/checksum (``crc32``, ``sha256``) over
  ``off``/``len``; the supported types; close ends any transfer;
* a request without its fields, or a name longer than 64 bytes, is ``MGMT_ERR_EINVAL``.

Every method returns the response message (an ``smp`` model) or raises
:class:`~provkit.errors.SmpDeviceError` with the fs group's return code.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from smp import file_management as smp_fs
from smp.file_management import FS_MGMT_ERR

from provkit.device.smp.mounts import Mount, fault
from provkit.errors import SmpError

PATH_MAX_BYTES: Final = 64
"""``CONFIG_MCUMGR_GRP_FS_PATH_LEN``: the longest name the group takes."""


class HashChecksumRequest(smp_fs.FileHashChecksumRequest):
    """The hash/checksum request with any type name: an unknown one is ``CHECKSUM_HASH_NOT_FOUND``."""

    type: str | None = None  # type: ignore[assignment]


class InvalidRequest(SmpError, ValueError):
    """The request lacks a field or breaks a limit: the answer is ``MGMT_ERR_EINVAL``."""


@dataclass(slots=True)
class _Transfer:
    upload: bool
    path: str
    off: int = 0
    total: int = 0


class FsGroup:
    """The fs group over ``mounts`` (the longest matching prefix serves a path).

    Args:
        mounts: the mounted file systems.
        download_chunk: most data bytes in one download answer (the device's buffer less headers).
    """

    def __init__(self, mounts: Sequence[Mount], *, download_chunk: int = 256) -> None:
        self.mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)
        self.download_chunk = download_chunk
        self._transfer: _Transfer | None = None

    def poll(self) -> None:
        """Give every mount its time-driven work."""
        for mount in self.mounts:
            mount.poll()

    def _mount(self, path: str, *, upload: bool) -> Mount:
        if not path or len(path.encode()) > PATH_MAX_BYTES:
            raise InvalidRequest(f"name of {len(path.encode())} bytes (1..{PATH_MAX_BYTES})")
        for mount in self.mounts:
            if path == mount.prefix or path.startswith(mount.prefix + "/"):
                return mount
        if upload:
            raise fault(FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND, f"{path}: no file system is mounted there")
        raise fault(FS_MGMT_ERR.FILE_NOT_FOUND, f"{path}: no file system is mounted there")

    def _continuing(self, path: str, *, upload: bool) -> _Transfer | None:
        current = self._transfer
        if current is not None and current.upload == upload and current.path == path:
            return current
        self._transfer = None
        return None

    def _settle(self, transfer: _Transfer) -> None:
        """Close a transfer that reached its announced length."""
        if transfer.total > 0 and transfer.off >= transfer.total:
            self._transfer = None

    def download(self, request: smp_fs.FileDownloadRequest) -> smp_fs.FileDownloadResponse:
        """Read one chunk."""
        path, off = request.name, request.off
        mount = self._mount(path, upload=False)
        transfer = self._continuing(path, upload=False)
        try:
            if transfer is None:
                transfer = _Transfer(False, path, total=mount.size(path))
                self._transfer = transfer
            data = mount.read(path, off, self.download_chunk)
        except Exception:
            self._transfer = None
            raise
        transfer.off = off + len(data)
        self._settle(transfer)
        return smp_fs.FileDownloadResponse(
            sequence=request.header.sequence,
            version=request.header.version,
            off=off,
            data=data,
            len=transfer.total if off == 0 else None,  # only the first answer carries it
        )

    def upload(self, request: smp_fs.FileUploadRequest) -> smp_fs.FileUploadResponse:
        """Write one chunk."""
        path, off = request.name, request.off
        if off == 0 and request.len is None:
            raise InvalidRequest("an upload at offset 0 must announce len")
        mount = self._mount(path, upload=True)
        transfer = self._continuing(path, upload=True)
        try:
            if transfer is None:
                held = mount.open_write(path, request.len if off == 0 else None)
                transfer = _Transfer(True, path, off=0 if off == 0 else held)
                self._transfer = transfer
            elif off == 0:
                mount.open_write(path, request.len)
            if off == 0:
                transfer.total, transfer.off = request.len or 0, 0
            elif off != transfer.off:
                raise fault(
                    FS_MGMT_ERR.FILE_OFFSET_NOT_VALID,
                    f"{path} holds {transfer.off} bytes, not {off}",
                    length=transfer.off,
                )
            if request.data or off == 0:
                mount.write(path, off, request.data)
                transfer.off = off + len(request.data)
        except Exception:
            self._transfer = None
            raise
        self._settle(transfer)
        return smp_fs.FileUploadResponse(
            sequence=request.header.sequence, version=request.header.version, off=transfer.off
        )

    def status(self, request: smp_fs.FileStatusRequest) -> smp_fs.FileStatusResponse:
        """The file's length."""
        mount = self._mount(request.name, upload=False)
        return smp_fs.FileStatusResponse(
            sequence=request.header.sequence, version=request.header.version, len=mount.size(request.name)
        )

    def hash_checksum(self, request: HashChecksumRequest) -> smp_fs.FileHashChecksumResponse:
        """CRC32 (IEEE, the default) or SHA-256 of ``len`` bytes from ``off``."""
        kind = request.type or "crc32"
        if request.len == 0:
            raise InvalidRequest("len must not be 0")
        if kind not in _HASHES:
            raise fault(FS_MGMT_ERR.CHECKSUM_HASH_NOT_FOUND, f"{kind} is not supported")
        mount = self._mount(request.name, upload=False)
        size = mount.size(request.name)
        off = request.off or 0
        if size <= off:
            rc = FS_MGMT_ERR.FILE_EMPTY if size == 0 else FS_MGMT_ERR.FILE_OFFSET_LARGER_THAN_FILE
            raise fault(rc, f"{request.name} has {size} bytes")
        wanted = size - off if request.len is None else min(request.len, size - off)
        data = mount.read(request.name, off, wanted)
        output: int | bytes = zlib.crc32(data) if kind == "crc32" else hashlib.sha256(data).digest()
        return smp_fs.FileHashChecksumResponse(
            sequence=request.header.sequence,
            version=request.header.version,
            type="crc32" if kind == "crc32" else "sha256",
            off=off or None,
            len=len(data),
            output=output,
        )

    def supported_hashes(
        self, request: smp_fs.SupportedFileHashChecksumTypesRequest
    ) -> smp_fs.SupportedFileHashChecksumTypesResponse:
        """The hash/checksum types and their output formats."""
        return smp_fs.SupportedFileHashChecksumTypesResponse(
            sequence=request.header.sequence, version=request.header.version, types=_HASHES
        )

    def close(self, request: smp_fs.FileCloseRequest) -> smp_fs.FileCloseResponse:
        """End any transfer."""
        self._transfer = None
        return smp_fs.FileCloseResponse(sequence=request.header.sequence, version=request.header.version)


_HASHES: Final[dict[Literal["crc32", "sha256"], smp_fs.HashChecksumType]] = {
    "crc32": smp_fs.HashChecksumType(format=smp_fs.HashChecksumFormat.NUMERICAL, size=4),
    "sha256": smp_fs.HashChecksumType(format=smp_fs.HashChecksumFormat.BYTE_ARRAY, size=32),
}
