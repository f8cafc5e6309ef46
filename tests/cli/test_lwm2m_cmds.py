from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

from provkit.cli.main import cli
from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor, make_lwm2m_handler
from provkit.device.storage import SqliteStorage
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import LWM2M_TOKEN

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m"
SAMPLE = VECTORS_DIR / "sample_psk.yaml"
_PEM = Encoding.PEM


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
    assert "Error LWM2M-5002: Security/1/Mode" in result.output
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


CERT_YAML = """Security:
  0: {ServerURI: "coaps://bs.example.com:5684", Bootstrap: true, Mode: psk,
      PKOrIdentity: bs-id, SecretKey: {hex: "00112233"}}
  1: {ServerURI: "coaps://dm.example.com:5684", Bootstrap: false, Mode: cert, ShortServerID: 1}
Server:
  1: {ShortServerID: 1, Lifetime: 86400, NotificationStoring: false, Binding: U}
"""


def _stored(kcm: Kcm) -> dict[str, object]:
    return {entry.path: entry.value for entry in Lwm2mAcceptor(kcm).configuration()}


def test_build_output_unwritable(tmp_path):
    """An output path that cannot be written is an error with a code, not a traceback."""
    result = CliRunner().invoke(
        cli, ["lwm2m", "build", "-c", str(SAMPLE), "-o", str(tmp_path / "no" / "dir" / "b.cbor")]
    )
    assert result.exit_code == 1 and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert "Error LWM2M-5000: cannot write" in result.output


def test_credential_option_pairs(tmp_path):
    """-k needs -r, generation (-C) excludes -k/-r, and credential options on a PSK config warn."""
    cfg = tmp_path / "cert.yaml"
    cfg.write_text(CERT_YAML)
    out = str(tmp_path / "b.cbor")
    runner = CliRunner()
    alone = runner.invoke(cli, ["lwm2m", "build", "-c", str(cfg), "-k", str(SAMPLE), "-o", out])
    assert alone.exit_code == 2 and "go together" in alone.output
    both = runner.invoke(
        cli,
        [
            "lwm2m",
            "build",
            "-c",
            str(cfg),
            "-C",
            str(SAMPLE),
            "-k",
            str(SAMPLE),
            "-r",
            str(SAMPLE),
            "-o",
            out,
        ],
    )
    assert both.exit_code == 2 and "not both" in both.output
    info = tmp_path / "info.json"
    info.write_text("{}")
    psk = runner.invoke(cli, ["lwm2m", "build", "-c", str(SAMPLE), "-e", "ep", "-C", str(info), "-o", out])
    assert psk.exit_code == 0 and "warning: no Security instance uses a certificate mode" in psk.stderr


def test_build_cert_mode_self_signed_with_server_cert(tmp_path):
    """-C self-signs with the cert-config, -p sets the server certificate; inspect shows typed JSON."""
    from cryptography import x509

    from provkit.lwm2m.strict import decode_strict

    cfg = tmp_path / "cert.yaml"
    cfg.write_text(CERT_YAML)
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"organizationName": "provkit", "digest": "sha384"}))
    server_cert = tmp_path / "server.pem"
    runner = CliRunner()
    first = tmp_path / "server.cbor"
    unverified = ["--allow-unverified-server", "-o", str(first)]
    made = runner.invoke(cli, ["lwm2m", "build", "-c", str(cfg), "-e", "srv", "-C", str(info), *unverified])
    assert made.exit_code == 0, made.output

    server_der = next(e.value for e in decode_strict(first.read_bytes()) if e.path == "/0/1/3")
    assert isinstance(server_der, bytes)
    server_cert.write_bytes(x509.load_der_x509_certificate(server_der).public_bytes(_PEM))
    out = tmp_path / "b.cbor"
    args = ["lwm2m", "build", "-c", str(cfg), "-e", "urn:dev:7", "-C", str(info), "-p", str(server_cert)]
    result = runner.invoke(cli, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = {
        row["path"]: row
        for row in json.loads(runner.invoke(cli, ["lwm2m", "inspect", str(out), "--format", "json"]).output)
    }
    cert = x509.load_der_x509_certificate(bytes.fromhex(str(rows["/0/1/3"]["value"])))
    assert cert.subject.rfc4514_string() == "CN=urn:dev:7,O=provkit" and cert.issuer == cert.subject
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha384"
    assert bytes.fromhex(str(rows["/0/1/4"]["value"])) == server_der
    assert rows["/0/1/5"]["value"].startswith("<")  # type: ignore[union-attr]
    assert rows["/0/1/1"]["value"] is False and rows["/0/1/2"]["value"] == 2


def test_build_signed_by_factory_ca(tmp_path):
    """--factory-ca has the FCU home's factory CA issue the endpoint certificate."""
    from cryptography import x509

    from provkit.factory import FactoryToolApi
    from provkit.lwm2m.strict import decode_strict
    from support.cli import make_fcu_home

    home = make_fcu_home(tmp_path / "fcu")
    cfg = tmp_path / "cert.yaml"
    cfg.write_text(CERT_YAML)
    out = tmp_path / "b.cbor"
    result = CliRunner().invoke(
        cli,
        [
            "--home-dir",
            str(home),
            "lwm2m",
            "build",
            "-c",
            str(cfg),
            "-e",
            "urn:dev:ca",
            "--factory-ca",
            "--allow-unverified-server",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    der = next(e.value for e in decode_strict(out.read_bytes()) if e.path == "/0/1/3")
    assert isinstance(der, bytes)
    ca = FactoryToolApi(home_dir=home).factory_ca.certificate
    x509.load_der_x509_certificate(der).verify_directly_issued_by(ca)


def test_factory_ca_missing_is_an_error(tmp_path):
    """--factory-ca without a set-up FCU home fails with the CA error code."""
    cfg = tmp_path / "cert.yaml"
    cfg.write_text(CERT_YAML)
    result = CliRunner().invoke(
        cli,
        [
            "--home-dir",
            str(tmp_path / "none"),
            "lwm2m",
            "build",
            "-c",
            str(cfg),
            "-e",
            "x",
            "--factory-ca",
            "-o",
            str(tmp_path / "b"),
        ],
    )
    assert result.exit_code == 1 and result.output.startswith("Error FCU-2")
    assert not (tmp_path / "b").exists()


@pytest.mark.integration
def test_provision_over_serial(tmp_path):
    """provision --serial delivers the blob over a real tty (pty pair) to a serial device agent."""
    from provkit.device.handlers import lwm2m_handler
    from provkit.transport.servers import SerialAgentServer
    from support.pty import pty_cable

    kcm = Kcm(SqliteStorage(tmp_path / "dev.db"))
    agent = DeviceAgent({LWM2M_TOKEN: lwm2m_handler(kcm)}, read_timeout_s=10.0)
    with pty_cable() as cable, SerialAgentServer(agent, cable.device_path):
        result = CliRunner().invoke(
            cli, ["lwm2m", "provision", "-c", str(SAMPLE), "--serial", cable.host_path, "--timeout", "20"]
        )
    assert result.exit_code == 0, result.output
    assert "accepted 10 resources" in result.output
    assert _stored(kcm)["/0/1/0"] == "coaps://eu.iot.avsystem.cloud:5684"


@pytest.mark.integration
def test_provision_file_then_replay(tmp_path):
    """provision --file writes the lwm2mfpv frame; replayed byte for byte to a device agent it is stored."""
    import socket

    from provkit.lwm2m.response import AcceptResult
    from provkit.wire.framing import Response, ResponseReader

    request = tmp_path / "request.bin"
    result = CliRunner().invoke(
        cli, ["lwm2m", "provision", "-c", str(SAMPLE), "-t", "tok", "--file", str(request)]
    )
    assert result.exit_code == 0, result.output
    assert "registration needs -s, -t and an endpoint name" in result.stderr
    kcm = Kcm(SqliteStorage(tmp_path / "dev.db"))
    agent = DeviceAgent({LWM2M_TOKEN: make_lwm2m_handler(kcm)}, read_timeout_s=10.0)
    with TcpAgentServer(agent, "127.0.0.1", 0) as server, socket.create_connection(server.address) as sock:
        sock.sendall(request.read_bytes())
        reader = ResponseReader(LWM2M_TOKEN)
        event = None
        while event is None:
            data = sock.recv(4096)
            assert data, "the agent closed the connection without answering"
            reader.feed(data)
            event = reader.next_event()
    assert isinstance(event, Response) and event.status == 0 and event.message is not None
    assert AcceptResult.decode(event.message).written == 10
    assert len(_stored(kcm)) == 10


@pytest.mark.integration
def test_provision_refused_and_connect_failure(tmp_path):
    """A refusal by the device and an unreachable agent exit 1 with their codes; nothing is stored."""
    import socket

    kcm = Kcm(SqliteStorage(tmp_path / "dev.db"))
    cfg = tmp_path / "dev3.yaml"
    cfg.write_text(SAMPLE.read_text() + "Device:\n  0: {Manufacturer: provkit}\n")
    agent = DeviceAgent({LWM2M_TOKEN: make_lwm2m_handler(kcm)}, read_timeout_s=10.0)
    with TcpAgentServer(agent, "127.0.0.1", 0) as server:
        address = "{}:{}".format(*server.address)
        anjay = CliRunner().invoke(cli, ["lwm2m", "provision", "-c", str(cfg), "--tcp", address])
        ok = CliRunner().invoke(
            cli, ["lwm2m", "provision", "-c", str(cfg), "--target", "generic", "--tcp", address]
        )
    # Anjay's Device object takes only 13-15 in a factory bootstrap: refused on the host, unsent.
    assert anjay.exit_code == 1
    assert anjay.output.startswith("Error LWM2M-5006: /3/0/0: refused for target 'anjay'")
    assert "Manufacturer is read-only" in anjay.output
    assert ok.exit_code == 0 and _stored(kcm)["/3/0/0"] == "provkit"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = CliRunner().invoke(cli, ["lwm2m", "provision", "-c", str(SAMPLE), "--tcp", f"127.0.0.1:{port}"])
    assert down.exit_code == 1 and down.output.startswith("Error FT-10")


@pytest.mark.integration
def test_provision_and_register_like_ptool(tmp_path):
    """With -s, -t and -e the device is provisioned, then registered in the management server."""
    from support.coiote import coiote_server

    kcm = Kcm(SqliteStorage(tmp_path / "dev.db"))
    agent = DeviceAgent({LWM2M_TOKEN: make_lwm2m_handler(kcm)}, read_timeout_s=10.0)
    server_file = tmp_path / "lwm2m_server.json"
    with coiote_server() as coiote, TcpAgentServer(agent, "127.0.0.1", 0) as server:
        server_file.write_text(json.dumps(coiote.server_info()))
        ip, port = server.address
        result = CliRunner().invoke(
            cli,
            ["lwm2m", "provision", "-c", str(SAMPLE), "-e", "urn:dev:42", "-s", str(server_file), "-t", "tok",
             "--tcp", f"{ip}:{port}"],
        )  # fmt: skip
        seen = list(coiote.seen)
    assert result.exit_code == 0, result.output
    assert "accepted 10 resources" in result.output and "registered urn:dev:42" in result.output
    ((_, path, headers, body),) = seen
    assert path == "/api/coiotedm/v3/devices" and headers["Authorization"] == "Bearer tok"
    assert body["properties"] == {"endpointName": "urn:dev:42"}  # type: ignore[index]
    assert len(_stored(kcm)) == 10


@pytest.mark.integration
def test_register_command(tmp_path):
    """lwm2m register posts the device and prints the server's answer; an HTTP error exits 1 with 5003."""
    from support.coiote import coiote_server

    server_file = tmp_path / "lwm2m_server.json"
    with coiote_server() as coiote:
        server_file.write_text(json.dumps(coiote.server_info()))
        args = ["lwm2m", "register", "-c", str(SAMPLE), "-e", "urn:dev:9", "-s", str(server_file), "-t", "t"]
        ok = CliRunner().invoke(cli, args)
        coiote.status = 409
        refused = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == {"registered": "urn:dev:9", "server": {"id": "urn:dev:9"}}
    assert refused.exit_code == 1
    assert "Error LWM2M-5003: Coiote server error: HTTP 409 Conflict: Device exists" in refused.output
