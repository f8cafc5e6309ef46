"""provkit inject over a serial line (a bridged pty pair) and the intermediate-CA setup commands."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.crypto import issue
from provkit.device.fcc import fcc_init
from provkit.transport.agent import DeviceAgent
from provkit.transport.handlers import fcc_handler
from provkit.transport.servers import SerialAgentServer
from provkit.wire.framing import FCC_TOKEN
from support.cli import make_fcu_home, run_cli
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
    assert status in (1011, 1014)


def test_intermediate_setup_and_install(tmp_path: Path) -> None:
    """Intermediate mode: setup writes a CSR, setup --ca-certificate installs the signed CA and its chain."""
    home = _home(tmp_path, intermediate=True)
    result = run("--home-dir", str(home), "setup")
    assert result.exit_code == 0, result.output
    csr_path = home / "keystore" / "fcu.csr"
    assert json.loads(result.output.strip().splitlines()[-1])["csr"] == str(csr_path)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = issue.create_ca(
        root_key, {"common-name": "Root"}, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    )
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    now = dt.datetime.now(dt.UTC)
    signed = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(root.subject)
        .public_key(csr.public_key())
        .serial_number(9)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    signed_path = tmp_path / "signed.pem"
    signed_path.write_bytes(issue.certificate_pem([signed, root]))
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
