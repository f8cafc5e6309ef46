"""Byte streams over a TCP socket or a serial port, with one error vocabulary.

Both the factory-side links and the device agent talk to a :class:`ByteStream`, so the
framing logic is written once and every socket or serial failure reaches callers as a
:class:`~provkit.errors.TransportError` carrying the factory tool's error code.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from pathlib import Path
from typing import Any, Protocol

import serial
from serial.tools import list_ports

from provkit.codes import FtErrorCode
from provkit.errors import ConnectFailed, TransportClosed, TransportError
from provkit.transport.link import DEFAULT_BAUD_RATE

try:
    import termios
except ImportError:  # Windows: pyserial raises only SerialException/OSError there
    _TTY_ERRORS: tuple[type[Exception], ...] = ()
else:
    # tcdrain/tcflush on a hung-up tty raise termios.error, which is not an OSError.
    _TTY_ERRORS = (termios.error,)

_log = logging.getLogger(__name__)


class ByteStream(Protocol):
    """A bidirectional byte pipe with timed reads.

    ``read`` returns at least one byte, or ``b""`` when nothing arrived within
    ``timeout_s``; it raises :class:`~provkit.errors.TransportClosed` when the peer has gone.
    """

    def read(self, max_bytes: int, timeout_s: float | None) -> bytes:
        """Return up to ``max_bytes`` received bytes, or ``b""`` after ``timeout_s``."""
        ...

    def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        ...

    def close(self) -> None:
        """Release the underlying socket or port (idempotent)."""
        ...


class SocketStream:
    """A :class:`ByteStream` over a connected TCP socket.

    Args:
        sock: a connected stream socket; the stream owns it from now on.
        write_timeout_s: how long one ``write`` may block on a stalled peer.
    """

    def __init__(self, sock: socket.socket, *, write_timeout_s: float = 30.0) -> None:
        self.sock = sock
        self.write_timeout_s = write_timeout_s
        self._closed = False

    def read(self, max_bytes: int, timeout_s: float | None) -> bytes:
        """Return received bytes, ``b""`` on timeout; raise ``TransportClosed`` at end of stream."""
        try:
            self.sock.settimeout(timeout_s)
            data = self.sock.recv(max_bytes)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise TransportError(
                f"{FtErrorCode.TCP_RECEIVE_FAILED.template}: {exc}", code=FtErrorCode.TCP_RECEIVE_FAILED
            ) from exc
        if not data:
            raise TransportClosed("the peer closed the TCP connection", code=FtErrorCode.TCP_RECEIVE_FAILED)
        return data

    def write(self, data: bytes) -> None:
        """Send all of ``data`` or raise ``TransportError`` 1023."""
        try:
            self.sock.settimeout(self.write_timeout_s)
            self.sock.sendall(data)
        except OSError as exc:
            raise TransportError(
                f"{FtErrorCode.TCP_SEND_FAILED.template}: {exc}", code=FtErrorCode.TCP_SEND_FAILED
            ) from exc

    def peer_closed(self) -> bool:
        """Whether the peer has already closed its end (checked without blocking or consuming data)."""
        try:
            self.sock.settimeout(0)
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self) -> None:
        """Shut down and close the socket."""
        if self._closed:
            return
        self._closed = True
        # Already disconnected peers make shutdown fail; closing is all that is left then.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def available_serial_ports() -> list[str]:
    """Names of the serial ports the system reports (for error messages)."""
    return sorted(port.device for port in list_ports.comports())


def missing_serial_port(port: str, available: list[str]) -> ConnectFailed:
    """The factory tool demo's error for a port that does not exist.

    1013 when the system has no serial port at all (naming the port asked for), else 1014
    with the ports there are, so the operator can pick one.
    """
    if not available:
        return ConnectFailed(
            f"{FtErrorCode.NO_SERIAL_PORT.format()} ({port} does not exist)", code=FtErrorCode.NO_SERIAL_PORT
        )
    return ConnectFailed(
        FtErrorCode.SERIAL_PORT_NOT_CONNECTED.format(port, ", ".join(available)),
        code=FtErrorCode.SERIAL_PORT_NOT_CONNECTED,
    )


def open_serial(port: str, *, baud_rate: int = DEFAULT_BAUD_RATE) -> serial.Serial:
    """Open ``port`` raw, 8N1, without flow control.

    Raises:
        ConnectFailed: 1013/1014 when the port does not exist (see :func:`missing_serial_port`),
            1011 when it cannot be opened.
    """
    if not port.startswith(("socket://", "loop://", "rfc2217://")) and not Path(port).exists():
        raise missing_serial_port(port, available_serial_ports())
    try:
        return serial.serial_for_url(port, baudrate=baud_rate, timeout=0, write_timeout=30, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ConnectFailed(
            f"{FtErrorCode.SERIAL_CONNECT_FAILED.format(port)}: {exc}", code=FtErrorCode.SERIAL_CONNECT_FAILED
        ) from exc


class SerialStream:
    """A :class:`ByteStream` over an open pyserial port (a UART, a USB CDC device or a pty).

    Args:
        port: an open ``serial.Serial``; the stream owns it from now on.
    """

    def __init__(self, port: Any) -> None:
        self.port = port
        self._closed = False

    def read(self, max_bytes: int, timeout_s: float | None) -> bytes:
        """Return received bytes, ``b""`` on timeout; raise ``TransportClosed`` on hang-up."""
        try:
            self.port.timeout = timeout_s
            first = self.port.read(1)
            if not first:
                return b""
            waiting = min(int(self.port.in_waiting), max_bytes - 1)
            return bytes(first) + (bytes(self.port.read(waiting)) if waiting > 0 else b"")
        except serial.SerialException as exc:
            # pyserial reports a hung-up line (pty master closed, USB unplugged) this way.
            raise TransportClosed(
                f"{FtErrorCode.SERIAL_READ_FAILED.template}: {exc}", code=FtErrorCode.SERIAL_READ_FAILED
            ) from exc
        except OSError as exc:
            raise TransportError(
                f"{FtErrorCode.SERIAL_READ_FAILED.template}: {exc}", code=FtErrorCode.SERIAL_READ_FAILED
            ) from exc

    def write(self, data: bytes) -> None:
        """Send all of ``data`` and wait until it left the output buffer."""
        try:
            self.port.write(data)
        except (serial.SerialException, OSError, *_TTY_ERRORS) as exc:
            raise TransportError(
                f"Failed to write data to serial connection: {exc}", code=FtErrorCode.DEVICE_COMMUNICATION
            ) from exc
        try:
            self.port.flush()
        except (serial.SerialException, OSError, *_TTY_ERRORS) as exc:
            # The bytes were handed over; a line that hung up meanwhile (device reset right
            # after reading the request) is reported by the read that follows, as 1012.
            _log.debug("serial flush failed after a complete write: %s", exc)

    def discard_input(self) -> None:
        """Drop bytes already received (stale log output) before a new exchange."""
        try:
            self.port.reset_input_buffer()
        except (serial.SerialException, OSError, *_TTY_ERRORS) as exc:
            raise TransportError(
                f"{FtErrorCode.SERIAL_READ_FAILED.template}: {exc}", code=FtErrorCode.SERIAL_READ_FAILED
            ) from exc

    def close(self) -> None:
        """Close the port."""
        if not self._closed:
            self._closed = True
            self.port.close()
