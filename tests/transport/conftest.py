"""Fixtures for transport tests: an echo-style agent on TCP, and a pty "null-modem cable"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provkit.transport.agent import DeviceAgent, Reply
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import FCC_TOKEN, LWM2M_TOKEN
from support.pty import PtyCable, pty_cable


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


@pytest.fixture(name="pty_cable")
def pty_cable_fixture() -> Iterator[PtyCable]:
    """A null-modem cable made of two ptys and a relay thread (real tty devices for pyserial)."""
    with pty_cable() as cable:
        yield cable
