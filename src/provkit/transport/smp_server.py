"""Serving SMP requests on a serial console or a UDP port (the device side of SMP transports).

A server passes each SMP request message to a handler (``bytes -> bytes | None``, e.g.
:meth:`provkit.device.smp.SmpDevice.handle`) and sends back what it returns; ``None``
drops the request, as a Zephyr transport drops a frame it cannot take.

* Serial: Zephyr's SMP console framing — each message as ``length | message | CRC16``,
  base64, in lines that start with ``06 09`` (first) or ``04 14`` (continuation) and end
  with a newline — encoded and decoded by the ``smp`` package (:mod:`smp.packet`). Other lines
  are console traffic and are ignored; the device's own log lines go out between frames.
  A frame whose CRC fails, or longer than the device's buffer, is dropped.
* UDP: one message per datagram (Zephyr's ``CONFIG_MCUMGR_TRANSPORT_UDP``, port 1337);
  the answer goes back to the sender.
"""

from __future__ import annotations

import binascii
import logging
import selectors
import socket
import struct
from collections.abc import Callable, Generator, Iterable
from typing import Final

from smp import exceptions as smp_exceptions
from smp import packet as smp_packet

from provkit.codes import FtErrorCode
from provkit.errors import TransportClosed, TransportError
from provkit.transport.bind import check_bind_address
from provkit.transport.link import DEFAULT_BAUD_RATE
from provkit.transport.servers import ServingThread
from provkit.transport.streams import SerialStream, open_serial

_log = logging.getLogger(__name__)

SmpHandler = Callable[[bytes], bytes | None]
"""One SMP request message in, its answer out (``None``: no answer)."""

DEFAULT_UDP_PORT: Final = 1337
"""Zephyr's ``CONFIG_MCUMGR_TRANSPORT_UDP_PORT``."""
LINE_LENGTH: Final = 128
"""Longest line of the console framing (base64 and delimiters), as Zephyr and smpclient send."""
MAX_LINE_BYTES: Final = 4096
"""Console input without a newline beyond this is discarded (noise, not SMP)."""
_POLL_S: Final = 0.1
_FRAME_ERRORS: Final = (
    smp_exceptions.SMPBadStartDelimiter,
    smp_exceptions.SMPBadContinueDelimiter,
    smp_exceptions.SMPBadCRC,
    binascii.Error,
    struct.error,
    ValueError,
)


def console_line(text: str) -> bytes:
    """A device log line as Zephyr's log backend prints it on the console."""
    return f"[00:00:00.000,000] <inf> provisioning_app: {text}\r\n".encode()


class ConsoleFramer:
    """Reassembles SMP messages from console input and frames answers for it.

    Args:
        max_message_bytes: longest message accepted (the device's buffer); longer ones are dropped.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._pending = bytearray()
        self._decoder: Generator[None, bytes, bytes] | None = None
        self.dropped = 0
        """Frames dropped (bad CRC, bad framing, too long)."""

    def feed(self, data: bytes) -> list[bytes]:
        """Take received bytes; return the messages they complete."""
        self._pending += data
        messages: list[bytes] = []
        while (end := self._pending.find(b"\n")) >= 0:
            line = bytes(self._pending[: end + 1])
            del self._pending[: end + 1]
            message = self._line(line)
            if message is not None:
                messages.append(message)
        if len(self._pending) > MAX_LINE_BYTES:
            self._pending.clear()
        return messages

    def _drop(self, why: str) -> None:
        self.dropped += 1
        self._decoder = None
        _log.info("dropped an SMP frame: %s", why)

    def _line(self, line: bytes) -> bytes | None:
        start = line.startswith(smp_packet.START_DELIMITER)
        if start:
            if len(line) >= 8:
                try:
                    announced = smp_packet.FRAME_LENGTH_STRUCT.unpack(binascii.a2b_base64(line[2:6])[:2])[0]
                except (binascii.Error, struct.error):
                    announced = 0
                if announced > self.max_message_bytes + smp_packet.CRC16_STRUCT.size:
                    self._drop(f"a message of {announced} bytes exceeds the buffer")
                    return None
            self._decoder = smp_packet.decode()
            next(self._decoder)
        elif not line.startswith(smp_packet.CONTINUE_DELIMITER) or self._decoder is None:
            return None  # console input
        try:
            self._decoder.send(line)
        except StopIteration as done:
            self._decoder = None
            return bytes(done.value)
        except _FRAME_ERRORS as exc:
            self._drop(str(exc) or type(exc).__name__)
        return None

    @staticmethod
    def encode(message: bytes) -> bytes:
        """The console lines carrying ``message``."""
        return b"".join(smp_packet.encode(message, line_length=LINE_LENGTH))


class _SmpServer(ServingThread):
    def __init__(self, handler: SmpHandler) -> None:
        super().__init__()
        self.handler = handler
        self.messages_served = 0

    def _answer(self, message: bytes) -> bytes | None:
        try:
            answer = self.handler(message)
        except Exception:  # one broken request must not take the device down
            _log.exception("the SMP handler failed")
            return None
        self.messages_served += 1
        return answer


class SmpSerialServer(_SmpServer):
    """SMP over a serial console.

    Args:
        handler: answers messages.
        port: serial device path (or a pyserial URL).
        baud_rate: line speed.
        console_lines: log lines printed when serving starts (the device's boot log).
        max_message_bytes: the device's buffer; longer messages are dropped.

    Raises:
        ConnectFailed: the port is missing (1013/1014) or cannot be opened (1011).
    """

    def __init__(
        self,
        handler: SmpHandler,
        port: str,
        *,
        baud_rate: int = DEFAULT_BAUD_RATE,
        console_lines: Iterable[str] = (),
        max_message_bytes: int = 1024,
    ) -> None:
        super().__init__(handler)
        self.port = port
        self.console_lines = list(console_lines)
        self._framer = ConsoleFramer(max_message_bytes)
        self._stream = SerialStream(open_serial(port, baud_rate=baud_rate))

    @property
    def ready_line(self) -> str:
        """What ``provkit device serve`` prints once the device listens."""
        return f"SMP server on serial port {self.port}"

    def log(self, lines: Iterable[str]) -> None:
        """Write device log lines on the console (as a board does when it boots again)."""
        self._stream.write(b"".join(console_line(text) for text in lines))

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` or until the line hangs up."""
        try:
            self.log(self.console_lines)
            while not self._stop.is_set():
                data = self._stream.read(4096, _POLL_S)
                for message in self._framer.feed(data) if data else ():
                    answer = self._answer(message)
                    if answer is not None:
                        self._stream.write(ConsoleFramer.encode(answer))
        except TransportClosed as exc:
            _log.info("serial line %s hung up: %s", self.port, exc)

    def close(self) -> None:
        """Close the port."""
        self._stream.close()


class SmpUdpServer(_SmpServer):
    """SMP over UDP: one request per datagram, the answer to its sender.

    Args:
        handler: answers messages.
        host: address to bind.
        port: UDP port (0 picks one; Zephyr's default is 1337).
        max_message_bytes: longer datagrams are dropped.
        allow_remote: listen on an address other than loopback (see :mod:`provkit.transport.bind`).

    Raises:
        RemoteBindRefused: 1000 for a non-loopback ``host`` without ``allow_remote``.
        TransportError: 1000 when the address cannot be bound.
    """

    def __init__(
        self,
        handler: SmpHandler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_message_bytes: int = 1024,
        allow_remote: bool = False,
    ) -> None:
        check_bind_address(host, allow_remote=allow_remote)
        super().__init__(handler)
        self.max_message_bytes = max_message_bytes
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except (OSError, OverflowError) as exc:
            sock.close()
            raise TransportError(
                FtErrorCode.GENERAL.format(f"cannot bind UDP {host}:{port}: {exc}"), code=FtErrorCode.GENERAL
            ) from exc
        self._sock = sock
        bound = sock.getsockname()
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))

    @property
    def ready_line(self) -> str:
        """What ``provkit device serve`` prints once the device listens."""
        return f"SMP server on UDP {self.address[0]}:{self.address[1]}"

    def serve_forever(self) -> None:
        """Serve datagrams until :meth:`shutdown`."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not selector.select(_POLL_S):
                    continue
                try:
                    data, peer = self._sock.recvfrom(65536)
                except OSError as exc:
                    _log.info("UDP receive failed: %s", exc)
                    continue
                if len(data) > self.max_message_bytes:
                    _log.info("dropped a datagram of %d bytes from %s", len(data), peer)
                    continue
                answer = self._answer(data)
                if answer is not None:
                    try:
                        self._sock.sendto(answer, peer)
                    except OSError as exc:
                        _log.info("UDP send to %s failed: %s", peer, exc)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
