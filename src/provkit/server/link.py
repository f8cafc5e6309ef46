"""A device's end of the wire: CoAP over DTLS 1.2 (or plain CoAP) on one UDP socket, blocking.

:class:`DeviceLink` connects as Mbed TLS devices do (certificate mode or PSK), exchanges
CoAP messages with retransmission, and serves the requests a bootstrap server sends.
Failures are :class:`~provkit.errors.ConnectError` with a classification a factory line
can act on:

* ``tls-alert`` — the server ended the handshake with an alert (its name is in the message);
* ``ca-untrusted`` — the server did not know the device's CA (alert ``unknown_ca``), or the
  device could not verify the server with the CA it was given;
* ``timeout`` — no answer in time;
* ``unreachable`` — the network refused (no route, ICMP port unreachable).
"""

from __future__ import annotations

import os
import random
import select
import socket
import time
from collections.abc import Callable
from typing import Any, Final

from mbedtls import tls
from mbedtls.exceptions import TLSError

from provkit.errors import ConnectError
from provkit.server import dtls
from provkit.server.coap import (
    ACK_RANDOM_FACTOR,
    ACK_TIMEOUT,
    MAX_RETRANSMIT,
    Code,
    Message,
    Type,
    decode,
    empty_ack,
)
from provkit.server.outcome import Failure

READ_CHUNK: Final = 4096
_ALERT_HINTS: Final = {
    "unknown_ca": "the server does not trust the device's CA: 'provkit server trust-ca' the factory CA",
    "unknown_psk_identity": "the server has no PSK recorded for this identity",
    "certificate_expired": "the device certificate has expired (or the device clock is wrong)",
    "bad_certificate": "the server refused the device certificate",
    "bad_record_mac": "in PSK mode: the device's key is not the one the server holds for its identity",
}


class DeviceLink:
    """One device's connection to one server URI.

    Args:
        host: server host.
        port: server UDP port.
        configuration: the DTLS client configuration; ``None`` for plain CoAP (NoSec).
        timeout: seconds for the handshake and for each exchange.
        check_server: called with the server certificate (DER) after the handshake; raises
            :class:`ConnectError` to refuse the server (certificate usage 3: exact match).
    """

    def __init__(
        self,
        host: str,
        port: int,
        configuration: tls.DTLSConfiguration | None,
        *,
        timeout: float = 10.0,
        check_server: Callable[[bytes], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._check_server = check_server
        self._buffer: tls.TLSWrappedBuffer | None = None
        self._configuration = configuration
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._mid = random.randrange(0x10000)
        self._queue: list[bytes] = []
        self.alert: tuple[int, int] | None = None
        try:
            self._sock.connect((host, port))
        except OSError as exc:
            self._sock.close()
            raise ConnectError(
                f"cannot reach {host}:{port}: {exc.strerror or exc}",
                failure=Failure.UNREACHABLE,
                code=Failure.UNREACHABLE.code,
            ) from exc

    @property
    def local_address(self) -> str:
        """``host:port`` of the device's socket."""
        host, port = self._sock.getsockname()[:2]
        return f"{host}:{port}"

    # ------------------------------------------------------------------ datagrams
    def _send_raw(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except OSError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: OSError) -> ConnectError:
        return ConnectError(
            f"{self.host}:{self.port} is unreachable: {exc.strerror or exc}",
            failure=Failure.UNREACHABLE,
            code=Failure.UNREACHABLE.code,
        )

    def _receive_raw(self, deadline: float) -> bytes | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([self._sock], [], [], remaining)
        if not readable:
            return None
        try:
            return self._sock.recv(65536)
        except OSError as exc:
            raise self._unreachable(exc) from exc

    def _flush(self) -> None:
        assert self._buffer is not None
        pending = self._buffer.peek_outgoing(1 << 16)
        if pending:
            self._buffer.consume_outgoing(len(pending))
            for datagram in dtls.datagrams(pending):
                self._send_raw(datagram)

    # ------------------------------------------------------------------ handshake
    def connect(self) -> None:
        """Run the DTLS handshake (nothing to do for plain CoAP).

        Raises:
            ConnectError: classified as described in the module docstring.
        """
        if self._configuration is None:
            return
        buffer = tls.ClientContext(self._configuration).wrap_buffers(None)
        self._buffer = buffer
        deadline = time.monotonic() + self.timeout
        while not dtls.handshake_over(buffer):
            try:
                buffer.do_handshake()
            except tls.WantWriteError:
                self._flush()
            except tls.WantReadError:
                self._flush()
                data = self._receive_raw(min(deadline, time.monotonic() + 0.25))
                if data is not None:
                    self.alert = dtls.plaintext_alert(data) or self.alert
                    buffer.receive_from_network(data)
                elif time.monotonic() >= deadline:
                    raise self._handshake_timeout() from None
            except TLSError as exc:
                raise self._handshake_failure(exc) from exc
        if self._check_server is not None:
            server_der = buffer.getpeercert(binary_form=True)
            self._check_server(server_der or b"")

    def _handshake_timeout(self) -> ConnectError:
        mode = (
            "PSK" if self._configuration is not None and self._configuration.pre_shared_key else "certificate"
        )
        hint = (
            "in PSK mode a wrong key looks like this: the server drops what it cannot authenticate"
            if mode == "PSK"
            else "is the server running, and is this its DTLS port?"
        )
        return ConnectError(
            f"no DTLS handshake with {self.host}:{self.port} within {self.timeout:g} s ({mode} mode)",
            failure=Failure.TIMEOUT,
            code=Failure.TIMEOUT.code,
            hint=hint,
        )

    def _handshake_failure(self, exc: TLSError) -> ConnectError:
        text = str(exc)
        if self.alert is not None:
            name = dtls.alert_name(self.alert[1])
            failure = Failure.CA_UNTRUSTED if name == "unknown_ca" else Failure.TLS_ALERT
            hint = _ALERT_HINTS.get(name)
            return ConnectError(
                f"{self.host}:{self.port} refused the DTLS handshake with alert {name}",
                failure=failure,
                code=failure.code,
                hint=hint,
            )
        if "X509" in text or "verif" in text.lower():
            return ConnectError(
                f"the device does not trust the server at {self.host}:{self.port}: {text}",
                failure=Failure.CA_UNTRUSTED,
                code=Failure.CA_UNTRUSTED.code,
                hint="the server CA stored in the device is not the one that signed the server certificate",
            )
        if "TIMEOUT" in text.upper() or "timed out" in text:
            return self._handshake_timeout()
        return ConnectError(
            f"DTLS handshake with {self.host}:{self.port} failed: {text}",
            failure=Failure.TLS_ALERT,
            code=Failure.TLS_ALERT.code,
        )

    # ------------------------------------------------------------------ CoAP
    def send(self, data: bytes) -> None:
        """Send one CoAP message (protected when DTLS is used)."""
        if self._buffer is None:
            self._send_raw(data)
            return
        try:
            self._buffer.write(data)
        except TLSError as exc:
            raise ConnectError(
                f"the DTLS session failed: {exc}", failure=Failure.TLS_ALERT, code=Failure.TLS_ALERT.code
            ) from exc
        self._flush()

    def receive(self, deadline: float) -> bytes | None:
        """Return the next CoAP message received before ``deadline``, or ``None``."""
        while True:
            if self._queue:
                return self._queue.pop(0)
            data = self._receive_raw(deadline)
            if data is None:
                return None
            if self._buffer is None:
                return data
            self._buffer.receive_from_network(data)
            chunk = bytearray(READ_CHUNK)
            while True:
                try:
                    size = self._buffer.readinto(chunk, READ_CHUNK)  # type: ignore[arg-type]  # the stub says bytes
                except (tls.WantReadError, tls.WantWriteError):
                    break
                except (tls.RaggedEOF, TLSError) as exc:
                    raise ConnectError(
                        f"{self.host}:{self.port} closed the DTLS session: {exc}",
                        failure=Failure.REFUSED,
                        code=Failure.REFUSED.code,
                    ) from exc
                if size <= 0:
                    break
                self._queue.append(bytes(chunk[:size]))
            self._flush()

    def next_mid(self) -> int:
        """A fresh CoAP message ID."""
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    def request(
        self, message: Any, *, serve: Callable[[Any], Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Send a confirmable request and return its response, retransmitting as RFC 7252 says.

        Requests the server sends meanwhile are answered by ``serve`` (4.05 without it).

        Raises:
            ConnectError: no response (``timeout``).
        """
        message.mtype = Type.CON
        message.mid = self.next_mid()
        message.token = os.urandom(4)
        raw = message.encode()
        limit = time.monotonic() + (timeout or self.timeout)
        interval = ACK_TIMEOUT * random.uniform(1.0, ACK_RANDOM_FACTOR)
        sends = 0
        while sends <= MAX_RETRANSMIT and time.monotonic() < limit:
            self.send(raw)
            sends += 1
            until = min(limit, time.monotonic() + interval)
            interval *= 2
            while True:
                data = self.receive(until)
                if data is None:
                    break
                reply = decode(data)
                if reply is None:
                    continue
                if reply.code.is_request():
                    self.answer(reply, serve)
                    continue
                if reply.token == message.token and reply.code is not Code.EMPTY:
                    if reply.mtype is Type.CON:
                        self._ack(reply.mid)
                    return reply
        raise ConnectError(
            f"no answer from {self.host}:{self.port} to {message.code} /{'/'.join(message.opt.uri_path)}",
            failure=Failure.TIMEOUT,
            code=Failure.TIMEOUT.code,
        )

    def _ack(self, mid: int) -> None:
        self.send(empty_ack(mid))

    def answer(self, request: Any, serve: Callable[[Any], Any] | None) -> None:
        """Answer one incoming request with ``serve``'s response (piggybacked)."""
        response = serve(request) if serve is not None else Message(code=Code.METHOD_NOT_ALLOWED)
        response.token = request.token
        if request.mtype is Type.CON:
            response.mtype = Type.ACK
            response.mid = request.mid
        else:
            response.mtype = Type.NON
            response.mid = self.next_mid()
        self.send(response.encode())

    def serve_until(
        self, serve: Callable[[Any], Any], done: Callable[[], bool], *, timeout: float | None = None
    ) -> None:
        """Answer the server's requests with ``serve`` until ``done()`` is true.

        Raises:
            ConnectError: ``done()`` did not become true in time (``timeout``).
        """
        limit = time.monotonic() + (timeout or self.timeout)
        while not done():
            data = self.receive(limit)
            if data is None:
                raise ConnectError(
                    f"{self.host}:{self.port} did not finish in {timeout or self.timeout:g} s",
                    failure=Failure.TIMEOUT,
                    code=Failure.TIMEOUT.code,
                )
            message = decode(data)
            if message is not None and message.code.is_request():
                self.answer(message, serve)

    def close(self) -> None:
        """Send close_notify (DTLS) and close the socket."""
        if self._buffer is not None and dtls.handshake_over(self._buffer):
            try:
                self._buffer.shutdown()
                self._flush()
            except (TLSError, ConnectError):
                pass
        self._sock.close()

    def __enter__(self) -> DeviceLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
