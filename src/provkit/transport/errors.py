"""Transport errors that need more than the generic :class:`~provkit.errors.TransportError`.

Both are leaves of :class:`~provkit.errors.TransportError`, so callers that catch the
branch keep working; the CLI prints them as ``Error <ft code>: <message>``.
"""

from __future__ import annotations

from provkit.codes import FtcdCommStatus, FtErrorCode
from provkit.errors import TransportError


class DeviceStatusError(TransportError):
    """The device answered with a non-zero transport status (factory tool code 1001).

    Attributes:
        comm_status: the status word the device sent (an ``FtcdCommStatus`` value when known).
    """

    def __init__(self, comm_status: int) -> None:
        try:
            name = FtcdCommStatus(comm_status).c_name
        except ValueError:
            name = "unknown status"
        super().__init__(
            f"{FtErrorCode.DEVICE_COMMUNICATION.template} (status {comm_status}, {name})",
            code=FtErrorCode.DEVICE_COMMUNICATION,
        )
        self.comm_status = comm_status


class ChecksumError(TransportError):
    """The response body does not match its SHA-256 signature (factory tool code 1002)."""

    default_code = int(FtErrorCode.INVALID_CHECKSUM)
