"""Factory-side SMP (mcumgr) file transfers over serial or UDP, on ``smpclient``'s transports.

:class:`SmpLink` downloads, uploads and stats files in a device's SMP file-system group,
as ``mcumgr fs download/upload`` does, with what a production line needs on top:

* serial (``smpclient.transport.serial.SMPSerialTransport``: Zephyr's console framing,
  base64 + CRC16) or UDP (``SMPUDPTransport``); the message models are ``smp``'s;
* the device's buffer size read from its MCUmgr parameters (or given as ``mtu``), and
  uploads in chunks of at most ``chunk_size`` data bytes (512 by default: what Anjay's
  provisioning image takes in one write);
* a timeout per request and ``retries`` more tries of a request (a chunk) that got no
  answer. Answers are matched by sequence number, so a late answer to an earlier try is
  skipped, never taken for the answer to the current one;
* an upload goes on where the device says it stands: when the answer to a chunk was lost
  and the retry is refused with ``FILE_OFFSET_NOT_VALID``, the ``len`` the device sends
  with it is where the next chunk starts;
* every failure a :class:`~provkit.errors.SmpError` with its code: 7001 the port or socket,
  7002 no answer, 7003 an answer that is not the expected message, 7101–7116 and
  7201–7299 the device's return codes with their texts.

``smpclient`` is asyncio; each link runs its own event loop, so links are used from plain
threads (one per device on a line).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import cbor2
from pydantic import ValidationError
from smp import exceptions as smp_exceptions
from smp import header as smp_header
from smp.error import ErrorV1
from smp.file_management import FS_MGMT_ERR
from smpclient import SMPClient
from smpclient.requests.file_management import FileDownload, FileStatus, FileUpload
from smpclient.requests.os_management import MCUMgrParametersRead
from smpclient.transport import SMPTransport, SMPTransportDisconnected
from smpclient.transport.serial import Auto, BufferSize, SMPSerialTransport
from smpclient.transport.udp import SMPUDPTransport

from provkit.errors import SmpConnectFailed, SmpDeviceError, SmpError, SmpProtocolError, SmpTimeout
from provkit.transport.link import DEFAULT_BAUD_RATE
from provkit.transport.smp_server import DEFAULT_UDP_PORT
from provkit.transport.streams import available_serial_ports
from provkit.wire.smp import FS_GROUP, UploadErrorV2, describe_rc, provkit_code

__all__ = ["DEFAULT_UDP_PORT", "Progress", "SmpLink", "SmpSettings"]

_log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with ``(bytes the device holds, total)`` after every chunk of an upload."""

_T = TypeVar("_T")
_MAX_DOWNLOAD_BYTES: Final = 1 << 20
_STALE_ERRORS: Final = (
    smp_exceptions.SMPDecodeError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class SmpSettings:
    """How a link talks to a device.

    Attributes:
        timeout_s: how long one request waits for its answer.
        retries: more tries of a request (an upload chunk) that got no answer.
        chunk_size: most data bytes in one upload request.
        mtu: serial: the device's SMP buffer (``CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE``);
            UDP: the link's MTU. ``None``: read the buffer from the device (serial), 1500 (UDP).
        connect_timeout_s: how long opening the port may take (a USB port re-enumerating).
    """

    timeout_s: float = 5.0
    retries: int = 3
    chunk_size: int = 512
    mtu: int | None = None
    connect_timeout_s: float = 5.0


class SmpLink:
    """Files in a device's SMP file-system group, over one serial port or UDP address.

    Use :meth:`serial` or :meth:`udp`; the link connects on first use (or :meth:`open`)
    and is a context manager.
    """

    def __init__(
        self,
        transport: SMPTransport,
        address: str,
        *,
        describe: str,
        udp_port: int | None = None,
        settings: SmpSettings | None = None,
    ) -> None:
        self.settings = settings or SmpSettings()
        self.describe = describe
        """How messages name the device, e.g. ``smp-serial:/dev/ttyACM0``."""
        self._transport = transport
        self._address = address
        self._udp_port = udp_port
        self._client = SMPClient(transport, address, timeout_s=self.settings.timeout_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._parameters_read = False
        self._console = bytearray()
        self.buf_size: int | None = None
        """The device's buffer as it reported it (``None`` when it did not)."""
        self.requests = 0
        self.retried = 0

    @classmethod
    def serial(
        cls, port: str, *, baud_rate: int = DEFAULT_BAUD_RATE, settings: SmpSettings | None = None
    ) -> SmpLink:
        """A link over a serial port (UART, USB CDC ACM, pty) with SMP console framing."""
        settings = settings or SmpSettings()
        strategy = Auto() if settings.mtu is None else BufferSize(settings.mtu)
        transport = SMPSerialTransport(strategy, baudrate=baud_rate)
        return cls(transport, port, describe=f"smp-serial:{port}", settings=settings)

    @classmethod
    def udp(cls, host: str, port: int = DEFAULT_UDP_PORT, *, settings: SmpSettings | None = None) -> SmpLink:
        """A link over UDP (Zephyr's SMP UDP transport listens on 1337)."""
        settings = settings or SmpSettings()
        transport = SMPUDPTransport(mtu=settings.mtu or 1500)
        return cls(transport, host, describe=f"smp-udp:{host}:{port}", udp_port=port, settings=settings)

    # ------------------------------------------------------------------ lifecycle

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def open(self) -> None:
        """Open the port or socket and read the device's buffer size.

        Raises:
            SmpConnectFailed: 7001 when the port is missing or cannot be opened.
        """
        self.connect()
        if not self._parameters_read:
            self._parameters_read = True
            self._run(self._read_parameters())

    def connect(self) -> None:
        """Open the port or socket only (:meth:`open` also asks the device for its buffer).

        Raises:
            SmpConnectFailed: 7001 when the port is missing or cannot be opened.
        """
        if not self._connected:
            self._run(self._connect())

    def wait_for_console(self, texts: Sequence[str], timeout_s: float) -> str:
        """Wait until the device's console prints a line containing one of ``texts``; return that line.

        Serial links only: the console shares the line with SMP (a board logging while it
        boots). Output printed before the port was opened is not seen.

        Raises:
            SmpTimeout: 7002 when no such line came within ``timeout_s``.
            SmpError: 7000 on a UDP link, which carries no console.
        """
        if not isinstance(self._transport, SMPSerialTransport):
            raise SmpError(f"{self.describe}: a UDP link carries no console to wait on")
        self.connect()
        return self._run(self._wait_for_console(self._transport, tuple(texts), timeout_s))

    async def _wait_for_console(
        self, transport: SMPSerialTransport, texts: tuple[str, ...], timeout_s: float
    ) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._console += await transport.read_serial()
            except SMPTransportDisconnected as exc:
                raise SmpConnectFailed(f"{self.describe}: the device disconnected: {exc}") from exc
            while (end := self._console.find(b"\n")) >= 0:
                line = self._console[:end].decode("utf-8", "replace").strip()
                del self._console[: end + 1]
                if any(text in line for text in texts):
                    return line
            if time.monotonic() >= deadline:
                shown = " or ".join(repr(text) for text in texts)
                raise SmpTimeout(
                    f"{self.describe}: the console did not print {shown} within {timeout_s:g} s",
                    hint="reset or flash the board after the tool has opened its port",
                )
            await asyncio.sleep(0.02)

    async def _connect(self) -> None:
        timeout = self.settings.connect_timeout_s
        try:
            if self._udp_port is None:
                if "://" not in self._address and not Path(self._address).exists():
                    ports = ", ".join(available_serial_ports()) or "none"
                    raise SmpConnectFailed(
                        f"{self.describe}: serial port {self._address} does not exist (available: {ports})"
                    )
                await self._transport.connect(self._address, timeout)
            else:
                udp: Any = self._transport
                await udp.connect(self._address, timeout, port=self._udp_port)
        except (TimeoutError, OSError) as exc:
            raise SmpConnectFailed(f"{self.describe}: cannot open: {exc}") from exc
        self._connected = True

    async def _read_parameters(self) -> None:
        """Ask the device for its buffer (``MCUMGR_PARAMETERS``); without the command: defaults."""
        try:
            answer = await self._request(MCUMgrParametersRead(), "read the MCUmgr parameters", tries=1)
        except (SmpTimeout, SmpDeviceError) as exc:
            _log.info("%s: no MCUmgr parameters (%s); default sizes", self.describe, exc)
            return
        self.buf_size = int(answer.buf_size)
        if self.settings.mtu is None and isinstance(self._transport, SMPSerialTransport):
            self._transport.initialize(self.buf_size)

    def close(self) -> None:
        """Close the port or socket (idempotent)."""
        if self._loop is None:
            return
        if self._connected:
            self._connected = False
            try:
                self._run(self._transport.disconnect())
            except (OSError, SMPTransportDisconnected) as exc:
                _log.debug("%s: disconnect failed: %s", self.describe, exc)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    async def _receive_answer(self, request: Any, deadline: float) -> Any:
        """Wait for the answer carrying the request's sequence number; skip anything else."""
        expected = request.header.sequence
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                frame = await asyncio.wait_for(self._transport.receive(), remaining)
                header = smp_header.Header.loads(frame[: smp_header.Header.SIZE])
            except _STALE_ERRORS as exc:  # the rest of a frame whose start an earlier try consumed
                _log.debug("%s: skipped unreadable input: %s", self.describe, exc)
                continue
            if header.sequence != expected or header.group_id != request.header.group_id:
                _log.debug("%s: skipped a late answer (sequence %d)", self.describe, header.sequence)
                continue
            # UploadErrorV2 first for the fs group: it keeps the len Zephyr sends with an offset error.
            errors = (UploadErrorV2,) if header.group_id == FS_GROUP else ()
            for model in (request._Response, *errors, request._ErrorV2, request._ErrorV1):
                try:
                    return model.loads(frame)
                except (ValidationError, ValueError, cbor2.CBORError, smp_exceptions.SMPException):
                    continue
            raise SmpProtocolError(
                f"{self.describe}: the answer to {type(request).__name__} is not an SMP answer it allows "
                f"({bytes(frame[:64]).hex()})"
            )

    async def _request(self, request: Any, what: str, *, tries: int | None = None, clone: Any = None) -> Any:
        """Send ``request``; retry without an answer (re-built by ``clone`` for a new sequence number).

        Returns:
            The success answer.

        Raises:
            SmpTimeout, SmpDeviceError, SmpProtocolError, SmpConnectFailed.
        """
        attempts = (self.settings.retries + 1) if tries is None else tries
        for attempt in range(attempts):
            if attempt:
                self.retried += 1
                request = clone() if clone is not None else type(request)(**_fields(request))
            self.requests += 1
            try:
                await self._transport.send(request.BYTES)
                answer = await self._receive_answer(request, time.monotonic() + self.settings.timeout_s)
            except TimeoutError:
                _log.info("%s: no answer to %s (try %d of %d)", self.describe, what, attempt + 1, attempts)
                continue
            except SMPTransportDisconnected as exc:
                raise SmpConnectFailed(f"{self.describe}: the device disconnected: {exc}") from exc
            except SmpError:
                raise
            except ValueError as exc:  # the transport refuses a message larger than the device's buffer
                raise SmpProtocolError(f"{self.describe}: cannot send {what}: {exc}") from exc
            if isinstance(answer, ErrorV1 | UploadErrorV2) or hasattr(answer, "err"):
                raise self._device_error(answer, what)
            return answer
        raise SmpTimeout(
            f"{self.describe}: no answer to {what} within {self.settings.timeout_s:g} s "
            f"({attempts} {'try' if attempts == 1 else 'tries'})",
            hint="check the port, its speed and that the device runs its SMP image",
        )

    def _device_error(self, answer: Any, what: str) -> SmpDeviceError:
        if isinstance(answer, ErrorV1):  # version 1: a generic MGMT_ERR code, whatever the group
            group, rc, fs = int(answer.header.group_id), int(answer.rc), False
            text = describe_rc(rc, fs=False) + (f"; {answer.rsn}" if answer.rsn else "")
        else:
            group, rc = int(answer.err.group), int(answer.err.rc)
            fs = group == FS_GROUP
            text = describe_rc(rc, fs=True) if fs else f"group {group} return code {rc}"
        return SmpDeviceError(
            f"{self.describe}: the device refused to {what}: {text}",
            group=group,
            rc=rc,
            code=provkit_code(rc, fs=fs) if fs or isinstance(answer, ErrorV1) else 7000,
            length=getattr(answer, "len", None),
        )

    # ------------------------------------------------------------------ files

    def status(self, path: str) -> int:
        """The length of ``path`` on the device."""
        self.open()
        answer = self._run(self._request(FileStatus(name=path), f"stat {path}"))
        return int(answer.len)

    def download(self, path: str, *, max_bytes: int = _MAX_DOWNLOAD_BYTES) -> bytes:
        """Read ``path`` from the device.

        Raises:
            SmpProtocolError: the device's offsets or length do not add up, or the file exceeds ``max_bytes``.
        """
        self.open()
        return self._run(self._download(path, max_bytes))

    async def _download(self, path: str, max_bytes: int) -> bytes:
        data = bytearray()
        total: int | None = None
        while total is None or len(data) < total:
            off = len(data)
            answer = await self._request(FileDownload(off=off, name=path), f"download {path} at offset {off}")
            if total is None:
                if answer.len is None:
                    raise SmpProtocolError(f"{self.describe}: the first answer for {path} has no len")
                total = int(answer.len)
                if total > max_bytes:
                    raise SmpProtocolError(
                        f"{self.describe}: {path} has {total} bytes, more than {max_bytes}"
                    )
            if answer.off != off or (not answer.data and off < total) or off + len(answer.data) > total:
                raise SmpProtocolError(
                    f"{self.describe}: {path}: asked for offset {off}, got {len(answer.data)} bytes "
                    f"at offset {answer.off} of {total}"
                )
            data += answer.data
        return bytes(data)

    def upload(self, path: str, data: bytes, *, progress: Progress | None = None) -> None:
        """Write ``data`` to ``path``, chunk by chunk, continuing where the device stands.

        Raises:
            SmpDeviceError: the device refused a chunk (e.g. 7110 ``FILE_WRITE_FAILED``).
            SmpTimeout: a chunk got no answer, retries included.
            SmpProtocolError: the device's offsets do not add up.
        """
        self.open()
        self._run(self._upload(path, bytes(data), progress))

    def _chunk_limit(self, path: str) -> int:
        """Data bytes that fit one request: the transport's limit, the device's buffer, ``chunk_size``."""
        probe = FileUpload(off=0, data=b"", name=path, len=0xFFFFFFFF)
        _, fits = self._client.get_max_cbor_and_data_size(probe)
        if self.buf_size is not None:
            fits = min(fits, self.buf_size - len(probe.BYTES) - 3)
        if fits <= 0:
            raise SmpProtocolError(f"{self.describe}: the device's buffer cannot carry a chunk of {path}")
        return max(1, min(fits, self.settings.chunk_size))

    async def _upload(self, path: str, data: bytes, progress: Progress | None) -> None:
        size = self._chunk_limit(path)
        total, off = len(data), 0
        jumps = 2 * (self.settings.retries + 1)  # how often the device may move the offset for us
        while True:
            chunk = data[off : off + size]

            def build(at: int = off, piece: bytes = chunk) -> FileUpload:
                return FileUpload(off=at, data=piece, name=path, len=total if at == 0 else None)

            try:
                answer = await self._request(build(), f"upload {path} at offset {off}", clone=build)
            except SmpDeviceError as exc:
                if exc.rc != FS_MGMT_ERR.FILE_OFFSET_NOT_VALID or exc.length is None or jumps == 0:
                    raise
                if not 0 <= exc.length <= total:
                    raise SmpProtocolError(
                        f"{self.describe}: {path}: the device holds {exc.length} bytes of {total}"
                    ) from exc
                jumps -= 1
                _log.info("%s: %s continues at offset %d (was %d)", self.describe, path, exc.length, off)
                off = exc.length
            else:
                held = int(answer.off)
                if not off < held <= off + len(chunk) and not (held == off and not chunk):
                    raise SmpProtocolError(
                        f"{self.describe}: {path}: sent {len(chunk)} bytes at offset {off}, "
                        f"the device holds {held}"
                    )
                off = held
            if progress is not None:
                progress(off, total)
            if off >= total and (total or chunk == b""):
                return


def _fields(request: Any) -> dict[str, Any]:
    """The body fields of a request, to build the same request with a new sequence number."""
    skip = {"header", "version", "sequence", "smp_data"}
    return {name: getattr(request, name) for name in type(request).model_fields if name not in skip}
