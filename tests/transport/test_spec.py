"""Link specs: one parser for every way a command names a device."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.errors import LinkSpecError
from provkit.transport.link import DEFAULT_BAUD_RATE, DEFAULT_TCP_PORT, LINE_LINK_SETTINGS, LinkSettings
from provkit.transport.links import FileLink, SerialLink, TcpLink
from provkit.transport.spec import (
    SCHEMES,
    FileTarget,
    SerialTarget,
    TcpTarget,
    link_usage,
    parse_host_port,
    parse_link,
)


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ("tcp:10.0.0.5:7777", TcpTarget("10.0.0.5", 7777)),
        ("tcp:device-7.line.local:7000", TcpTarget("device-7.line.local", 7000)),
        ("tcp:[::1]:7001", TcpTarget("::1", 7001)),
        ("serial:/dev/ttyACM0", SerialTarget("/dev/ttyACM0", DEFAULT_BAUD_RATE)),
        ("serial:COM3@9600", SerialTarget("COM3", 9600)),
        ("serial:socket://127.0.0.1:5000@57600", SerialTarget("socket://127.0.0.1:5000", 57600)),
        ("file:out/request.bin", FileTarget(Path("out/request.bin"))),
        ("  tcp:h:1  ", TcpTarget("h", 1)),
    ],
)
def test_specs_parse_and_print_back(spec: str, target: object) -> None:
    """Each scheme parses its usage, and a target prints the spec that parses back to it."""
    parsed = parse_link(spec)
    assert parsed == target
    assert parse_link(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("udp:h:1", "is not one of tcp:HOST:PORT, serial:PORT[@BAUD], file:PATH"),
        ("10.0.0.5:7777", "is not one of"),
        ("tcp:10.0.0.5", "has no port"),
        ("tcp::7777", "has no host"),
        ("tcp:h:0", "1 to 65535"),
        ("tcp:h:65536", "1 to 65535"),
        ("tcp:h:77a", "1 to 65535"),
        ("tcp:[::1]7777", "is not [HOST]:PORT"),
        ("serial:", "needs a port"),
        ("serial:/dev/ttyS0@fast", "baud rate 'fast'"),
        ("serial:/dev/ttyS0@0", "positive"),
        ("file:", "needs a path"),
    ],
)
def test_bad_specs_are_refused_with_code_1000(spec: str, fragment: str) -> None:
    """A spec that does not fit its scheme is a LinkSpecError (factory tool code 1000), never a crash."""
    with pytest.raises(LinkSpecError) as info:
        parse_link(spec)
    assert fragment in info.value.message
    assert info.value.code == 1000 and isinstance(info.value, ValueError)


def test_a_default_scheme_reads_host_port() -> None:
    """devices.csv addresses and --tcp values are HOST:PORT read as tcp: specs."""
    assert parse_link("10.0.0.5:7777", default_scheme="tcp") == TcpTarget("10.0.0.5", 7777)
    assert parse_link("[fe80::1]:80", default_scheme="tcp") == TcpTarget("fe80::1", 80)
    assert parse_link("serial:/dev/ttyUSB0", default_scheme="tcp") == SerialTarget("/dev/ttyUSB0")


def test_host_port_rules() -> None:
    """HOST:PORT has one set of rules: brackets for IPv6, a port 1-65535, a default only when given."""
    assert parse_host_port("h:1") == ("h", 1)
    assert parse_host_port("[::1]:65535") == ("::1", 65535)
    assert parse_host_port("h", default_port=DEFAULT_TCP_PORT) == ("h", 7777)
    assert parse_host_port("[::1]", default_port=7) == ("::1", 7)
    with pytest.raises(LinkSpecError):
        parse_host_port("h")


def test_targets_check_what_they_are_built_from() -> None:
    """Built from command options (inject tcp --ip --port), a target applies the parser's rules."""
    with pytest.raises(LinkSpecError):
        TcpTarget("", 7777)
    with pytest.raises(LinkSpecError):
        TcpTarget("h", 70000)
    with pytest.raises(LinkSpecError):
        SerialTarget("")
    assert TcpTarget("::1", 7).address == "[::1]:7" and TcpTarget("h", 7).address == "h:7"


def test_targets_open_links_with_the_settings() -> None:
    """Each target opens its link, unconnected, with the settings' timeouts."""
    settings = LinkSettings(timeout_s=4.0, connect_timeout_s=2.0)
    tcp = TcpTarget("127.0.0.1", 9).open(settings)
    assert isinstance(tcp, TcpLink) and (tcp.connect_timeout_s, tcp.read_timeout_s) == (2.0, 4.0)
    serial = SerialTarget("/dev/null-port", 9600).open(settings)
    assert isinstance(serial, SerialLink) and (serial.baud_rate, serial.read_timeout_s) == (9600, 4.0)
    file = FileTarget(Path("x.bin")).open()
    assert isinstance(file, FileLink) and not file.returns_responses
    assert not FileTarget.returns_responses and TcpTarget.returns_responses


def test_every_scheme_is_listed_once() -> None:
    """The scheme table is the one place a scheme is added: prefixes unique, usages in the help text."""
    assert list(SCHEMES) == ["tcp", "serial", "file", "smp-serial", "smp-udp"]
    for scheme, target in SCHEMES.items():
        assert target.scheme == scheme and target.usage.startswith(f"{scheme}:")
        assert target.usage in link_usage()


def test_line_settings_fail_fast_and_retry() -> None:
    """The line's settings connect quickly and retry; the defaults wait as the factory tool demo does."""
    assert LINE_LINK_SETTINGS.connect_timeout_s < LinkSettings().connect_timeout_s == 30.0
    assert LINE_LINK_SETTINGS.retries == 2 and LinkSettings().retries == 0
