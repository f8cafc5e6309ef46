"""The factory tool commands: init, setup, inject (tcp, to-file) and demo, with ft_demo JSON output."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from provkit.cli.factory_cmds import SUCCESS_MESSAGE
from provkit.device.fcc import FactoryConfiguratorClient, fcc_init
from provkit.device.handlers import fcc_handler
from provkit.factory.config import DEVICE_INFO_KEYS, OBSOLETE_FILE_KEYS, SUBJECT_KEYS, TOP_LEVEL_KEYS
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer
from provkit.wire.bundle import decode_bundle
from provkit.wire.framing import FCC_TOKEN
from support.cli import json_status, make_fcu_home, run_cli

pytestmark = pytest.mark.integration


run = run_cli
_json_line = json_status


def _inject_to_file(home: Path, out: Path, endpoint: str = "x") -> Result:
    return run("--home-dir", str(home), "inject", "--endpoint-name", endpoint, "--serial-number", "S",
               "to-file", str(out))  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An FCU home made by 'provkit init', with demo server CAs and the factory CA set up."""
    return make_fcu_home(tmp_path)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[FactoryConfiguratorClient, TcpAgentServer]]:
    """A device agent with SQLite storage on 127.0.0.1 (free port)."""
    fcc = fcc_init(tmp_path / "dev.sqlite")
    with TcpAgentServer(
        DeviceAgent({FCC_TOKEN: fcc_handler(fcc)}, read_timeout_s=10), "127.0.0.1", 0
    ) as server:
        yield fcc, server


def test_init_writes_commented_template(tmp_path: Path) -> None:
    """init writes config/fcu.yml with comments and every key, plus resources/."""
    assert run("init", str(tmp_path / "h")).exit_code == 0
    text = (tmp_path / "h" / "config" / "fcu.yml").read_text()
    assert text.count("#") > 40
    data = yaml.safe_load(text.replace("<%= ENV['FCU_RESOURCES_DIR'] %>", "r"))
    assert set(data) == TOP_LEVEL_KEYS - set(OBSOLETE_FILE_KEYS)  # every key, each with a value line
    assert all(key in text for key in OBSOLETE_FILE_KEYS)  # mentioned in a comment
    assert set(data["device-info"]) == set(DEVICE_INFO_KEYS)
    assert set(data["certificate-authority"]) == set(SUBJECT_KEYS)
    assert set(data["device-certificate"]) == set(SUBJECT_KEYS) - {"common-name"}
    assert (tmp_path / "h" / "resources").is_dir()


def test_init_refuses_overwrite(tmp_path: Path) -> None:
    """A second init without --force fails with FCU code 290."""
    run("init", str(tmp_path))
    result = run("init", str(tmp_path))
    assert result.exit_code == 1 and "Error FCU-290" in result.output


def test_setup_prints_status_and_refuses_overwrite(home: Path) -> None:
    """setup without -f on an existing CA fails with 290; with -f it succeeds and prints JSON status 0."""
    result = run("--home-dir", str(home), "setup")
    assert result.exit_code == 1 and _json_line(result.output)["status"] == 290
    assert "Hint: use 'provkit setup -f'" in result.output
    result = run("--home-dir", str(home), "setup", "-f")
    assert result.exit_code == 0
    assert _json_line(result.output)["status"] == 0


def test_inject_tcp_success(home: Path, device: tuple[FactoryConfiguratorClient, TcpAgentServer]) -> None:
    """inject over TCP prints the ft_demo JSON with the device's status and warnings and exits 0."""
    _, server = device
    ip, port = server.address
    result = run(
        "--home-dir", str(home), "inject", "--endpoint-name", "cli-1", "--serial-number", "SN1",
        "tcp", "--ip", ip, "--port", str(port), "-t", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = _json_line(result.output)
    assert body["status"] == 0 and body["message"] == "Command executed successfully"
    response = body["deviceResponse"]
    assert isinstance(response, dict) and response["status"] == 0
    assert response["message"] == "The Factory process succeeded"
    assert "Item not set:mbed.UpdateAuthCert" in response["warnings"]


def test_inject_link_spec_success(
    home: Path, device: tuple[FactoryConfiguratorClient, TcpAgentServer]
) -> None:
    """inject … link tcp:IP:PORT goes through the same flow as inject … tcp: the same JSON, exit 0."""
    _, server = device
    ip, port = server.address
    result = run(
        "--home-dir", str(home), "inject", "--endpoint-name", "cli-link", "--serial-number", "SNL",
        "link", f"tcp:{ip}:{port}", "--timeout", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = _json_line(result.output)
    assert body["status"] == 0 and body["deviceResponse"]["status"] == 0


def test_inject_bad_link_spec_is_a_usage_error(home: Path) -> None:
    """A link spec that does not parse is refused before anything is prepared (exit 2, naming the forms)."""
    identity = ("--home-dir", str(home), "inject", "--endpoint-name", "e", "--serial-number", "s")
    result = run(*identity, "link", "udp:h:1")
    assert result.exit_code == 2 and "tcp:HOST:PORT, serial:PORT[@BAUD], file:PATH" in result.output
    result = run(*identity, "tcp", "--ip", "", "--port", "7777")
    assert result.exit_code == 2 and "needs a host" in result.output


def test_inject_first_to_claim_prints_enrollment_id(
    home: Path, device: tuple[FactoryConfiguratorClient, TcpAgentServer]
) -> None:
    """With first-to-claim, inject prints 'enrollment id: A-…' (97 characters) before the JSON."""
    config = home / "config" / "fcu.yml"
    config.write_text(config.read_text().replace("first-to-claim: false", "first-to-claim: true"))
    ip, port = device[1].address
    result = run(
        "--home-dir", str(home), "inject", "--endpoint-name", "ftc", "--serial-number", "S",
        "tcp", "--ip", ip, "--port", str(port),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("enrollment id: "))
    assert len(line.removeprefix("enrollment id: ")) == 97


def test_inject_device_refusal_is_1004(
    home: Path, device: tuple[FactoryConfiguratorClient, TcpAgentServer]
) -> None:
    """A device refusing the bundle gives status 1004 with its own status in deviceResponse, exit 1."""
    ip, port = device[1].address
    args = ["--home-dir", str(home), "inject", "--endpoint-name", "dup", "--serial-number", "S"]
    assert run(*args, "tcp", "--ip", ip, "--port", str(port)).exit_code == 0
    result = run(*args, "tcp", "--ip", ip, "--port", str(port))
    assert result.exit_code == 1
    body = _json_line(result.output)
    assert body["status"] == 1004
    response = body["deviceResponse"]
    assert isinstance(response, dict) and response["status"] != 0
    assert body["message"] == f"Execution failed on device with error #{response['status']}"


def test_inject_unreachable_device_is_1021(home: Path) -> None:
    """Nothing listening on the port gives status 1021 and exit 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(
        "--home-dir", str(home), "inject", "--endpoint-name", "x", "--serial-number", "S",
        "tcp", "--ip", "127.0.0.1", "--port", str(port), "-t", "0.5",
    )  # fmt: skip
    assert result.exit_code == 1
    assert _json_line(result.output)["status"] == 1021


def test_inject_without_setup_reports_fcu_code(tmp_path: Path) -> None:
    """inject in a home without a CA prints the FCU code 210 as status and exits 1."""
    home = make_fcu_home(tmp_path, setup=False)
    result = _inject_to_file(home, tmp_path / "o")
    assert result.exit_code == 1
    assert _json_line(result.output)["status"] == 210
    assert "setup" in result.output


@pytest.mark.parametrize("transport", ["to-file", "to_file"])
def test_inject_to_file_writes_frame(home: Path, tmp_path: Path, transport: str) -> None:
    """to-file (or ft_demo's spelling to_file) writes one mbedprov frame whose body is the device bundle."""
    out = tmp_path / "bundle.bin"
    result = run(
        "--home-dir", str(home), "inject", "--endpoint-name=f1", "--serial-number=S", transport, str(out)
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"status": 0, "message": SUCCESS_MESSAGE}
    data = out.read_bytes()
    assert data[:8] == b"mbedprov"
    length = int.from_bytes(data[8:12], "little")
    assert data[12 + length :] == hashlib.sha256(data[12 : 12 + length]).digest()
    bundle = decode_bundle(data[12 : 12 + length])
    assert {p.name: p.data for p in bundle.config_params}["mbed.EndpointName"] == "f1"


def test_inject_refuses_a_non_printable_endpoint_name(home: Path, tmp_path: Path) -> None:
    """--endpoint-name with a control character is refused (status 100) and nothing is written."""
    out = tmp_path / "o.bin"
    result = _inject_to_file(home, out, endpoint="ev\x01il")
    assert result.exit_code == 1
    status = _json_line(result.output)
    assert status["status"] == 100 and "non-printable" in status["message"]
    assert not out.exists()


@pytest.mark.parametrize(
    ("tail", "code"),
    [("x: " + "[" * 5000 + "]" * 5000 + "\n", 200), ("use-bootstrap: false\n", 380)],
    ids=["5000-deep", "key-twice"],
)
def test_broken_config_is_a_coded_status_not_a_traceback(
    home: Path, tmp_path: Path, tail: str, code: int
) -> None:
    """A 5,000-deep nesting or a key given twice in fcu.yml ends in its FCU code through the CLI."""
    config = home / "config" / "fcu.yml"
    config.write_text(config.read_text() + tail)
    result = _inject_to_file(home, tmp_path / "o")
    assert result.exit_code == 1
    assert _json_line(result.output)["status"] == code


def test_config_file_option(home: Path, tmp_path: Path) -> None:
    """--config-file selects another fcu.yml; an invalid one fails with its FCU code."""
    bad = tmp_path / "bad.yml"
    bad.write_text("use-bootstrap: maybe\n")
    result = run(
        "--home-dir", str(home), "--config-file", str(bad),
        "inject", "--endpoint-name", "x", "--serial-number", "S", "to-file", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert _json_line(result.output)["status"] == 380


def test_demo_runs_end_to_end() -> None:
    """provkit demo provisions a virtual device with embedded defaults and exits 0."""
    result = run("demo")
    assert result.exit_code == 0, result.output
    body = _json_line(result.output)
    assert body["status"] == 0
    assert "mbed.BootstrapDeviceCert" in result.output and "device stores:" in result.output


def test_by_device_to_file_is_1000(home: Path, tmp_path: Path) -> None:
    """by_device mode cannot write to a file (it needs the device's CSR): status 1000, exit 1."""
    config = home / "config" / "fcu.yml"
    config.write_text(
        config.read_text().replace(
            "device-key-generation-mode: by_tool", "device-key-generation-mode: by_device"
        )
    )
    result = _inject_to_file(home, tmp_path / "o")
    assert result.exit_code == 1
    assert _json_line(result.output)["status"] == 1000


def test_demo_ignores_fcu_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """provkit demo uses its own temporary home even when FCU_* variables point elsewhere."""
    monkeypatch.setenv("FCU_RESOURCES_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("FCU_KEYSTORE_DIR", str(tmp_path / "ks"))
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "ks").exists()


def test_demo_reports_a_failed_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """When setup cannot write the CA (a passphrase the key encryption refuses), demo says so and exits 1."""
    monkeypatch.setenv("PROVKIT_CA_PASSPHRASE", "p" * 2000)
    result = run("demo")
    assert result.exit_code == 1
    body = _json_line(result.output)
    assert body["status"] != 0 and "deviceResponse" not in body


def test_inject_to_file_writes_owner_only_and_warns_of_the_private_key(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "request.bin"
    out.write_bytes(b"old")
    out.chmod(0o644)  # an existing wider file is narrowed before the bundle goes in
    result = _inject_to_file(home, out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert "holds the bundle in clear, with the device's private key" in result.output
    linked = tmp_path / "linked.bin"
    result = run("--home-dir", str(home), "inject", "--endpoint-name", "y", "--serial-number", "S",
                 "link", f"file:{linked}")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert linked.stat().st_mode & 0o777 == 0o600 and "private key" in result.output
