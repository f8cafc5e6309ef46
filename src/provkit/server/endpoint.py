"""One UDP socket serving CoAP over DTLS 1.2 to many peers, sans-IO on python-mbedtls.

The socket belongs to an asyncio datagram endpoint; each datagram goes to the state of
its peer address:

* a peer without state only gets anywhere with a ClientHello. A single *doorman* TLS
  context answers ClientHellos without a valid cookie with a HelloVerifyRequest and keeps
  nothing (RFC 6347 §4.2.1: a spoofed flood costs no memory). A ClientHello with a valid
  cookie makes the doorman that peer's session, and a fresh doorman takes its place;
* half-open handshakes are bounded in number (the oldest is evicted) and in time
  (Mbed TLS's retransmission timer gives up after the handshake timeout);
* an established session decrypts records one at a time and passes each CoAP message to
  :class:`~provkit.server.coap.CoapSession`; requests are served by the endpoint's
  :class:`Service` in their own task.

Nothing a peer sends can raise out of :meth:`DtlsEndpoint.datagram_received`: failures
are counted (:class:`~provkit.server.counters.Counters`) and logged, rate-limited.
A plain-CoAP endpoint (``coap://``, NoSec) uses the same sessions without DTLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

from mbedtls import tls
from mbedtls.exceptions import TLSError

from provkit.crypto import x509
from provkit.errors import CryptoError
from provkit.server import dtls
from provkit.server.coap import CoapSession, Message
from provkit.server.counters import Counters, RefusalLog

_log = logging.getLogger(__name__)

READ_CHUNK: Final = 4096
DEFAULT_MAX_HANDSHAKES: Final = 2000
DEFAULT_IDLE_TIMEOUT: Final = 600.0
DEFAULT_MAX_SESSIONS: Final = 100_000


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The certificate a peer authenticated with.

    Attributes:
        common_name: the subject CN (the endpoint name the device may register).
        fingerprint: SHA-256 of the DER, hex.
        issuer: RFC 4514 issuer.
        serial_number: hex serial.
    """

    common_name: str | None
    fingerprint: str
    issuer: str
    serial_number: str

    @classmethod
    def from_der(cls, der: bytes) -> PeerCertificate:
        """Read the fields from a DER certificate (Mbed TLS has verified it already)."""
        fingerprint = x509.der_fingerprint(der).hex()
        try:
            cert = x509.load_certificate(der)
        except CryptoError:
            return cls(None, fingerprint, "", "")
        return cls(
            x509.common_name(cert), fingerprint, cert.issuer.rfc4514_string(), format(cert.serial_number, "x")
        )


class PskIdentities(Protocol):
    """The PSK store of a TLS context, able to say which identity the last lookup was for."""

    def take_last(self) -> tuple[str, str] | None:
        """Return and forget ``(identity, endpoint name)`` of the last successful lookup."""
        ...


class Session:
    """A secured (or NoSec) CoAP session with one peer, as services see it."""

    def __init__(self, endpoint: _BaseEndpoint, address: tuple[Any, ...], mode: str) -> None:
        self.endpoint = endpoint
        self.address = address
        self.label = f"{address[0]}:{address[1]}"
        self.mode = mode
        """``certificate``, ``psk`` or ``nosec``."""
        self.certificate: PeerCertificate | None = None
        self.psk_identity: str | None = None
        self.psk_endpoint: str | None = None
        """The endpoint name the PSK identity was recorded for."""
        self.state: dict[str, Any] = {}
        """What services keep about the peer (the registration it holds …)."""
        self.coap = CoapSession(self._send_plain, endpoint.counters)
        self.last_activity = time.monotonic()

    def _send_plain(self, data: bytes) -> None:
        self.endpoint.send_application_data(self, data)

    def close(self) -> None:
        """End the session (the peer must handshake again)."""
        self.endpoint.close_session(self)


class Service(Protocol):
    """What answers the CoAP requests of an endpoint (the bootstrap server, the LwM2M server)."""

    name: str

    async def serve(self, session: Session, request: Any) -> Any:
        """Return the response to ``request``."""
        ...


class _Peer:
    __slots__ = ("buffer", "created", "established", "session")

    def __init__(self, buffer: tls.TLSWrappedBuffer | None, session: Session) -> None:
        self.buffer = buffer
        self.session = session
        self.created = time.monotonic()
        self.established = buffer is None


class _BaseEndpoint(asyncio.DatagramProtocol):
    """What DTLS and plain endpoints share: the socket, the services, the counters, the tasks."""

    def __init__(
        self, service: Service, counters: Counters, *, idle_timeout: float, max_sessions: int
    ) -> None:
        self.service = service
        self.counters = counters
        self.refusals = RefusalLog(_log)
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: OrderedDict[tuple[Any, ...], _Peer] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the socket's transport."""
        # asyncio's selector datagram transport is not registered as a DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for an earlier datagram: nothing to do but note it."""
        _log.debug("%s: socket error %s", self.service.name, exc)

    @property
    def port(self) -> int:
        """The UDP port the endpoint is bound to."""
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def sendto(self, data: bytes, address: tuple[Any, ...]) -> None:
        """Send one datagram (dropped if the socket is closed)."""
        if self.transport is not None and not self.transport.is_closing():
            self.counters.datagrams_out += 1
            self.transport.sendto(data, address)

    def send_application_data(self, session: Session, data: bytes) -> None:
        """Send one CoAP message to ``session``'s peer (protected by DTLS where it applies)."""
        raise NotImplementedError

    def close_session(self, session: Session) -> None:
        """Forget ``session``'s peer."""
        peer = self.peers.get(session.address)
        if peer is not None and peer.session is session:
            del self.peers[session.address]
            session.coap.close()

    def _deliver(self, peer: _Peer, plaintext: bytes) -> None:
        session = peer.session
        session.last_activity = time.monotonic()
        request = session.coap.receive(plaintext)
        if request is None:
            return
        self.counters.coap_requests += 1
        task = asyncio.get_running_loop().create_task(self._serve(session, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, session: Session, request: Any) -> None:
        try:
            response = await self.service.serve(session, request)
        except Exception:  # a service bug must not take the endpoint down
            _log.exception("%s: serving %s from %s failed", self.service.name, request, session.label)
            from provkit.server.coap import Code

            response = Message(code=Code.INTERNAL_SERVER_ERROR)
        if response is not None:
            session.coap.respond(request, response)

    def tick(self, now: float) -> None:
        """Periodic work: retransmissions, idle sessions."""
        for address, peer in list(self.peers.items()):
            if peer.established:
                peer.session.coap.tick(now)
                if now - peer.session.last_activity > self.idle_timeout:
                    self.counters.sessions_closed_idle += 1
                    del self.peers[address]
                    peer.session.coap.close()

    async def drain(self) -> None:
        """Wait for the requests being served."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class PlainEndpoint(_BaseEndpoint):
    """CoAP without DTLS (``coap://``, LwM2M NoSec mode)."""

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Pass one datagram to its peer's session."""
        self.counters.datagrams_in += 1
        peer = self.peers.get(addr)
        if peer is None:
            if len(self.peers) >= self.max_sessions:
                self.peers.popitem(last=False)
            peer = _Peer(None, Session(self, addr, "nosec"))
            self.peers[addr] = peer
        self._deliver(peer, data)

    def send_application_data(self, session: Session, data: bytes) -> None:
        """Send a CoAP message as it is."""
        self.sendto(data, session.address)


class DtlsEndpoint(_BaseEndpoint):
    """CoAP over DTLS 1.2 (``coaps://``): certificate and PSK modes.

    Args:
        service: answers the requests.
        context: the Mbed TLS server context (replace it with :meth:`set_context`).
        psk_identities: the context's PSK store, read after each handshake step.
        counters: where work and refusals are counted.
        max_handshakes: half-open handshakes kept at most (the oldest is evicted).
        idle_timeout: seconds of silence after which an established session is dropped.
        max_sessions: sessions kept at most (the least recently created is dropped).
        mtu: largest datagram sent.
    """

    def __init__(
        self,
        service: Service,
        context: tls.ServerContext,
        psk_identities: PskIdentities | None,
        counters: Counters,
        *,
        max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        mtu: int = dtls.DEFAULT_MTU,
    ) -> None:
        super().__init__(service, counters, idle_timeout=idle_timeout, max_sessions=max_sessions)
        self.max_handshakes = max_handshakes
        self.mtu = mtu
        self._context = context
        self._psk = psk_identities
        self._doorman = context.wrap_buffers()
        self._handshaking: OrderedDict[tuple[Any, ...], _Peer] = OrderedDict()
        self.on_established: Callable[[Session], None] | None = None

    def set_context(self, context: tls.ServerContext, psk_identities: PskIdentities | None) -> None:
        """Use ``context`` for new handshakes (trust changed); sessions keep theirs."""
        self._context = context
        self._psk = psk_identities
        self._doorman = context.wrap_buffers()

    # ------------------------------------------------------------------ datagrams
    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Route one datagram to the doorman, a handshake, or an established session."""
        self.counters.datagrams_in += 1
        try:
            self._route(data, addr)
        except Exception:  # never let one datagram end the endpoint
            _log.exception("%s: datagram from %s:%s not handled", self.service.name, addr[0], addr[1])

    def _route(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if not dtls.looks_like_dtls(data):
            self.counters.not_dtls += 1
            self.refusals.refuse(
                "not-dtls", "%s: %d bytes from %s:%s are not DTLS", self.service.name, len(data), *addr[:2]
            )
            return
        peer = self.peers.get(addr)
        if peer is not None and peer.established and not dtls.is_client_hello(data):
            self._feed_established(peer, data)
        elif peer is not None and not peer.established:
            self._step_handshake(peer, data)
        elif dtls.is_client_hello(data):
            self._admit(data, addr)
        else:
            self.counters.records_dropped += 1

    def _admit(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Let the doorman answer a ClientHello: a cookie request, or a new handshake."""
        buffer = self._doorman
        buffer.setcookieparam(f"{addr[0]}:{addr[1]}".encode())
        buffer.receive_from_network(data)
        try:
            self._drive(buffer, addr)
        except tls.HelloVerifyRequest:
            self.counters.hello_verify_sent += 1
            self._flush(buffer, addr)
            return
        except TLSError as exc:
            self._doorman = self._context.wrap_buffers()
            self.counters.handshakes_failed += 1
            self.refusals.refuse(
                "hello", "%s: ClientHello from %s:%s refused: %s", self.service.name, *addr[:2], exc
            )
            return
        if dtls.handshake_step(buffer) == "CLIENT_HELLO":
            # Nothing usable was in the datagram; the doorman stays as it was.
            self.counters.records_dropped += 1
            return
        # The cookie was valid: this context now carries the peer's handshake.
        self._doorman = self._context.wrap_buffers()
        self.counters.handshakes_started += 1
        old = self.peers.pop(addr, None)
        if old is not None:
            old.session.coap.close()
        peer = _Peer(buffer, Session(self, addr, "certificate"))
        self.peers[addr] = peer
        self._handshaking[addr] = peer
        while len(self._handshaking) > self.max_handshakes:
            evicted_addr, _evicted = self._handshaking.popitem(last=False)
            self.peers.pop(evicted_addr, None)
            self.counters.handshakes_evicted += 1
            self.refusals.refuse(
                "evicted",
                "%s: too many half-open handshakes; dropped %s:%s",
                self.service.name,
                *evicted_addr[:2],
            )
        self._flush(buffer, addr)
        self._after_step(peer)

    def _drive(self, buffer: tls.TLSWrappedBuffer, addr: tuple[Any, ...]) -> None:
        """Step the handshake until Mbed TLS needs the peer's next flight, sending what it writes."""
        while not dtls.handshake_over(buffer):
            try:
                buffer.do_handshake()
            except tls.WantWriteError:
                self._flush(buffer, addr)
            except tls.WantReadError:
                self._flush(buffer, addr)
                return

    def _flush(self, buffer: tls.TLSWrappedBuffer, addr: tuple[Any, ...]) -> None:
        pending = buffer.peek_outgoing(1 << 16)
        if pending:
            buffer.consume_outgoing(len(pending))
            for datagram in dtls.datagrams(pending, self.mtu):
                self.sendto(datagram, addr)

    def _step_handshake(self, peer: _Peer, data: bytes) -> None:
        assert peer.buffer is not None
        peer.buffer.receive_from_network(data)
        self._continue(peer)

    def _continue(self, peer: _Peer) -> None:
        assert peer.buffer is not None
        addr = peer.session.address
        try:
            self._drive(peer.buffer, addr)
        except TLSError as exc:
            self._flush(peer.buffer, addr)  # the alert that tells the peer why
            self._fail_handshake(peer, exc)
            return
        self._after_step(peer)

    def _after_step(self, peer: _Peer) -> None:
        if self._psk is not None:
            looked_up = self._psk.take_last()
            if looked_up is not None:
                peer.session.psk_identity, peer.session.psk_endpoint = looked_up
        assert peer.buffer is not None
        if dtls.handshake_over(peer.buffer) and not peer.established:
            self._established(peer)

    def _fail_handshake(self, peer: _Peer, exc: Exception) -> None:
        addr = peer.session.address
        self._handshaking.pop(addr, None)
        if self.peers.get(addr) is peer:
            del self.peers[addr]
        self.counters.handshakes_failed += 1
        self.refusals.refuse(
            "handshake", "%s: DTLS handshake with %s refused: %s", self.service.name, peer.session.label, exc
        )

    def _established(self, peer: _Peer) -> None:
        assert peer.buffer is not None
        session = peer.session
        self._handshaking.pop(session.address, None)
        peer.established = True
        self.counters.handshakes_completed += 1
        if dtls.is_psk_suite(peer.buffer.cipher()):
            session.mode = "psk"
        else:
            der = peer.buffer.getpeercert(binary_form=True)
            session.certificate = PeerCertificate.from_der(der) if der else None
        while len(self.peers) > self.max_sessions:
            self.peers.popitem(last=False)
        if self.on_established is not None:
            self.on_established(session)
        # Application data may have arrived in the same datagram as the Finished message.
        self._read_records(peer)

    def _feed_established(self, peer: _Peer, data: bytes) -> None:
        assert peer.buffer is not None
        peer.buffer.receive_from_network(data)
        if not self._read_records(peer):
            self.counters.records_dropped += 1

    def _read_records(self, peer: _Peer) -> bool:
        """Decrypt every record waiting for ``peer`` and deliver its CoAP message; return whether any came."""
        assert peer.buffer is not None
        delivered = False
        chunk = bytearray(READ_CHUNK)
        while True:
            try:
                size = peer.buffer.readinto(chunk, READ_CHUNK)  # type: ignore[arg-type]  # the stub says bytes; it writes
            except (tls.WantReadError, tls.WantWriteError):
                break
            except tls.RaggedEOF:
                self.close_session(peer.session)
                break
            except TLSError as exc:
                if dtls.is_close_notify(exc):
                    super().close_session(peer.session)
                    break
                self.refusals.refuse(
                    "record", "%s: session with %s ended: %s", self.service.name, peer.session.label, exc
                )
                self.close_session(peer.session)
                break
            if size <= 0:
                break
            delivered = True
            self._deliver(peer, bytes(chunk[:size]))
        self._flush(peer.buffer, peer.session.address)
        return delivered

    def send_application_data(self, session: Session, data: bytes) -> None:
        """Protect one CoAP message and send it."""
        peer = self.peers.get(session.address)
        if peer is None or peer.session is not session or peer.buffer is None or not peer.established:
            return
        try:
            peer.buffer.write(data)
        except TLSError as exc:
            _log.debug("%s: cannot write to %s: %s", self.service.name, session.label, exc)
            return
        self._flush(peer.buffer, session.address)

    def close_session(self, session: Session) -> None:
        """Send close_notify and forget the peer."""
        peer = self.peers.get(session.address)
        if peer is not None and peer.session is session and peer.buffer is not None:
            with contextlib.suppress(TLSError):
                peer.buffer.shutdown()
            self._flush(peer.buffer, session.address)
        self._handshaking.pop(session.address, None)
        super().close_session(session)

    def tick(self, now: float) -> None:
        """Retransmit handshake flights whose timer ran out; end handshakes that gave up."""
        for peer in list(self._handshaking.values()):
            if now - peer.session.last_activity >= 1.0:
                peer.session.last_activity = now
                self._continue(peer)
                if self._handshaking.get(peer.session.address) is peer and now - peer.created > 120:
                    self._handshaking.pop(peer.session.address, None)
                    self.peers.pop(peer.session.address, None)
                    self.counters.handshakes_timed_out += 1
        super().tick(now)
