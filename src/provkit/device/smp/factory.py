"""``/factory``: the virtual file system of Anjay's factory provisioning image.

It behaves as AVSystem/Anjay-zephyr-client ``demo/src/factory_provisioning/factory_flash.c``
with ``provisioning_app.c`` around it:

* ``provision.cbor`` is write-only and one-shot: it takes sequential writes from offset 0
  while the image is in its initial state, each at most 512 bytes (the image's circular
  buffer; a larger write fails), and streams them into the LwM2M acceptor. Writing at
  another offset than the bytes received so far is refused with ``FILE_OFFSET_NOT_VALID``
  and that count as ``len`` — a client whose answer was lost continues from there; the
  image cannot take a stream back, so starting again at 0 is refused the same way.
  Once the blob has ended, the file can no longer be opened (``-ENOENT``, which the fs
  group reports as ``MOUNT_POINT_NOT_FOUND``);
* reading (or stat-ing) ``result.txt`` ends the blob, waits for the acceptor and yields
  ``0`` (applied and persisted) or ``-1``; 15 s without a write after the first byte also
  end it;
* ``endpoint.txt`` holds the endpoint name the device derived;
* a device that already holds provisioning data at boot says so on its console and does
  not mount ``/factory`` at all: it takes no other blob.

Deviation, stated: the image's ``stat`` of ``provision.cbor`` fails; here it reports the
bytes received, which is what the fs group needs to continue an upload after a lost answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum

from smp.file_management import FS_MGMT_ERR

from provkit.device.lwm2m.acceptor import BlobStream, Lwm2mAcceptor
from provkit.device.smp.mounts import fault
from provkit.wire.smp import (
    ALREADY_PROVISIONED_LINE,
    ANJAY_MAX_WRITE_BYTES,
    ENDPOINT_PATH,
    FACTORY_MOUNT,
    PROVISION_PATH,
    READY_LINE,
    RESULT_PATH,
    UPLOAD_IDLE_EOF_S,
)

_log = logging.getLogger(__name__)


class ImageState(Enum):
    """Where the provisioning image stands."""

    INITIAL = "initial"
    """Waiting for (or receiving) the blob."""
    FINISHED = "finished"
    """The blob ended; ``result.txt`` holds the outcome."""
    HALTED = "halted"
    """Provisioning data was present at boot: ``/factory`` is not mounted."""


class FactoryMount:
    """``/factory`` over an LwM2M acceptor.

    Args:
        acceptor: where the blob goes (a device modelling Anjay passes the ``anjay`` profile).
        endpoint_name: the content of ``endpoint.txt``.
        clock: monotonic seconds (tests pass their own).
        idle_eof_s: inactivity after the first byte that ends the blob.
    """

    prefix = FACTORY_MOUNT

    def __init__(
        self,
        acceptor: Lwm2mAcceptor,
        endpoint_name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_eof_s: float = UPLOAD_IDLE_EOF_S,
    ) -> None:
        self.acceptor = acceptor
        self.endpoint_name = endpoint_name
        self._clock = clock
        self._idle_eof_s = idle_eof_s
        self._stream: BlobStream = acceptor.stream()
        self._last_write = 0.0
        self.state = ImageState.INITIAL
        self.console_lines: list[str] = []
        """What the image logged at its last boot."""
        self.boot()

    def boot(self) -> list[str]:
        """(Re)start the image: halt if the device holds provisioning data; return the console lines."""
        self._stream = self.acceptor.stream()
        if self.acceptor.configuration():
            self.state = ImageState.HALTED
            self.console_lines = [ALREADY_PROVISIONED_LINE]
        else:
            self.state = ImageState.INITIAL
            self.console_lines = [
                "NOTE: No more log messages will be displayed. "
                "Please use mcumgr to check provisioning results",
                READY_LINE,
            ]
        return self.console_lines

    @property
    def result(self) -> int | None:
        """``0`` or ``-1`` once the blob ended, else ``None``."""
        outcome = self._stream.result
        return None if outcome is None else (0 if outcome.ok else -1)

    def _mounted(self, path: str) -> None:
        if self.state is ImageState.HALTED:
            raise fault(FS_MGMT_ERR.FILE_NOT_FOUND, f"{path}: {FACTORY_MOUNT} is not mounted")

    def _finish(self) -> int:
        if self.state is ImageState.INITIAL:
            outcome = self._stream.finish()
            self.state = ImageState.FINISHED
            _log.info("factory provisioning finished: %s %s", outcome.status.name, outcome.reason)
        return 0 if self.result == 0 else -1

    def _text(self, path: str) -> bytes:
        self._mounted(path)
        if path == RESULT_PATH:
            return str(self._finish()).encode()
        if path == ENDPOINT_PATH:
            return self.endpoint_name.encode()
        raise fault(FS_MGMT_ERR.FILE_NOT_FOUND, f"{path} cannot be read")

    def size(self, path: str) -> int:
        """Stat: the text files' sizes (reading the result ends the blob); the blob's bytes received."""
        if path == PROVISION_PATH:
            self._mounted(path)
            return self._stream.received
        return len(self._text(path))

    def read(self, path: str, off: int, max_bytes: int) -> bytes:
        """Read ``result.txt`` or ``endpoint.txt``."""
        text = self._text(path)
        if off > len(text):
            raise fault(FS_MGMT_ERR.FILE_SEEK_FAILED, f"offset {off} is beyond the end of {path}")
        return text[off : off + max_bytes]

    def open_write(self, path: str, total: int | None) -> int:
        """Open ``provision.cbor`` for the blob: only in the initial state, only if it fits."""
        self._mounted(path)
        if path != PROVISION_PATH or self.state is not ImageState.INITIAL:
            why = "takes no more data" if path == PROVISION_PATH else "is read-only"
            raise fault(FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND, f"{path} {why} (open: -ENOENT)")
        if total is not None and not self._stream.fits(total):
            raise fault(
                FS_MGMT_ERR.FILE_WRITE_FAILED,
                f"a blob of {total} bytes exceeds the device's {self.acceptor.max_blob_bytes}",
            )
        return self._stream.received

    def write(self, path: str, off: int, data: bytes) -> None:
        """Stream the next piece of the blob."""
        self.open_write(path, None)
        if off != self._stream.received:
            raise fault(
                FS_MGMT_ERR.FILE_OFFSET_NOT_VALID,
                f"{path} has received {self._stream.received} bytes, not {off}",
                length=self._stream.received,
            )
        if len(data) > ANJAY_MAX_WRITE_BYTES:
            raise fault(
                FS_MGMT_ERR.FILE_WRITE_FAILED,
                f"a write of {len(data)} bytes exceeds the image's "
                f"{ANJAY_MAX_WRITE_BYTES}-byte buffer (-ENOSPC)",
            )
        if not self._stream.write(data):
            raise fault(
                FS_MGMT_ERR.FILE_WRITE_FAILED,
                f"the blob exceeds the device's {self.acceptor.max_blob_bytes} bytes",
            )
        self._last_write = self._clock()

    def poll(self) -> None:
        """End the blob after 15 s without a write (once something arrived)."""
        if (
            self.state is ImageState.INITIAL
            and self._stream.received
            and self._clock() - self._last_write >= self._idle_eof_s
        ):
            self._finish()
