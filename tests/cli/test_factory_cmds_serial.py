"""provkit inject over a serial line (a bridged pty pair) and the intermediate-CA setup commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provkit.device.fcc import fcc_init
from provkit.device.handlers import fcc_handler
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import SerialAgentServer
from provkit.transport.streams import available_serial_ports, missing_serial_port
from provkit.wire.framing import FCC_TOKEN
from support.cli import make_fcu_home, run_cli
from support.intermediate import sign_intermediate
from support.pty import pty_cable

pytestmark = pytest.mark.integration


run = run_cli


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    """The device end and the tool end of a pty serial cable."""
    with pty_cable() as cable:
        yield cable.device_path, cable.host_path


def _home(tmp_path: Path, *, intermediate: bool = False) -> Path:
    return make_fcu_home(tmp_path, setup=False, intermediate=intermediate)


def test_inject_over_serial(tmp_path: Path, pty_pair: tuple[str, str]) -> None:
    """inject serial finds the device's answer among its log lines and reports success."""
    home = _home(tmp_path)
    assert run("--home-dir", str(home), "setup").exit_code == 0
    agent = DeviceAgent({FCC_TOKEN: fcc_handler(fcc_init(tmp_path / "dev.sqlite"))}, read_timeout_s=10)
    with SerialAgentServer(agent, pty_pair[0]):
        result = run(
            "--home-dir", str(home), "inject", "--endpoint-name", "ser-1", "--serial-number", "S",
            "serial", "--port", pty_pair[1], "-t", "10",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["deviceResponse"]["status"] == 0


def test_inject_missing_serial_port_fails(tmp_path: Path) -> None:
    """A serial port that does not exist gives a 101x factory tool status and exit 1."""
    home = _home(tmp_path)
    run("--home-dir", str(home), "setup")
    result = run(
        "--home-dir", str(home), "inject", "--endpoint-name", "x", "--serial-number", "S",
        "serial", "--port", str(tmp_path / "ttyNOPE"),
    )  # fmt: skip
    assert result.exit_code == 1
    status = json.loads([line for line in result.output.splitlines() if line.startswith("{")][-1])["status"]
    assert status == missing_serial_port(str(tmp_path / "ttyNOPE"), available_serial_ports()).code


def test_intermediate_setup_and_install(tmp_path: Path) -> None:
    """Intermediate mode: setup writes a CSR, setup --ca-certificate installs the signed CA and its chain."""
    home = _home(tmp_path, intermediate=True)
    result = run("--home-dir", str(home), "setup")
    assert result.exit_code == 0, result.output
    csr_path = home / "keystore" / "fcu.csr"
    assert json.loads(result.output.strip().splitlines()[-1])["csr"] == str(csr_path)
    signed = sign_intermediate(csr_path.read_bytes())
    signed_path = tmp_path / "signed.pem"
    signed_path.write_bytes(signed.chain_pem)
    result = run("--home-dir", str(home), "setup", "--ca-certificate", str(signed_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["status"] == 0
    result = run(
        "--home-dir",
        str(home),
        "inject",
        "--endpoint-name",
        "i-1",
        "--serial-number",
        "S",
        "to-file",
        str(tmp_path / "o"),
    )
    assert result.exit_code == 0, result.output
