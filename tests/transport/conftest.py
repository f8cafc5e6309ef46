"""Fixtures for transport tests: an echo-style agent on TCP, and a pty "null-modem cable"."""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from provkit.transport.agent import DeviceAgent, Reply
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import FCC_TOKEN, LWM2M_TOKEN


def upper_handler(message: bytes) -> bytes | Reply | None:
    """A tiny real handler: upper-cases text, ends the session on b'bye', fails on b'none'."""
    if message == b"none":
        return None
    if message == b"boom":
        raise RuntimeError("handler crashed")
    if message == b"bye":
        return Reply(b"BYE", session_finished=True)
    return message.upper()


def make_agent(**options: object) -> DeviceAgent:
    return DeviceAgent(
        {FCC_TOKEN: upper_handler, LWM2M_TOKEN: lambda m: b"lwm2m:" + m},
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def tcp_server() -> Iterator[TcpAgentServer]:
    """A running TCP agent with the upper-casing handler on 127.0.0.1, a free port."""
    with TcpAgentServer(make_agent(read_timeout_s=5.0), "127.0.0.1", 0) as server:
        yield server


@dataclass
class PtyCable:
    """Two pty pairs whose masters are bridged: a byte written on one slave arrives on the other."""

    device_path: str
    host_path: str


@pytest.fixture
def pty_cable() -> Iterator[PtyCable]:
    """A null-modem cable made of two ptys and a relay thread (real tty devices for pyserial)."""
    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    for fd in (s1, s2):
        tty.setraw(fd)  # no echo or line editing before pyserial opens the slave
    stop = threading.Event()

    def relay() -> None:
        peers = {m1: m2, m2: m1}
        with selectors.DefaultSelector() as sel:
            for fd in peers:
                sel.register(fd, selectors.EVENT_READ)
            while not stop.is_set():
                for key, _ in sel.select(0.05):
                    try:
                        data = os.read(key.fd, 65536)  # type: ignore[arg-type]
                    except OSError:
                        continue
                    os.write(peers[key.fd], data)  # type: ignore[index]

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        yield PtyCable(os.ttyname(s1), os.ttyname(s2))
    finally:
        stop.set()
        thread.join()
        for fd in (m1, m2, s1, s2):
            with contextlib.suppress(OSError):
                os.close(fd)
