"""An SMP server's request handling, and the virtual Zephyr board running Anjay's provisioning image.

:class:`SmpDevice` turns one SMP request message into its answer, decoding and encoding
with the ``smp`` package's message models: the fs group (:mod:`~provkit.device.smp.fs_group`)
and, of the OS group, echo and the MCUmgr parameters a client reads to size its messages.
Anything else is ``MGMT_ERR_ENOTSUP``; a body that does not decode is ``MGMT_ERR_EINVAL``;
fs-group failures are answered in the request's protocol version (version 2: the
``err`` map with the fs group's code; version 1: ``rc``, translated as Zephyr's
``fs_mgmt_translate_error_code`` does). A frame too short for its header is dropped, as a
Zephyr transport drops it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import cbor2
from pydantic import ValidationError
from smp import exceptions as smp_exceptions
from smp import file_management as smp_fs
from smp import header as smp_header
from smp import os_management as smp_os
from smp.error import MGMT_ERR
from smp.file_management import FS_MGMT_ERR

from provkit.device.kcm import Kcm
from provkit.device.lwm2m.acceptor import Lwm2mAcceptor
from provkit.device.smp.factory import FactoryMount
from provkit.device.smp.fs_group import FsGroup, HashChecksumRequest, InvalidRequest
from provkit.device.smp.mounts import DirectoryMount, Mount
from provkit.errors import SmpDeviceError
from provkit.lwm2m.profile import ANJAY
from provkit.wire.smp import FS_GROUP, error_v1, error_v2

_log = logging.getLogger(__name__)

DEFAULT_BUF_SIZE: Final = 1024
"""``CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`` of the virtual board: its largest request."""
DEFAULT_BUF_COUNT: Final = 4
ENDPOINT_PREFIX: Final = "anjay-zephyr-demo-"
"""Anjay-zephyr's default endpoint name is this prefix and the device id (IMEI or hardware id)."""

_V1_TRANSLATION: Final = {
    FS_MGMT_ERR.FILE_INVALID_NAME: MGMT_ERR.EINVAL,
    FS_MGMT_ERR.CHECKSUM_HASH_NOT_FOUND: MGMT_ERR.EINVAL,
    FS_MGMT_ERR.FILE_NOT_FOUND: MGMT_ERR.ENOENT,
    FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND: MGMT_ERR.ENOENT,
}

_Handler = Callable[[Any], Any]
_FS = smp_header.CommandId.FileManagement
_OS = smp_header.CommandId.OSManagement
_R, _W = smp_header.OP.READ, smp_header.OP.WRITE


def default_endpoint_name(device_id: bytes) -> str:
    """``anjay-zephyr-demo-<hex of the device id>``, as Anjay-zephyr names a board without a modem."""
    return ENDPOINT_PREFIX + device_id.hex()


class SmpDevice:
    """Answers SMP requests.

    Args:
        fs: the file-system group.
        buf_size: the largest request message the device takes (advertised as ``buf_size``).
        buf_count: advertised ``buf_count``.
    """

    def __init__(self, fs: FsGroup, *, buf_size: int = DEFAULT_BUF_SIZE, buf_count: int = DEFAULT_BUF_COUNT):
        self.fs = fs
        self.buf_size = buf_size
        self.buf_count = buf_count
        self.requests = 0
        self._routes: dict[tuple[int, int, int], tuple[type[Any], _Handler]] = {
            (FS_GROUP, _FS.FILE_DOWNLOAD_UPLOAD, _R): (smp_fs.FileDownloadRequest, fs.download),
            (FS_GROUP, _FS.FILE_DOWNLOAD_UPLOAD, _W): (smp_fs.FileUploadRequest, fs.upload),
            (FS_GROUP, _FS.FILE_STATUS, _R): (smp_fs.FileStatusRequest, fs.status),
            (FS_GROUP, _FS.FILE_HASH_CHECKSUM, _R): (HashChecksumRequest, fs.hash_checksum),
            (FS_GROUP, _FS.SUPPORTED_FILE_HASH_CHECKSUM_TYPES, _R): (
                smp_fs.SupportedFileHashChecksumTypesRequest,
                fs.supported_hashes,
            ),
            (FS_GROUP, _FS.FILE_CLOSE, _W): (smp_fs.FileCloseRequest, fs.close),
            (smp_header.GroupId.OS_MANAGEMENT, _OS.ECHO, _W): (smp_os.EchoWriteRequest, self._echo),
            (smp_header.GroupId.OS_MANAGEMENT, _OS.MCUMGR_PARAMETERS, _R): (
                smp_os.MCUMgrParametersReadRequest,
                self._parameters,
            ),
        }

    def handle(self, message: bytes) -> bytes | None:
        """Answer one request message (header + CBOR); ``None`` for a frame to drop."""
        if len(message) < smp_header.Header.SIZE:
            return None
        try:
            header = smp_header.Header.loads(message[: smp_header.Header.SIZE])
        except (ValueError, smp_exceptions.SMPMalformed):
            _log.info("dropped a frame with an unusable header")
            return None
        if header.length != len(message) - smp_header.Header.SIZE:
            _log.info(
                "dropped a frame whose header announces %d bytes, not %d", header.length, len(message) - 8
            )
            return None
        self.requests += 1
        self.fs.poll()
        route = self._routes.get((int(header.group_id), int(header.command_id), int(header.op)))
        if route is None:
            return error_v1(header, MGMT_ERR.ENOTSUP)
        model, handler = route
        try:
            request = model.loads(message)
        except (ValidationError, ValueError, cbor2.CBORDecodeError, smp_exceptions.SMPMalformed):
            return error_v1(header, MGMT_ERR.EINVAL)
        try:
            return bytes(handler(request))
        except InvalidRequest as exc:
            _log.info("invalid request: %s", exc)
            return error_v1(header, MGMT_ERR.EINVAL)
        except SmpDeviceError as exc:
            _log.info("answered %s", exc)
            return self._error(header, exc)

    @staticmethod
    def _error(header: smp_header.Header, exc: SmpDeviceError) -> bytes:
        if header.version == smp_header.Version.V1:
            return error_v1(header, _V1_TRANSLATION.get(FS_MGMT_ERR(exc.rc), MGMT_ERR.EUNKNOWN))
        return error_v2(header, FS_MGMT_ERR(exc.rc), length=exc.length)

    @staticmethod
    def _echo(request: smp_os.EchoWriteRequest) -> smp_os.EchoWriteResponse:
        return smp_os.EchoWriteResponse(
            sequence=request.header.sequence, version=request.header.version, r=request.d
        )

    def _parameters(self, request: smp_os.MCUMgrParametersReadRequest) -> smp_os.MCUMgrParametersReadResponse:
        return smp_os.MCUMgrParametersReadResponse(
            sequence=request.header.sequence,
            version=request.header.version,
            buf_size=self.buf_size,
            buf_count=self.buf_count,
        )


class AnjayProvisioningImage:
    """A Zephyr board running Anjay's factory provisioning image.

    Its fs group serves ``/factory`` (:class:`~provkit.device.smp.factory.FactoryMount`, the
    blob going to an LwM2M acceptor with the ``anjay`` profile over ``kcm``) and, when
    ``files`` is given, ordinary files from that directory at ``/lfs``.

    Args:
        kcm: the device's secure storage (where the provisioned configuration persists).
        endpoint_name: ``endpoint.txt``; default: ``anjay-zephyr-demo-`` and a random id.
        files: directory served at ``/lfs`` (none by default).
        buf_size: the largest request the device takes.
        clock: monotonic seconds, for the 15 s end of an idle blob.
    """

    def __init__(
        self,
        kcm: Kcm,
        *,
        endpoint_name: str | None = None,
        files: str | Path | None = None,
        buf_size: int = DEFAULT_BUF_SIZE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.acceptor = Lwm2mAcceptor(kcm, profile=ANJAY)
        name = endpoint_name or default_endpoint_name(secrets.token_bytes(8))
        self.factory = FactoryMount(self.acceptor, name, clock=clock or time.monotonic)
        mounts: list[Mount] = [self.factory]
        if files is not None:
            mounts.append(DirectoryMount(files))
        # Headroom for the header and the CBOR keys of a download answer.
        self.device = SmpDevice(FsGroup(mounts, download_chunk=max(32, buf_size - 64)), buf_size=buf_size)

    @property
    def endpoint_name(self) -> str:
        """What ``endpoint.txt`` holds."""
        return self.factory.endpoint_name

    def handle(self, message: bytes) -> bytes | None:
        """Answer one SMP request message."""
        return self.device.handle(message)

    @property
    def console_lines(self) -> list[str]:
        """What the image logged at its last boot."""
        return self.factory.console_lines

    def reboot(self) -> list[str]:
        """Restart the image (a provisioned device halts); return its console lines."""
        return self.factory.boot()
