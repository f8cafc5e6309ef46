"""SMP (mcumgr) facts shared by the factory tool and the virtual Zephyr device. Pure, no I/O.

The SMP messages themselves (header, CBOR bodies, the serial console framing with base64
and CRC16) are the ``smp`` package's; this module adds what both sides of provkit need on
top of it:

* the texts of the return codes: the generic ``MGMT_ERR`` codes (Zephyr
  ``include/zephyr/mgmt/mcumgr/mgmt/mgmt_defines.h``) and the file-system group's
  ``FS_MGMT_ERR`` codes (``include/zephyr/mgmt/mcumgr/grp/fs_mgmt/fs_mgmt.h``), keyed by
  the ``smp`` package's enums, and the provkit code each one is reported under;
* the fs group's error message with the file length: Zephyr's ``fs_mgmt_file_upload``
  answers ``FILE_OFFSET_NOT_VALID`` with ``len`` (bytes the device holds) next to ``err``,
  which the ``smp`` package's error model refuses as an extra field;
* the files of Anjay's factory provisioning image (AVSystem/Anjay-zephyr-client
  ``demo/src/factory_provisioning/factory_flash.c``, ``provisioning_app.c``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from smp import error as smp_error
from smp import file_management as smp_fs
from smp import header as smp_header
from smp.error import MGMT_ERR
from smp.file_management import FS_MGMT_ERR

__all__ = [
    "ALREADY_PROVISIONED_LINE",
    "ANJAY_MAX_WRITE_BYTES",
    "ENDPOINT_PATH",
    "FACTORY_MOUNT",
    "FS_GROUP",
    "FS_TEXTS",
    "MGMT_TEXTS",
    "PROVISION_PATH",
    "READY_LINE",
    "RESULT_PATH",
    "UPLOAD_IDLE_EOF_S",
    "UploadErrorV2",
    "describe_rc",
    "error_v1",
    "error_v2",
    "parse_result",
    "provkit_code",
]

FS_GROUP: Final = smp_header.GroupId.FILE_MANAGEMENT
"""Group 8, file management."""

MGMT_TEXTS: Final[Mapping[MGMT_ERR, str]] = {
    MGMT_ERR.EOK: "no error",
    MGMT_ERR.EUNKNOWN: "unknown error",
    MGMT_ERR.ENOMEM: "insufficient memory",
    MGMT_ERR.EINVAL: "error in input value",
    MGMT_ERR.ETIMEOUT: "operation timed out",
    MGMT_ERR.ENOENT: "no such file or entry",
    MGMT_ERR.EBADSTATE: "current state disallows the command",
    MGMT_ERR.EMSGSIZE: "response too large",
    MGMT_ERR.ENOTSUP: "command not supported",
    MGMT_ERR.ECORRUPT: "corrupt",
    MGMT_ERR.EBUSY: "command blocked by processing of another command",
    MGMT_ERR.EACCESSDENIED: "access to the function, command or resource denied",
    MGMT_ERR.UNSUPPORTED_TOO_OLD: "requested SMP protocol version is not supported (too old)",
    MGMT_ERR.UNSUPPORTED_TOO_NEW: "requested SMP protocol version is not supported (too new)",
    MGMT_ERR.EPERUSER: "application-defined error",
}
"""``MGMT_ERR``: the return codes every group may answer (``rc`` of an SMP version 1 error)."""

FS_TEXTS: Final[Mapping[FS_MGMT_ERR, str]] = {
    FS_MGMT_ERR.OK: "no error",
    FS_MGMT_ERR.UNKNOWN: "unknown error",
    FS_MGMT_ERR.FILE_INVALID_NAME: "the file name is not valid",
    FS_MGMT_ERR.FILE_NOT_FOUND: "the file does not exist",
    FS_MGMT_ERR.FILE_IS_DIRECTORY: "the path is a directory, not a file",
    FS_MGMT_ERR.FILE_OPEN_FAILED: "the file could not be opened",
    FS_MGMT_ERR.FILE_SEEK_FAILED: "seeking to the offset in the file failed",
    FS_MGMT_ERR.FILE_READ_FAILED: "reading from the file failed",
    FS_MGMT_ERR.FILE_TRUNCATE_FAILED: "truncating the file failed",
    FS_MGMT_ERR.FILE_DELETE_FAILED: "deleting the file failed",
    FS_MGMT_ERR.FILE_WRITE_FAILED: "writing data to the file failed",
    FS_MGMT_ERR.FILE_OFFSET_NOT_VALID: "the offset is not the device's (file changed, or chunk lost)",
    FS_MGMT_ERR.FILE_OFFSET_LARGER_THAN_FILE: "the offset is larger than the file",
    FS_MGMT_ERR.CHECKSUM_HASH_NOT_FOUND: "the checksum or hash type is not supported",
    FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND: "the mount point does not exist or is not mounted",
    FS_MGMT_ERR.READ_ONLY_FILESYSTEM: "the file system is read-only",
    FS_MGMT_ERR.FILE_EMPTY: "the file is empty",
}
"""``FS_MGMT_ERR``: the file-system group's return codes (``err.rc`` of an SMP version 2 error)."""

FS_CODE_BASE: Final = 7100
"""provkit code of a device's fs-group return code ``rc``: ``7100 + rc`` (7101–7116)."""
MGMT_CODE_BASE: Final = 7200
"""provkit code of a device's generic return code ``rc``: ``7200 + rc`` (7201–7213; 7299 above)."""


def describe_rc(rc: int, *, fs: bool) -> str:
    """Return ``NAME (text)`` for a device's return code: the fs group's (``fs``) or a generic one."""
    try:
        if fs:
            fs_rc = FS_MGMT_ERR(rc)
            return f"{fs_rc.name} ({FS_TEXTS[fs_rc]})"
        mgmt_rc = MGMT_ERR(rc)
        return f"{mgmt_rc.name} ({MGMT_TEXTS[mgmt_rc]})"
    except ValueError:
        if not fs and rc > MGMT_ERR.EPERUSER:
            return f"{rc} ({MGMT_TEXTS[MGMT_ERR.EPERUSER]})"
        return f"{rc} (undocumented return code)"


def provkit_code(rc: int, *, fs: bool) -> int:
    """The provkit code a device's return code is reported under (7101–7116, 7201–7213, 7299)."""
    if fs:
        return FS_CODE_BASE + rc if 0 < rc < 100 else FS_CODE_BASE
    return MGMT_CODE_BASE + rc if 0 < rc < 99 else MGMT_CODE_BASE + 99


class UploadErrorV2(smp_fs.FileSystemManagementErrorV2):
    """The fs group's answer to a failed upload; ``len`` comes with ``FILE_OFFSET_NOT_VALID``."""

    _OP = smp_header.OP.WRITE_RSP
    _COMMAND_ID = smp_header.CommandId.FileManagement.FILE_DOWNLOAD_UPLOAD

    len: int | None = None
    """Bytes of the file the device holds (where an upload can go on)."""


def _response_op(request: smp_header.Header) -> smp_header.OP:
    return smp_header.OP.WRITE_RSP if request.op == smp_header.OP.WRITE else smp_header.OP.READ_RSP


@cache
def _error_class(
    base: type[smp_error.ErrorV1] | type[UploadErrorV2], group: int, op: int, command: int
) -> Any:
    # The smp error models take their header fields from class attributes; one subclass per
    # (group, op, command) lets them encode the answer to any request.
    namespace = {"_GROUP_ID": group, "_OP": smp_header.OP(op), "_COMMAND_ID": command, "__module__": __name__}
    return type(f"{base.__name__}_{group}_{command}_{op}", (base,), namespace)


def error_v1(request: smp_header.Header, rc: MGMT_ERR) -> bytes:
    """Encode the ``{"rc": rc}`` answer to ``request`` (what Zephyr sends for a generic failure)."""
    cls = _error_class(
        smp_error.ErrorV1, int(request.group_id), int(_response_op(request)), int(request.command_id)
    )
    return bytes(cls(sequence=request.sequence, version=request.version, rc=rc).BYTES)


def error_v2(request: smp_header.Header, rc: FS_MGMT_ERR, *, length: int | None = None) -> bytes:
    """Encode the fs group's ``{"err": {"group": 8, "rc": rc}[, "len": length]}`` answer to ``request``."""
    cls = _error_class(UploadErrorV2, int(FS_GROUP), int(_response_op(request)), int(request.command_id))
    extra = {} if length is None else {"len": length}
    return bytes(
        cls(
            sequence=request.sequence, version=request.version, err={"group": FS_GROUP, "rc": rc}, **extra
        ).BYTES
    )


FACTORY_MOUNT: Final = "/factory"
"""Mount point of the provisioning image's virtual file system."""
PROVISION_PATH: Final = f"{FACTORY_MOUNT}/provision.cbor"
"""Write-only, once, sequentially from offset 0: the SenML CBOR blob, streamed to Anjay."""
RESULT_PATH: Final = f"{FACTORY_MOUNT}/result.txt"
"""Read-only: ``0`` when the blob was applied and persisted, ``-1`` otherwise (decimal text)."""
ENDPOINT_PATH: Final = f"{FACTORY_MOUNT}/endpoint.txt"
"""Read-only: the endpoint name the device derived (e.g. from its IMEI)."""
ANJAY_MAX_WRITE_BYTES: Final = 512
"""Largest single write the image takes (its circular buffer); a larger one fails (``-ENOSPC``)."""
UPLOAD_IDLE_EOF_S: Final = 15.0
"""After the first byte, this long without a write ends the blob (``PROVISION_FS_UPLOAD_TIMEOUT_MS``)."""
READY_LINE: Final = "Device ready for provisioning."
"""What the provisioning image logs once it takes a blob (then console logging stops)."""
ALREADY_PROVISIONED_LINE: Final = (
    "Factory provisioning information already present. Please flash production firmware. Halting."
)
"""What it logs instead when the device holds provisioning data: /factory is not mounted."""


def parse_result(data: bytes) -> int:
    """Read ``result.txt``: a decimal integer, ``0`` for success.

    Raises:
        ValueError: not a decimal integer.
    """
    text = data.decode("ascii").strip()
    if not text or not text.lstrip("-").isdigit() or text.count("-") > 1 or "-" in text[1:]:
        raise ValueError(f"result {data[:32]!r} is not a decimal integer")
    return int(text)
