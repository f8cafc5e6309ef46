"""One client cannot starve the device agent: concurrent connections, idle limit, session deadline.

No timed assertions: the bounds below are generous waits for something that must happen
(a good client served, a connection closed), never measurements.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from provkit.codes import FtcdCommStatus
from provkit.device.fcc import fcc_init
from provkit.device.handlers import device_handlers
from provkit.transport.agent import DeviceAgent, SessionEnd
from provkit.transport.links import TcpLink
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import SDA_TOKEN, encode_request
from provkit.wire.response import decode_response
from support.bundles import device_bundle

from .conftest import make_agent
from .test_agent_tcp import connect, read_response

pytestmark = pytest.mark.integration

GENEROUS_S = 15.0
"""How long a test waits for what must happen; the agent's limits in these tests are far shorter."""


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + GENEROUS_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)


@contextmanager
def _in_background(
    client: Callable[[socket.socket, threading.Event], None], server: TcpAgentServer
) -> Iterator[None]:
    """Run a misbehaving client on its own connection for as long as the block runs."""
    stop = threading.Event()

    def run() -> None:
        with socket.create_connection(server.address) as sock:
            sock.settimeout(1)
            while not stop.is_set():
                try:
                    client(sock, stop)
                except OSError:
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(GENEROUS_S)


_SDA = encode_request(b"x" * 200, token=SDA_TOKEN)


def _trickle(sock: socket.socket, stop: threading.Event) -> None:
    """A slowloris: an SDA frame a byte at a time, frame after frame."""
    for index in range(len(_SDA)):
        if stop.is_set():
            return
        sock.sendall(_SDA[index : index + 1])
        stop.wait(0.02)


def _bad_signature() -> bytes:
    frame = bytearray(encode_request(b"noise"))
    frame[-1] ^= 0xFF
    return bytes(frame)


def _noise(sock: socket.socket, stop: threading.Event) -> None:
    """Malformed frames (bad signature) back to back."""
    del stop
    sock.sendall(_bad_signature())
    sock.recv(64)


def test_a_good_client_is_served_while_others_trickle_idle_and_send_noise() -> None:
    """The slowloris test: a real FCC device with the default limits (60 s idle, 300 s session)
    answers a good client within seconds beside a 1-byte trickler, five idle connections and a
    noise flood (it used to wait for all of them: more than 150 s)."""
    fcc = fcc_init(":memory:")
    agent = DeviceAgent(device_handlers(fcc, fcc.kcm))
    with TcpAgentServer(agent, "127.0.0.1", 0) as server, ExitStack() as stack:
        stack.enter_context(_in_background(_trickle, server))
        stack.enter_context(_in_background(_noise, server))
        idle = [stack.enter_context(socket.create_connection(server.address)) for _ in range(5)]
        time.sleep(0.3)  # let the misbehaving clients take their places first
        with TcpLink(*server.address, connect_timeout_s=GENEROUS_S) as link:
            answer = link.exchange(device_bundle("ep-slowloris"), timeout_s=GENEROUS_S)
        assert decode_response(answer).return_status == 0
        assert fcc.verify_device_configured().ok
        assert len(idle) == 5


def test_noise_does_not_restart_the_idle_clock() -> None:
    """A client that only sends malformed frames is answered each time, then closed with status 12."""
    with TcpAgentServer(make_agent(read_timeout_s=0.5), "127.0.0.1", 0) as server:
        frame = _bad_signature()
        statuses = []
        with connect(server) as sock:
            while len(statuses) < 10_000:
                try:
                    sock.sendall(frame)
                    status = read_response(sock).status
                except (AssertionError, OSError):
                    # Closed by the agent: its status 12 may be lost to the reset our next send caused.
                    statuses.append(FtcdCommStatus.NETWORK_TIMEOUT)
                    break
                statuses.append(status)
                if status == FtcdCommStatus.NETWORK_TIMEOUT:
                    break
                time.sleep(0.05)
        assert statuses.count(FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE) >= 3  # each one answered
        assert statuses[-1] == FtcdCommStatus.NETWORK_TIMEOUT
        _wait_for(lambda: SessionEnd.TIMED_OUT in server.sessions, "the noisy connection's end")


def test_served_frames_keep_a_connection_until_its_deadline() -> None:
    """Good frames restart the idle limit, but not the session deadline: the connection ends there."""
    with TcpAgentServer(make_agent(read_timeout_s=0.5, session_timeout_s=1.0), "127.0.0.1", 0) as server:
        answers = []
        with connect(server) as sock:
            while len(answers) < 10_000:
                try:
                    sock.sendall(encode_request(b"ping"))
                    status = read_response(sock).status
                except (AssertionError, OSError):
                    # Closed by the agent: its status 12 may be lost to the reset our next send caused.
                    status = FtcdCommStatus.NETWORK_TIMEOUT
                answers.append(status)
                if status != 0:
                    break
                time.sleep(0.1)
        # More than 0.5 s of served frames: the idle limit did not end it, the deadline did.
        assert answers.count(0) >= 3 and answers[-1] == FtcdCommStatus.NETWORK_TIMEOUT
        _wait_for(lambda: SessionEnd.DEADLINE in server.sessions, "the deadline")
        assert SessionEnd.TIMED_OUT not in server.sessions


def test_an_open_session_holds_the_device_only_until_its_idle_limit() -> None:
    """A client that opened a session and went silent keeps others waiting at most the idle limit."""
    with TcpAgentServer(make_agent(read_timeout_s=0.5), "127.0.0.1", 0) as server:
        holder = TcpLink(*server.address)
        assert holder.exchange(b"keep", timeout_s=GENEROUS_S) == b"KEEP"  # session not finished
        with TcpLink(*server.address) as waiter:
            assert waiter.exchange(b"next", timeout_s=GENEROUS_S) == b"NEXT"
        holder.close()
        _wait_for(lambda: SessionEnd.TIMED_OUT in server.sessions, "the holder's idle limit")


def test_a_full_server_makes_room_by_closing_a_connection_that_sent_nothing() -> None:
    """At max_connections, the oldest connection never served is closed for the newcomer."""
    with TcpAgentServer(make_agent(), "127.0.0.1", 0, max_connections=2) as server:
        with connect(server) as first, connect(server) as second:
            time.sleep(0.3)
            with TcpLink(*server.address) as link:
                assert link.exchange(b"hello", timeout_s=GENEROUS_S) == b"HELLO"
            first.settimeout(GENEROUS_S)
            assert first.recv(10) == b""  # the oldest idle one made room
            assert second.fileno() >= 0
        _wait_for(lambda: SessionEnd.EVICTED in server.sessions, "the eviction to be recorded")


def test_a_full_server_of_served_connections_closes_the_newcomer() -> None:
    """When every connection has been served, a new one is closed at once, not queued for ever."""
    with (
        TcpAgentServer(make_agent(), "127.0.0.1", 0, max_connections=1) as server,
        TcpLink(*server.address) as served,
    ):
        assert served.exchange(b"mine", timeout_s=GENEROUS_S) == b"MINE"
        with connect(server) as late:
            late.settimeout(GENEROUS_S)
            assert late.recv(10) == b""


def test_once_waits_for_a_served_connection() -> None:
    """With once=True a connection that sent nothing does not end the server; a served one does."""
    server = TcpAgentServer(make_agent(), "127.0.0.1", 0, once=True).start()
    try:
        with connect(server):
            pass
        with TcpLink(*server.address) as link:
            assert link.exchange(b"bye", timeout_s=GENEROUS_S) == b"BYE"
        assert server._thread is not None
        server._thread.join(GENEROUS_S)
        assert not server._thread.is_alive()
        assert SessionEnd.FINISHED in server.sessions
    finally:
        server.shutdown()
        server.close()
