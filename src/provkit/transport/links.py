"""Factory-side links to a device: TCP, serial, or a file for offline injection.

A link sends one framed request and returns the device's response CBOR. The connection
stays open between exchanges, so a keep-alive session (``KpAlvSess``, e.g. the
``by_device`` flow's CSR round trip) runs its messages over one connection, as the real
agent requires. Every failure is a :class:`~provkit.errors.TransportError` subclass whose
``code`` is the factory tool demo's error code (1001–1023).
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from provkit.codes import FtErrorCode
from provkit.errors import ConnectFailed, TransportClosed, TransportError, TransportTimeout
from provkit.transport.errors import ChecksumError, DeviceStatusError
from provkit.transport.link import (
    DEFAULT_BAUD_RATE,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_RESPONSE_TIMEOUT_S,
    DEFAULT_TCP_PORT,
    DeviceLink,
)
from provkit.transport.streams import ByteStream, SerialStream, SocketStream, open_serial
from provkit.wire.framing import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FCC_TOKEN,
    Response,
    ResponseReader,
    encode_request,
)

__all__ = ["DeviceLink", "FileLink", "SerialLink", "TcpLink", "exchange_over"]

_log = logging.getLogger(__name__)

_CHUNK = 65536


class _ClosedBeforeReply(TransportClosed):
    """The peer closed the connection without sending a single byte back."""


def exchange_over(
    stream: ByteStream,
    message: bytes,
    *,
    token: bytes,
    timeout_s: float,
    receive_code: FtErrorCode,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> bytes:
    """Write one request frame on ``stream`` and read its response, skipping device log output.

    Raises:
        TransportTimeout: 1003 when no complete response arrived within ``timeout_s``.
        DeviceStatusError: 1001 when the device answered a non-zero transport status.
        ChecksumError: 1002 when the response body fails its SHA-256 check.
        TransportError: ``receive_code`` or the stream's own code for I/O failures.
    """
    stream.write(encode_request(message, token))
    reader = ResponseReader(token, max_message_bytes=max_message_bytes)
    deadline = time.monotonic() + timeout_s
    while True:
        event = reader.next_event()
        if isinstance(event, Response):
            if reader.skipped_bytes:
                _log.debug("skipped %d bytes of device output before the response", reader.skipped_bytes)
            if event.status != 0 or event.message is None:
                raise DeviceStatusError(event.status)
            return event.message
        if event is not None:
            if event.code is FtErrorCode.INVALID_CHECKSUM:
                raise ChecksumError(f"{event.code.template}: {event.reason}")
            raise TransportError(f"{event.code.template}: {event.reason}", code=event.code)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            what = "the rest of the response" if reader.in_frame else "the device token"
            code = receive_code if reader.in_frame else FtErrorCode.TOKEN_TIMEOUT
            raise TransportTimeout(f"Timeout while waiting for {what} after {timeout_s:g} s", code=code)
        try:
            data = stream.read(_CHUNK, remaining)
        except TransportClosed as exc:
            if reader.skipped_bytes or reader.in_frame:
                raise
            raise _ClosedBeforeReply(exc.message, code=exc.code) from exc
        reader.feed(data)


class _LinkBase:
    returns_responses: ClassVar[bool] = True

    def close(self) -> None:
        """Release the connection (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TcpLink(_LinkBase):
    """A TCP connection to a device agent (``provkit inject … tcp --ip IP --port PORT``).

    The connection is opened on the first exchange and kept for the next ones; if the agent
    closed it in between (its session ended), the next exchange reconnects.

    Args:
        ip: the agent's IPv4 address.
        port: its TCP port (the printed ``IP:PORT``).
        connect_timeout_s: the ``-t`` option: how long to try to connect.
        read_timeout_s: default response timeout of :meth:`exchange`.
    """

    def __init__(
        self,
        ip: str,
        port: int = DEFAULT_TCP_PORT,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S,
    ) -> None:
        self.ip = ip
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._stream: SocketStream | None = None

    def connect(self) -> None:
        """Open the connection now (done lazily by :meth:`exchange` otherwise).

        Raises:
            ConnectFailed: 1021 when the agent cannot be reached.
        """
        if self._stream is not None and not self._stream.peer_closed():
            return
        self.close()
        try:
            sock = socket.create_connection((self.ip, self.port), timeout=self.connect_timeout_s)
        except (OSError, OverflowError) as exc:
            raise ConnectFailed(
                f"{FtErrorCode.TCP_CONNECT_FAILED.format(self.ip, self.port)}: {exc}",
                code=FtErrorCode.TCP_CONNECT_FAILED,
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._stream = SocketStream(sock)

    def exchange(self, message: bytes, *, timeout_s: float | None = None, token: bytes = FCC_TOKEN) -> bytes:
        """Send ``message`` framed under ``token`` and return the response CBOR.

        Raises:
            TransportError: see :func:`exchange_over`; 1021/1022/1023 for TCP failures.
        """
        timeout = self.read_timeout_s if timeout_s is None else timeout_s
        reused = self._stream is not None
        self.connect()
        try:
            return self._exchange_once(message, token, timeout)
        except TransportError as exc:
            # Drop the connection: a late answer would otherwise be read as the next reply.
            self.close()
            retry = isinstance(exc, _ClosedBeforeReply) or exc.code == FtErrorCode.TCP_SEND_FAILED
            if not (reused and retry):
                raise
        except BaseException:
            self.close()
            raise
        # The agent closes a connection right after answering the message that ends a
        # session; a request sent in that instant meets a closed socket, unread. Send it once
        # more on a fresh connection.
        self.connect()
        try:
            return self._exchange_once(message, token, timeout)
        except TransportError:
            self.close()
            raise

    def _exchange_once(self, message: bytes, token: bytes, timeout_s: float) -> bytes:
        assert self._stream is not None
        return exchange_over(
            self._stream,
            message,
            token=token,
            timeout_s=timeout_s,
            receive_code=FtErrorCode.TCP_RECEIVE_FAILED,
        )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class SerialLink(_LinkBase):
    """A serial connection to a device agent, finding responses among the device's log lines.

    Args:
        port: the serial device (``/dev/ttyACM0``, ``COM3``, a pty).
        baud_rate: line speed.
        read_timeout_s: default response timeout of :meth:`exchange`.
    """

    def __init__(
        self,
        port: str,
        *,
        baud_rate: int = DEFAULT_BAUD_RATE,
        read_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S,
    ) -> None:
        self.port = port
        self.baud_rate = baud_rate
        self.read_timeout_s = read_timeout_s
        self._stream: SerialStream | None = None

    def connect(self) -> None:
        """Open the port now (done lazily by :meth:`exchange` otherwise).

        Raises:
            ConnectFailed: 1014 when the port does not exist, 1011 when it cannot be opened.
        """
        if self._stream is None:
            self._stream = SerialStream(open_serial(self.port, baud_rate=self.baud_rate))

    def exchange(self, message: bytes, *, timeout_s: float | None = None, token: bytes = FCC_TOKEN) -> bytes:
        """Send ``message`` framed under ``token`` and return the response CBOR.

        Raises:
            TransportError: see :func:`exchange_over`; 1011–1014 for serial failures.
        """
        self.connect()
        assert self._stream is not None
        # Stale log output (or a late answer to a timed-out request) must not be taken as the reply.
        self._stream.discard_input()
        return exchange_over(
            self._stream,
            message,
            token=token,
            timeout_s=self.read_timeout_s if timeout_s is None else timeout_s,
            receive_code=FtErrorCode.SERIAL_READ_FAILED,
        )

    def close(self) -> None:
        """Close the port (idempotent)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class FileLink(_LinkBase):
    """Writes request frames to a file instead of a device (``inject … to-file PATH``).

    The file holds exactly the bytes a TCP or serial link would send (token, length, CBOR,
    SHA-256), so it can be replayed later, e.g. ``cat PATH > /dev/ttyACM0``. Nothing comes
    back: :attr:`returns_responses` is ``False`` and :meth:`exchange` returns ``b""``, so
    the caller skips response verification. The first write of a link truncates the file,
    later ones (a keep-alive session) append. The file is written with mode 0600: a
    ``by_tool`` bundle holds the device's private key in clear.

    Args:
        path: the output file.
    """

    returns_responses: ClassVar[bool] = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._written = 0

    def write(self, message: bytes, *, token: bytes = FCC_TOKEN) -> Path:
        """Append the framed ``message`` to the file and return its path.

        Raises:
            TransportError: 1000 when the file cannot be written.
        """
        frame = encode_request(message, token)
        # A bundle can carry the device's private key: the file is the owner's alone from
        # its first byte (created 0600; an existing file is narrowed before it is truncated).
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if self._written else os.O_TRUNC)
        try:
            fd = os.open(self.path, flags, 0o600)
            with os.fdopen(fd, "wb") as out:
                mode = os.fstat(fd).st_mode
                if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
                    os.fchmod(fd, 0o600)
                out.write(frame)
        except OSError as exc:
            raise TransportError(
                FtErrorCode.GENERAL.format(f"cannot write {self.path}: {exc}"), code=FtErrorCode.GENERAL
            ) from exc
        self._written += 1
        return self.path

    def exchange(self, message: bytes, *, timeout_s: float | None = None, token: bytes = FCC_TOKEN) -> bytes:
        """Write the framed ``message``; return ``b""`` (there is no device response)."""
        del timeout_s  # nothing is awaited
        self.write(message, token=token)
        return b""
