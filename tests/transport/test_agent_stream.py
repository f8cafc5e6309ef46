"""The agent core over a connected socket pair: noise, floods and shutdown."""

from __future__ import annotations

import random
import socket
import threading

import pytest

from provkit.codes import FtcdCommStatus
from provkit.transport.agent import SessionEnd
from provkit.transport.streams import SocketStream
from provkit.wire.framing import Response, ResponseReader, encode_request

from .conftest import make_agent

pytestmark = pytest.mark.integration


def collect(sock: socket.socket, count: int) -> list[Response]:
    reader = ResponseReader()
    found: list[Response] = []
    while len(found) < count:
        data = sock.recv(65536)
        assert data, "agent closed early"
        reader.feed(data)
        while (event := reader.next_event()) is not None:
            assert isinstance(event, Response)
            found.append(event)
    return found


def test_random_garbage_flood_then_valid_frame() -> None:
    """A megabyte of random bytes never stops the agent from answering the frame after it."""
    device, tool = socket.socketpair()
    agent = make_agent(read_timeout_s=10, max_message_bytes=1024)
    result: list[SessionEnd] = []
    thread = threading.Thread(target=lambda: result.append(agent.serve_stream(SocketStream(device))))
    thread.start()
    rng = random.Random(1234)
    garbage = rng.randbytes(1 << 20).replace(b"mbedprov", b"xxxxxxxx")
    tool.settimeout(10)
    sender = threading.Thread(target=lambda: tool.sendall(garbage + encode_request(b"done")))
    sender.start()
    responses = collect(tool, 1)
    sender.join()
    assert responses[-1] == Response(b"mbedprov", 0, b"DONE")
    tool.close()
    thread.join(10)
    assert result == [SessionEnd.CLOSED]


def test_every_failure_kind_in_one_stream_is_answered_in_order() -> None:
    """Length 0, bad hash, oversize and good frames in one burst get their answers in order."""
    device, tool = socket.socketpair()
    agent = make_agent(read_timeout_s=10, max_message_bytes=64)
    thread = threading.Thread(target=agent.serve_stream, args=(SocketStream(device),))
    thread.start()
    burst = (
        b"mbedprov\0\0\0\0"
        + b"mbedprov\x01\0\0\0a"
        + bytes(32)
        + b"mbedprov\xc8\0\0\0"
        + b"z" * (200 + 32)
        + encode_request(b"ok")
    )
    tool.settimeout(10)
    tool.sendall(burst)
    statuses = [r.status for r in collect(tool, 4)]
    assert statuses == [
        FtcdCommStatus.FAILED_TO_READ_MESSAGE_SIZE,
        FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE,
        FtcdCommStatus.MEMORY_OUT,
        FtcdCommStatus.SUCCESS,
    ]
    tool.close()
    thread.join(10)


def test_stop_event_ends_serving() -> None:
    """Setting the stop event makes serve_stream return STOPPED while the peer is idle."""
    device, tool = socket.socketpair()
    stop = threading.Event()
    result: list[SessionEnd] = []
    agent = make_agent(read_timeout_s=None)
    thread = threading.Thread(
        target=lambda: result.append(agent.serve_stream(SocketStream(device), stop=stop))
    )
    thread.start()
    stop.set()
    thread.join(10)
    assert result == [SessionEnd.STOPPED]
    tool.close()
    device.close()
