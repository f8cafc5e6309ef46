"""The smp-serial: and smp-udp: link specs: Zephyr boards reached over SMP."""

from __future__ import annotations

import pytest

from provkit.errors import LinkSpecError
from provkit.transport.smp_link import SmpLink, SmpSettings
from provkit.transport.spec import SmpSerialTarget, SmpTarget, SmpUdpTarget, parse_link


@pytest.mark.parametrize(
    ("spec", "target", "printed"),
    [
        ("smp-serial:/dev/ttyACM0", SmpSerialTarget("/dev/ttyACM0", 115200), "smp-serial:/dev/ttyACM0"),
        ("smp-serial:COM4@1000000", SmpSerialTarget("COM4", 1000000), "smp-serial:COM4@1000000"),
        ("smp-udp:192.168.1.20", SmpUdpTarget("192.168.1.20", 1337), "smp-udp:192.168.1.20:1337"),
        ("smp-udp:board-3.local:4000", SmpUdpTarget("board-3.local", 4000), "smp-udp:board-3.local:4000"),
        ("smp-udp:[fe80::1]:1337", SmpUdpTarget("fe80::1", 1337), "smp-udp:[fe80::1]:1337"),
    ],
)
def test_smp_specs(spec, target, printed):
    parsed = parse_link(spec)
    assert parsed == target and isinstance(parsed, SmpTarget)
    assert parsed.spec() == printed and parse_link(printed) == parsed


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("smp-serial:", "needs a port"),
        ("smp-serial:/dev/x@fast", "is not a number"),
        ("smp-udp:", "has no host"),
        ("smp-udp:h:70000", "1 to 65535"),
    ],
)
def test_bad_smp_specs(spec, fragment):
    with pytest.raises(LinkSpecError, match=fragment):
        parse_link(spec)


def test_smp_targets_open_smp_links_not_frame_links():
    serial, udp = parse_link("smp-serial:/dev/ttyACM0@9600"), parse_link("smp-udp:10.0.0.9:1400")
    assert isinstance(serial, SmpTarget) and isinstance(udp, SmpTarget)
    opened = serial.open_files(SmpSettings(chunk_size=128))
    assert isinstance(opened, SmpLink) and opened.describe == "smp-serial:/dev/ttyACM0"
    assert opened.settings.chunk_size == 128
    assert udp.open_files().describe == "smp-udp:10.0.0.9:1400"
    with pytest.raises(LinkSpecError, match="takes files"):
        serial.open()
