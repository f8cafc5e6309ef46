from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.cli.main import cli
from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor, make_lwm2m_handler
from provkit.device.storage import SqliteStorage
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import LWM2M_TOKEN

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m"
SAMPLE = VECTORS_DIR / "sample_psk.yaml"


def test_build_and_inspect(tmp_path):
    """build writes V10 exactly; inspect shows it as JSON with the secret masked."""
    out = tmp_path / "blob.cbor"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["lwm2m", "build", "-c", str(SAMPLE), "-o", str(out), "--json", str(tmp_path / "b.json")]
    )
    assert result.exit_code == 0, result.output
    vectors = json.loads((VECTORS_DIR / "vectors.json").read_text())
    assert out.read_bytes().hex() == vectors["V10"]["hex"]
    shown = runner.invoke(cli, ["lwm2m", "inspect", str(out), "--format", "json"])
    rows = json.loads(shown.output)
    assert rows[0] == {
        "path": "/0/1/0",
        "resource": "LwM2M Server URI",
        "label": "vs",
        "value": "coaps://eu.iot.avsystem.cloud:5684",
    }
    assert rows[4]["value"] == "<19 secret bytes>"
    table = runner.invoke(cli, ["lwm2m", "inspect", str(out)])
    assert table.exit_code == 0 and "/1/1/7" in table.output


def test_bad_config_exit_status(tmp_path):
    """A config error exits 1 with the code and the path."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("Security: {1: {Mode: bogus}}\n")
    result = CliRunner().invoke(cli, ["lwm2m", "build", "-c", str(cfg), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "Error 5002: Security/1/Mode" in result.output
    assert not (tmp_path / "x").exists()


def test_inspect_rejects_rfc_example_strictly(tmp_path):
    """inspect applies the device rules unless --generic is given."""
    vectors = json.loads((VECTORS_DIR / "vectors.json").read_text())
    blob = tmp_path / "rfc.cbor"
    blob.write_bytes(bytes.fromhex(vectors["V11"]["hex"]))
    assert CliRunner().invoke(cli, ["lwm2m", "inspect", str(blob)]).exit_code == 1
    generic = CliRunner().invoke(cli, ["lwm2m", "inspect", str(blob), "--generic", "--format", "json"])
    assert generic.exit_code == 0 and len(json.loads(generic.output)) == 7


@pytest.mark.integration
def test_provision_over_tcp(tmp_path):
    """provision delivers the blob to a device agent over TCP and the device stores it."""
    kcm = Kcm(SqliteStorage(tmp_path / "dev.db"))
    agent = DeviceAgent({LWM2M_TOKEN: make_lwm2m_handler(kcm)}, read_timeout_s=10.0)
    with TcpAgentServer(agent, "127.0.0.1", 0) as server:
        ip, port = server.address
        result = CliRunner().invoke(cli, ["lwm2m", "provision", "-c", str(SAMPLE), "--tcp", f"{ip}:{port}"])
    assert result.exit_code == 0, result.output
    assert "accepted 10 resources" in result.output
    assert len(Lwm2mAcceptor(kcm).configuration()) == 10
