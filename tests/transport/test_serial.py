"""The agent and SerialLink over real tty devices: two ptys bridged like a null-modem cable."""

from __future__ import annotations

import os
import time

import pytest
import serial

from provkit.codes import FtcdCommStatus, FtErrorCode
from provkit.errors import ConnectFailed, TransportTimeout
from provkit.transport.errors import DeviceStatusError
from provkit.transport.links import SerialLink
from provkit.transport.servers import SerialAgentServer
from provkit.transport.streams import available_serial_ports, missing_serial_port
from provkit.wire.framing import Response, ResponseReader, encode_request
from support.pty import PtyCable

from .conftest import make_agent

pytestmark = pytest.mark.integration


def test_serial_exchange_with_device_logs_interleaved(pty_cable: PtyCable) -> None:
    """Responses are found among the agent's log lines; keep-alive exchanges share the line."""
    with (
        SerialAgentServer(make_agent(read_timeout_s=5), pty_cable.device_path, baud_rate=115200),
        SerialLink(pty_cable.host_path, baud_rate=115200) as link,
    ):
        assert link.exchange(b"one", timeout_s=10) == b"ONE"
        assert link.exchange(b"two", timeout_s=10) == b"TWO"
        assert link.exchange(b"bye", timeout_s=10) == b"BYE"
        # A serial line has no connection to close: the agent keeps serving after a session.
        assert link.exchange(b"three", timeout_s=10) == b"THREE"


def test_serial_agent_skips_host_noise_and_answers_bad_frames(pty_cable: PtyCable) -> None:
    """Line noise before a frame is skipped; a bad hash gets status 8 amid the log lines."""
    with (
        SerialAgentServer(make_agent(read_timeout_s=5), pty_cable.device_path),
        serial.Serial(pty_cable.host_path, timeout=0.2) as host,
    ):
        host.write(b"\r\n\x00garbage mbedp" + b"mbedprov\x02\0\0\0hi" + bytes(32) + encode_request(b"ok"))
        reader = ResponseReader()
        events: list[object] = []
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            reader.feed(host.read(4096))
            while (event := reader.next_event()) is not None:
                events.append(event)
        assert events == [
            Response(b"mbedprov", FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE, None),
            Response(b"mbedprov", 0, b"OK"),
        ]
        assert reader.skipped_bytes > 0  # the agent's "[provkit] ..." trace lines


def test_serial_stalled_frame_times_out_with_12_and_line_recovers(pty_cable: PtyCable) -> None:
    """Half a frame followed by silence gets status 12; the next frame is served normally."""
    with (
        SerialAgentServer(make_agent(read_timeout_s=0.3), pty_cable.device_path),
        SerialLink(pty_cable.host_path) as link,
        serial.Serial(pty_cable.host_path, timeout=0.2) as raw,
    ):
        raw.write(encode_request(b"never finished")[:15])
        reader = ResponseReader()
        deadline = time.monotonic() + 10
        event = None
        while event is None and time.monotonic() < deadline:
            reader.feed(raw.read(4096))
            event = reader.next_event()
        assert event == Response(b"mbedprov", FtcdCommStatus.NETWORK_TIMEOUT, None)
        assert link.exchange(b"fresh", timeout_s=10) == b"FRESH"


def test_serial_handler_failure_status(pty_cable: PtyCable) -> None:
    """A handler without response gives DeviceStatusError 1001 with transport status 9."""
    with (
        SerialAgentServer(make_agent(), pty_cable.device_path),
        SerialLink(pty_cable.host_path) as link,
        pytest.raises(DeviceStatusError) as info,
    ):
        link.exchange(b"none", timeout_s=10)
    assert info.value.comm_status == 9


def test_serial_link_times_out_with_1003_when_nobody_answers(pty_cable: PtyCable) -> None:
    """No agent on the line: the link gives up with code 1003 (no device token)."""
    with SerialLink(pty_cable.host_path) as link, pytest.raises(TransportTimeout) as info:
        link.exchange(b"hello?", timeout_s=0.3)
    assert info.value.code == FtErrorCode.TOKEN_TIMEOUT


def test_missing_port_is_1014_with_the_ports_there_are_and_1013_on_a_system_without_any() -> None:
    """ft_demo's two cases: a wrong port among others (1014, listing them), no serial port at all (1013)."""
    among_others = missing_serial_port("/dev/ttyUSB9", ["/dev/ttyS0", "/dev/ttyUSB0"])
    assert among_others.code == FtErrorCode.SERIAL_PORT_NOT_CONNECTED
    assert str(among_others) == (
        "Serial port /dev/ttyUSB9 not connected. Available ports: /dev/ttyS0, /dev/ttyUSB0"
    )
    none_at_all = missing_serial_port("/dev/ttyUSB9", [])
    assert none_at_all.code == FtErrorCode.NO_SERIAL_PORT
    assert str(none_at_all) == "No serial port is available on system (/dev/ttyUSB9 does not exist)"


def test_missing_serial_port_is_reported_with_this_systems_ports(tmp_path: os.PathLike[str]) -> None:
    """A port that does not exist: 1014 and the list where the system has ports, else 1013."""
    missing = str(tmp_path) + "/ttyNOPE"
    with pytest.raises(ConnectFailed) as info:
        SerialLink(missing).exchange(b"x", timeout_s=1)
    expected = missing_serial_port(missing, available_serial_ports())
    assert (info.value.code, str(info.value)) == (expected.code, str(expected))
    assert "ttyNOPE" in str(info.value)


def test_unopenable_serial_port_is_1011(tmp_path: os.PathLike[str]) -> None:
    """A path that exists but is no serial port is reported with code 1011."""
    not_a_tty = os.path.join(tmp_path, "file")
    with open(not_a_tty, "w") as handle:
        handle.write("x")
    with pytest.raises(ConnectFailed) as info:
        SerialLink(not_a_tty).exchange(b"x", timeout_s=1)
    assert info.value.code == FtErrorCode.SERIAL_CONNECT_FAILED
