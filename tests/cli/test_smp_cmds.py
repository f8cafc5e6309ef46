"""``lwm2m provision ... smp-serial | smp-udp``, ``device serve/farm --protocol smp``.

The boards are real processes (``provkit device serve``) on a pty cable or UDP, or the
in-process farm; the factory side runs the real CLI.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.cli.main import cli
from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor
from provkit.device.storage import SqliteStorage
from provkit.factory.lwm2m import FactoryProvisioning
from provkit.line.smp_farm import SmpDeviceFarm
from support.coiote import coiote_server
from support.pty import pty_cable

pytestmark = pytest.mark.integration

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m"
SAMPLE = VECTORS_DIR / "sample_psk.yaml"
CERT_YAML = """\
Security:
  1: {ServerURI: "coaps://dm.example.com:5684", Bootstrap: false, Mode: cert, ShortServerID: 1}
Server:
  1: {ShortServerID: 1, Lifetime: 86400, NotificationStoring: false, Binding: U}
"""


@contextmanager
def serve_board(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``provkit device serve --protocol smp ARGS`` as a real process; yields it and its first lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "provkit.cli", "device", "serve", "--protocol", "smp", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        head = [proc.stdout.readline().strip() for _ in range(3)]  # ready, endpoint, first log line
        assert head[0].startswith("SMP server on"), (head, proc.stderr.read() if proc.stderr else "")
        yield proc, head
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        head.append(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def provision(*args: str) -> object:
    return CliRunner().invoke(cli, ["lwm2m", "provision", *args])


def stored(db: Path) -> dict[str, object]:
    return {e.path: e.value for e in Lwm2mAcceptor(Kcm(SqliteStorage(db))).configuration()}


def test_serve_udp_and_provision_with_the_endpoint_from_the_device(tmp_path):
    db = tmp_path / "board.db"
    board = ("--port", "0", "--storage", str(db), "--endpoint", "anjay-zephyr-demo-cafe")
    with serve_board(*board) as (_, head):
        port = head[0].rsplit(":", 1)[1]
        assert head[1] == "endpoint: anjay-zephyr-demo-cafe"
        udp = ("smp-udp", "--host", "127.0.0.1", "--port", port, "--no-progress")
        ok = provision("-c", str(SAMPLE), *udp)
        again = provision("-c", str(SAMPLE), *udp)
    assert ok.exit_code == 0, ok.output
    assert "anjay-zephyr-demo-cafe applied the configuration" in ok.output and "result 0" in ok.output
    # The same boot takes no second blob: the upload is refused with the fs group's code.
    assert again.exit_code == 1 and again.output.startswith("Error SMP-7114: smp-udp:127.0.0.1:")
    assert "MOUNT_POINT_NOT_FOUND" in again.output
    assert head[-1].strip().endswith("result: 0")
    assert len(stored(db)) == 10
    # Restarted, the board holds provisioning data: it halts and mounts no /factory.
    with serve_board("--port", "0", "--storage", str(db)) as (_, head):
        port = head[0].rsplit(":", 1)[1]
        halted = provision("-c", str(SAMPLE), "smp-udp", "--host", "127.0.0.1", "--port", port)
    assert halted.exit_code == 1 and halted.output.startswith("Error SMP-7004:")
    assert "Hint:" in halted.output and "Factory provisioning information already present" in head[2]


def test_serve_serial_cert_mode_and_registration(tmp_path):
    """Over a pty: the certificate gets the device's endpoint as CN, and the device is registered."""
    from cryptography import x509

    cfg = tmp_path / "cert.yaml"
    cfg.write_text(CERT_YAML)
    server_der = (
        FactoryProvisioning(tmp_path / "cert.yaml", "srv", None, None, None, allow_unverified_server=True)
        .generate_self_signed_cert()
        .cert_der
    )
    (tmp_path / "server.der").write_bytes(server_der)
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"organizationName": "line 3"}))
    db = tmp_path / "board.db"
    server_file = tmp_path / "server.json"
    with pty_cable() as cable, coiote_server() as coiote:
        server_file.write_text(json.dumps(coiote.server_info()))
        board = ("--serial", cable.device_path, "--storage", str(db), "--endpoint", "anjay-zephyr-demo-1")
        with serve_board(*board):
            result = provision(
                "-c", str(cfg), "-C", str(info), "-p", str(tmp_path / "server.der"), "-s", str(server_file),
                "-t", "tok", "smp-serial", "--port", cable.host_path, "--baud", "115200", "--timeout", "5",
            )  # fmt: skip
        seen = list(coiote.seen)
    assert result.exit_code == 0, result.output
    assert "registered anjay-zephyr-demo-1" in result.output
    cert = x509.load_der_x509_certificate(stored(db)["/0/1/3"])  # type: ignore[arg-type]
    assert cert.subject.rfc4514_string() == "CN=anjay-zephyr-demo-1,O=line 3"
    ((_, _, _, body),) = seen
    assert body["properties"] == {"endpointName": "anjay-zephyr-demo-1"}  # type: ignore[index]


def test_farm_over_ptys_and_udp_with_e_override(tmp_path):
    with SmpDeviceFarm(2, link="serial") as serial_farm, SmpDeviceFarm(1, link="udp") as udp_farm:
        first = serial_farm.addresses[0].removeprefix("smp-serial:")
        ok = provision("-c", str(SAMPLE), "smp-serial", "--port", first, "--chunk-size", "64")
        host, port = udp_farm.addresses[0].removeprefix("smp-udp:").rsplit(":", 1)
        named = provision("-c", str(SAMPLE), "-e", "given-name", "smp-udp", "--host", host, "--port", port)
        assert serial_farm.boards[0].factory.result == 0 and serial_farm.boards[1].factory.result is None
    assert ok.exit_code == 0 and serial_farm.boards[0].endpoint_name in ok.output
    assert "upload" in ok.stderr and "B/s" in ok.stderr  # the progress bar with bytes per second
    assert named.exit_code == 0 and "given-name applied" in named.output  # -e overrides endpoint.txt


def test_usage_and_connection_errors(tmp_path):
    no_name = provision("-c", str(SAMPLE), "smp-udp", "--host", "127.0.0.1", "--no-endpoint-from-device")
    assert no_name.exit_code == 2 and "give -e/--URN" in no_name.output
    both = provision("-c", str(SAMPLE), "--tcp", "127.0.0.1:1", "smp-udp", "--host", "127.0.0.1")
    assert both.exit_code == 2
    missing = provision("-c", str(SAMPLE), "smp-serial", "--port", str(tmp_path / "ttyNONE"))
    assert missing.exit_code == 1
    assert missing.output.startswith("Error SMP-7001:") and "ttyNONE" in missing.output
    with SmpDeviceFarm(1, link="udp") as farm:
        host, port = farm.addresses[0].removeprefix("smp-udp:").rsplit(":", 1)
        anjay = provision("-c", str(tmp_path / "dev.yaml"), "smp-udp", "--host", host, "--port", port)
        assert anjay.exit_code == 2  # the configuration file does not exist: nothing sent
        (tmp_path / "dev.yaml").write_text(SAMPLE.read_text() + "Device:\n  0: {Manufacturer: ACME}\n")
        refused = provision("-c", str(tmp_path / "dev.yaml"), "smp-udp", "--host", host, "--port", port)
        generic = provision(
            "-c", str(tmp_path / "dev.yaml"), "--target", "generic", "smp-udp", "--host", host, "--port", port
        )
    assert refused.exit_code == 1 and refused.output.startswith("Error LWM2M-5006: /3/0/0")
    assert generic.exit_code == 1 and "\nError SMP-7005: " in generic.output  # the board said -1
    assert "nothing was applied" in generic.output


def test_farm_command_writes_addresses(tmp_path):
    ports = tmp_path / "farm.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "provkit.cli", "device", "farm", "--count", "2", "--protocol", "smp",
         "--link", "serial", "--ports-file", str(ports)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in range(2)]
        assert [line[:2] for line in lines] == [["device", "0"], ["device", "1"]]
        assert lines[0][2].startswith("smp-serial:/dev/") and lines[0][3].startswith("anjay-zephyr-demo-")
        ok = provision("-c", str(SAMPLE), "smp-serial", "--port", lines[1][2].removeprefix("smp-serial:"))
        assert ok.exit_code == 0 and lines[1][3] in ok.output
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    described = json.loads(ports.read_text())
    assert (described["protocol"], described["link"], len(described["addresses"])) == ("smp", "serial", 2)


def test_wait_ready_then_provision_over_serial(tmp_path):
    """--wait-ready: the command opens the port, the board (re)boots and logs, then the flow runs."""
    import threading

    from provkit.device.smp import AnjayProvisioningImage
    from provkit.transport.smp_server import SmpSerialServer

    board = AnjayProvisioningImage(Kcm(SqliteStorage(tmp_path / "b.db")), endpoint_name="booted-1")
    done = threading.Event()
    with pty_cable() as cable, SmpSerialServer(board.handle, cable.device_path) as server:

        def keep_booting() -> None:  # a board reset now and then until the tool has seen it boot
            while not done.wait(0.1):
                server.log(board.console_lines)

        thread = threading.Thread(target=keep_booting, daemon=True)
        thread.start()
        try:
            serial = ("smp-serial", "--port", cable.host_path, "--wait-ready", "30", "--no-progress")
            result = provision("-c", str(SAMPLE), *serial)
        finally:
            done.set()
            thread.join()
    assert result.exit_code == 0, result.output
    assert "booted-1 applied the configuration" in result.output
    # Booted again, the board logs that it holds provisioning data: refused from its console line.
    board.reboot()
    done.clear()
    with pty_cable() as cable, SmpSerialServer(board.handle, cable.device_path) as server:
        thread = threading.Thread(target=keep_booting, daemon=True)
        thread.start()
        try:
            waiting = ("smp-serial", "--port", cable.host_path, "--wait-ready", "30")
            halted = provision("-c", str(SAMPLE), *waiting)
        finally:
            done.set()
            thread.join()
    assert halted.exit_code == 1 and "the board says: Factory provisioning information" in halted.output


def test_link_spec_reaches_a_board(tmp_path):
    """--link smp-udp:HOST:PORT runs the board flow with the SMP defaults."""
    with SmpDeviceFarm(1, link="udp") as farm:
        ok = provision("-c", str(SAMPLE), "--link", farm.addresses[0])
        assert farm.boards[0].factory.result == 0
    assert ok.exit_code == 0 and f"{farm.boards[0].endpoint_name} applied" in ok.output
