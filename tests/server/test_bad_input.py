"""Bad input reaches the server: it counts, logs, keeps serving, and changes nothing in the registry."""

from __future__ import annotations

import os
import socket
import time

import pytest
from mbedtls import tls

from provkit.server import ServerThread, dtls
from provkit.server.client import open_link, register
from provkit.server.coap import Code, Message, Type

from .conftest import World

pytestmark = pytest.mark.integration

CLIENT_HELLO_HEAD = bytes.fromhex("16fefd0000000000000000")  # handshake, DTLS 1.2, epoch 0, seq 0


def _flight(buffer: tls.TLSWrappedBuffer) -> bytes:
    """Step a client handshake until it waits for the server; return what it wrote."""
    while True:
        try:
            buffer.do_handshake()
        except tls.WantWriteError:
            continue
        except tls.WantReadError:
            break
    pending = buffer.peek_outgoing(65536)
    buffer.consume_outgoing(len(pending))
    return pending


def _client_hello() -> bytes:
    """A fresh ClientHello without a cookie, as a device's first datagram."""
    configuration = dtls.client_configuration(psk=("x", b"k" * 16))
    return _flight(tls.ClientContext(configuration).wrap_buffers(None))


def _wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _registry_is_empty(world: World) -> None:
    with world.registry() as registry:
        assert registry.connections.find() == []


def test_garbage_and_floods_cost_nothing_and_change_nothing(world: World, server: ServerThread) -> None:
    """Non-DTLS bytes, truncated records and a flood of cookie-less ClientHellos: counted, no state kept."""
    assert server.ports is not None
    target = ("127.0.0.1", server.ports.lwm2m)
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
    try:
        for sock in senders:
            sock.sendto(b"GET / HTTP/1.1\r\n\r\n", target)
            sock.sendto(os.urandom(300), target)
            sock.sendto(CLIENT_HELLO_HEAD + b"\x00\x40" + b"\x01", target)  # truncated record
            for _ in range(10):
                sock.sendto(_client_hello(), target)
        _wait(
            lambda: server.counters.hello_verify_sent >= 200,
            "every ClientHello is answered with a cookie request",
        )
    finally:
        for sock in senders:
            sock.close()
    counters = server.counters
    assert counters.not_dtls >= 20 and counters.handshakes_started == 0
    assert server.call(lambda: len(server.runtime.endpoints["lwm2m"].peers)) == 0  # type: ignore[union-attr]
    _registry_is_empty(world)
    assert register(world.cert_account(f"coaps://{target[0]}:{target[1]}", "dev-1"), "dev-1").location


def test_half_open_handshakes_are_bounded(world: World) -> None:
    """Handshakes that pass the cookie exchange and then stall are evicted beyond the limit."""
    with ServerThread(world.config(max_handshakes=5)) as server:
        assert server.ports is not None
        target = ("127.0.0.1", server.ports.lwm2m)
        sockets = []
        configuration = dtls.client_configuration(psk=("x", b"k" * 16))
        for _ in range(12):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(target)
            sock.settimeout(5)
            buffer = tls.ClientContext(configuration).wrap_buffers(None)
            for _round in range(2):  # ClientHello, then ClientHello with the cookie: the server commits state
                sock.send(_flight(buffer))
                buffer.receive_from_network(sock.recv(65536))
            sockets.append(sock)  # and never answer again
        _wait(lambda: server.counters.handshakes_started == 12, "twelve handshakes started")
        assert server.counters.handshakes_evicted == 7
        assert server.call(lambda: len(server.runtime.endpoints["lwm2m"].peers)) == 5  # type: ignore[union-attr]
        for sock in sockets:
            sock.close()
        assert register(world.cert_account(f"coaps://{target[0]}:{target[1]}", "dev-1"), "dev-1").location


def test_malformed_coap_duplicates_and_replays(world: World, server: ServerThread) -> None:
    """Inside DTLS: malformed CoAP is dropped; a duplicate Register (same MID) is answered from the
    cache; a replayed DTLS record is dropped by Mbed TLS's anti-replay — one registration in all."""
    assert server.ports is not None
    account = world.cert_account(f"coaps://127.0.0.1:{server.ports.lwm2m}", "dev-1")
    with open_link(account) as link:
        link.send(b"\xff\x00garbage")  # CoAP version 3: not a message
        link.send(b"\x40")  # too short
        sent: list[bytes] = []
        original = link._send_raw

        def capture(data: bytes) -> None:
            sent.append(data)
            original(data)

        link._send_raw = capture  # type: ignore[method-assign]
        register_message = Message(code=Code.POST, uri_path=("rd",), uri_query=("ep=dev-1",))
        register_message.mtype = Type.CON
        register_message.mid = 4242
        register_message.token = b"tok1"
        raw = register_message.encode()
        link.send(raw)
        first = link.receive(time.monotonic() + 5)
        link.send(raw)  # a CoAP duplicate: same message ID
        second = link.receive(time.monotonic() + 5)
        assert first is not None and first == second
        original(sent[0])  # the very same protected datagram again: a DTLS replay
        time.sleep(0.2)
    _wait(lambda: server.counters.coap_duplicates == 1, "the duplicate is counted")
    counters = server.counters
    assert counters.coap_malformed == 2 and counters.registrations == 1 and counters.records_dropped >= 1
    with world.registry() as registry:
        (record,) = registry.connections.find()
    assert record.successes == 1


def test_bad_registrations_are_answered_4_00(world: World, server: ServerThread) -> None:
    """No endpoint name, a bad lifetime, a bad object list, unknown paths: 4.00 / 4.04, nothing recorded."""
    assert server.ports is not None
    account = world.cert_account(f"coaps://127.0.0.1:{server.ports.lwm2m}", "dev-1")
    with open_link(account) as link:
        cases = [
            (Message(code=Code.POST, uri_path=("rd",)), Code.BAD_REQUEST),
            (Message(code=Code.POST, uri_path=("rd",), uri_query=("ep=dev-1", "lt=-5")), Code.BAD_REQUEST),
            (
                Message(code=Code.POST, uri_path=("rd",), uri_query=("ep=dev-1",), payload=b"\xff\xfe"),
                Code.BAD_REQUEST,
            ),
            (Message(code=Code.GET, uri_path=("secret",)), Code.NOT_FOUND),
            (Message(code=Code.POST, uri_path=("bs",), uri_query=("ep=dev-1",)), Code.NOT_FOUND),
        ]
        for message, expected in cases:
            assert link.request(message).code is expected
    _registry_is_empty(world)
