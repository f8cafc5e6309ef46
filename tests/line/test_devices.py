"""Parsing of the batch input devices.csv: good rows, bad rows, duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.errors import BatchError
from provkit.line.devices import load_devices, parse_address, parse_devices


def test_rows_with_and_without_identities() -> None:
    """Rows carry address and optional identity; blank lines are ignored."""
    parsed = parse_devices("address,endpoint_name,serial_number\n127.0.0.1:7000,ep-1,sn-1\n\n[::1]:7001,,\n")
    assert parsed.problems == ()
    first, second = parsed.rows
    assert (first.host, first.port, first.endpoint_name, first.serial_number) == (
        "127.0.0.1",
        7000,
        "ep-1",
        "sn-1",
    )
    assert (second.host, second.port, second.endpoint_name) == ("::1", 7001, None)
    assert first.slot == "2" and second.slot == "4"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("localhost,ep,sn", "not host:port"),
        ("h:99999,ep,sn", "not host:port"),
        ("h:1,ep,", "both endpoint_name and serial_number"),
        ("h:1,ep,sn,extra", "wrong number of columns"),
        ("h:1", "wrong number of columns"),
        ("h:1,e\x01p,sn", "non-printable"),
        ("h:1," + "x" * 200_000 + ",sn", "unreadable CSV row: field larger than field limit"),
    ],
)
def test_bad_rows_become_problems_and_others_survive(row: str, reason: str) -> None:
    """A bad row is reported with its line number and reason; the good row stays."""
    parsed = parse_devices(f"address,endpoint_name,serial_number\n{row}\nh:2,ok,ok\n")
    assert [r.endpoint_name for r in parsed.rows] == ["ok"]
    (problem,) = parsed.problems
    assert problem.line == 2 and reason in problem.reason and problem.code == 4100
    assert problem.address == ("" if "unreadable" in reason else row.split(",")[0])


def test_duplicates_in_input_are_reported() -> None:
    """Repeated addresses, endpoint names or serial numbers are refused after the first."""
    parsed = parse_devices(
        "address,endpoint_name,serial_number\n"
        "h:1,ep-1,sn-1\nh:1,ep-2,sn-2\nh:3,ep-1,sn-3\nh:4,ep-4,sn-1\nh:5,ep-5,sn-5\n"
    )
    assert [r.endpoint_name for r in parsed.rows] == ["ep-1", "ep-5"]
    reasons = [p.reason for p in parsed.problems]
    assert [p.address for p in parsed.problems] == ["h:1", "h:3", "h:4"]  # the operator finds the device
    assert "duplicate address h:1 (line 2)" in reasons[0]
    assert "duplicate endpoint name ep-1" in reasons[1]
    assert "duplicate serial number sn-1" in reasons[2]


@pytest.mark.parametrize(
    "text",
    ["", "endpoint_name,serial_number\nep,sn\n", "address,colour\nh:1,red\n", "address,address\nh:1,h:2\n"],
)
def test_unusable_header_is_a_batch_error(text: str) -> None:
    """A file without the address column or with unknown columns is refused as a whole."""
    with pytest.raises(BatchError):
        parse_devices(text)


def test_unreadable_file_is_a_batch_error(tmp_path: Path) -> None:
    """A missing or binary devices file is a BatchError, not a crash."""
    with pytest.raises(BatchError, match="cannot read"):
        load_devices(tmp_path / "missing.csv")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BatchError):
        load_devices(binary)


def test_digest_changes_with_content() -> None:
    """The digest identifies the input so a resumed batch can detect a changed file."""
    assert parse_devices("address\nh:1\n").sha256 != parse_devices("address\nh:2\n").sha256


def test_parse_address_ipv6() -> None:
    """Bracketed IPv6 addresses are accepted."""
    assert parse_address("[::1]:7777") == ("::1", 7777)
