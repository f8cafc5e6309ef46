"""The device agent over real TCP sockets on 127.0.0.1: good, malformed and stalled frames."""

from __future__ import annotations

import socket
import struct

import pytest

from provkit.codes import FtcdCommStatus, FtErrorCode
from provkit.errors import ConnectFailed, TransportTimeout
from provkit.transport.agent import SessionEnd
from provkit.transport.errors import DeviceStatusError
from provkit.transport.links import TcpLink
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import LWM2M_TOKEN, SDA_TOKEN, Response, ResponseReader, encode_request

from .conftest import make_agent

pytestmark = pytest.mark.integration


def connect(server: TcpAgentServer) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=10)
    sock.settimeout(10)
    return sock


def read_response(sock: socket.socket, token: bytes = b"mbedprov") -> Response:
    reader = ResponseReader(token)
    while True:
        event = reader.next_event()
        if event is not None:
            assert isinstance(event, Response)
            return event
        data = sock.recv(65536)
        assert data, "agent closed the connection before answering"
        reader.feed(data)


def test_ready_line_names_bound_address(tcp_server: TcpAgentServer) -> None:
    """The ready line is the C agent's text with the real bound IP and port."""
    ip, port = tcp_server.address
    assert ip == "127.0.0.1"
    assert port > 0
    assert tcp_server.ready_line == f"Factory Client IP Address and Port : 127.0.0.1:{port}"


def test_link_exchange_and_keep_alive_on_one_connection(tcp_server: TcpAgentServer) -> None:
    """Two exchanges run over one connection; the session-ending reply closes it."""
    with TcpLink(*tcp_server.address, connect_timeout_s=5) as link:
        assert link.exchange(b"first", timeout_s=10) == b"FIRST"
        stream = link._stream
        assert link.exchange(b"second", timeout_s=10) == b"SECOND"
        assert link._stream is stream
        assert link.exchange(b"bye", timeout_s=10) == b"BYE"
        # The agent ended the session; the next exchange reconnects transparently.
        assert link.exchange(b"again", timeout_s=10) == b"AGAIN"
        assert link._stream is not stream


def test_lwm2m_token_is_dispatched_to_its_handler(tcp_server: TcpAgentServer) -> None:
    """A frame under the LwM2M token reaches the LwM2M handler and is answered under that token."""
    with TcpLink(*tcp_server.address) as link:
        assert link.exchange(b"senml", token=LWM2M_TOKEN, timeout_s=10) == b"lwm2m:senml"


def test_sda_token_is_answered_unsupported(tcp_server: TcpAgentServer) -> None:
    """A Secure Device Access frame is consumed and answered with status 10."""
    with TcpLink(*tcp_server.address) as link, pytest.raises(DeviceStatusError) as info:
        link.exchange(b"sda", token=SDA_TOKEN, timeout_s=10)
    assert info.value.comm_status == FtcdCommStatus.FAILED_TO_PROCESS_MESSAGE
    assert info.value.code == FtErrorCode.DEVICE_COMMUNICATION


def test_handler_without_response_gives_status_9(tcp_server: TcpAgentServer) -> None:
    """A handler returning None is answered with status 9 and no body."""
    with TcpLink(*tcp_server.address) as link, pytest.raises(DeviceStatusError) as info:
        link.exchange(b"none", timeout_s=10)
    assert info.value.comm_status == 9


def test_crashing_handler_gives_status_15_and_agent_survives(tcp_server: TcpAgentServer) -> None:
    """A handler exception becomes status 15; the same connection keeps working."""
    with TcpLink(*tcp_server.address) as link:
        with pytest.raises(DeviceStatusError) as info:
            link.exchange(b"boom", timeout_s=10)
        assert info.value.comm_status == FtcdCommStatus.INTERNAL_ERROR
        assert link.exchange(b"ok", timeout_s=10) == b"OK"


def test_garbage_before_token_is_skipped(tcp_server: TcpAgentServer) -> None:
    """Noise (including partial tokens) before a frame does not stop it being served."""
    with connect(tcp_server) as sock:
        sock.sendall(b"\x00\xffmmbedpro garbage mbed" + encode_request(b"hi"))
        assert read_response(sock) == Response(b"mbedprov", 0, b"HI")


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (b"mbedprov\0\0\0\0", FtcdCommStatus.FAILED_TO_READ_MESSAGE_SIZE),
        (b"mbedprov\x02\0\0\0hi" + bytes(32), FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE),
        (
            b"mbedprov" + struct.pack("<I", 70_000) + b"x" * 70_032,
            FtcdCommStatus.MEMORY_OUT,
        ),
    ],
    ids=["length-0", "bad-hash", "oversize"],
)
def test_malformed_frame_gets_status_without_body_then_next_frame_works(
    tcp_server: TcpAgentServer, frame: bytes, status: FtcdCommStatus
) -> None:
    """Each malformed frame is answered with its status only, and the connection stays usable."""
    with connect(tcp_server) as sock:
        sock.sendall(frame)
        raw = b""
        while len(raw) < 12:
            raw += sock.recv(12 - len(raw))
        assert raw == b"mbedprov" + struct.pack("<I", status)  # token + status, nothing else
        sock.sendall(encode_request(b"next"))
        assert read_response(sock) == Response(b"mbedprov", 0, b"NEXT")


def test_silent_client_gets_status_12_and_agent_keeps_serving() -> None:
    """A client that sends half a frame and stalls gets status 12 and is closed; others are served."""
    with TcpAgentServer(make_agent(read_timeout_s=0.3), "127.0.0.1", 0) as server:
        with connect(server) as sock:
            sock.sendall(encode_request(b"partial")[:10])
            assert read_response(sock).status == FtcdCommStatus.NETWORK_TIMEOUT
            assert sock.recv(10) == b""  # then the agent closes the connection
        with TcpLink(*server.address) as link:
            assert link.exchange(b"after", timeout_s=10) == b"AFTER"
        assert server.sessions[0] is SessionEnd.TIMED_OUT


def test_client_disconnecting_mid_frame_does_not_disturb_agent(tcp_server: TcpAgentServer) -> None:
    """A peer vanishing half-way through a frame ends only its own connection."""
    with connect(tcp_server) as sock:
        sock.sendall(encode_request(b"x" * 1000)[:500])
    with TcpLink(*tcp_server.address) as link:
        assert link.exchange(b"still here", timeout_s=10) == b"STILL HERE"


def test_one_connection_at_a_time() -> None:
    """A second client waits in the backlog until the first one's session ends."""
    with TcpAgentServer(make_agent(read_timeout_s=5), "127.0.0.1", 0) as server:
        first = TcpLink(*server.address)
        assert first.exchange(b"a", timeout_s=10) == b"A"
        second = TcpLink(*server.address)
        with pytest.raises(TransportTimeout) as info:
            second.exchange(b"b", timeout_s=0.3)
        assert info.value.code == FtErrorCode.TOKEN_TIMEOUT
        first.close()
        assert second.exchange(b"c", timeout_s=10) == b"C"
        second.close()


def test_once_serves_a_single_connection() -> None:
    """With once=True serve_forever returns after the first connection ends."""
    server = TcpAgentServer(make_agent(), "127.0.0.1", 0, once=True)
    server.start()
    with TcpLink(*server.address) as link:
        assert link.exchange(b"bye", timeout_s=10) == b"BYE"
    assert server._thread is not None
    server._thread.join(10)
    assert not server._thread.is_alive()
    assert server.sessions == [SessionEnd.FINISHED]
    server.close()


def test_connect_to_closed_port_is_1021() -> None:
    """Connecting where nothing listens raises ConnectFailed with code 1021 and the address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed) as info:
        TcpLink("127.0.0.1", port, connect_timeout_s=2).exchange(b"x", timeout_s=1)
    assert info.value.code == FtErrorCode.TCP_CONNECT_FAILED
    assert f"port {port}" in str(info.value)


def test_shutdown_while_client_connected_returns_promptly() -> None:
    """shutdown() stops the server even while a connection is open and idle."""
    server = TcpAgentServer(make_agent(read_timeout_s=None), "127.0.0.1", 0).start()
    with connect(server) as sock:
        sock.sendall(encode_request(b"hello"))
        assert read_response(sock).message == b"HELLO"  # the connection is being served
        server.shutdown()
    assert server.sessions == [SessionEnd.STOPPED]
    server.close()
