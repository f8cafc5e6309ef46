"""``provkit device …`` commands: serve as a real subprocess, show/verify/reset/erase via CliRunner."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.cli.main import cli, main
from provkit.codes import FccStatus, FtErrorCode
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor
from provkit.device.storage import open_storage
from provkit.transport.links import TcpLink, exchange_over
from provkit.transport.streams import SocketStream, available_serial_ports, missing_serial_port
from provkit.wire.cbor_strict import dumps as cbor_dumps
from provkit.wire.framing import FCC_TOKEN
from provkit.wire.response import decode_response
from support.bundles import device_bundle
from support.cli import json_status, make_fcu_home, run_cli
from support.pty import serial_agent

AGENT = (sys.executable, "-m", "provkit.cli", "device")
LWM2M_SAMPLE = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m" / "sample_psk.yaml"
CA_ID_WARNING = "CA identifier wasn't set properly:mbed.BootstrapServerCACert"
READY = re.compile(r"^Factory Client IP Address and Port : (127\.0\.0\.1):(\d+)$")


def provision(path: Path, endpoint: str = "ep-cli") -> None:
    storage = open_storage(path)
    try:
        result = FactoryConfiguratorClient(Kcm(storage)).bundle_handler(device_bundle(endpoint))
        assert result.status == FccStatus.SUCCESS
    finally:
        storage.close()


@contextmanager
def serving(db: Path | str, *options: str) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """Run ``provkit device serve --port 0`` as a subprocess; yield it with its address."""
    proc = subprocess.Popen(
        [*AGENT, "serve", "--ip", "127.0.0.1", "--port", "0", "--storage", str(db), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = READY.match(line)
        assert match, line
        yield proc, match.group(1), int(match.group(2))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM the agent, check it exits 0, and return what it printed."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out


@pytest.mark.integration
def test_serve_subprocess_prints_ready_line_and_provisions(tmp_path: Path) -> None:
    """`provkit device serve --port 0` prints the ready line, provisions over TCP, stops on SIGTERM."""
    db = tmp_path / "device.sqlite"
    with serving(db) as (proc, ip, port):
        with TcpLink(ip, port) as link:
            response = decode_response(link.exchange(device_bundle("ep-subprocess"), timeout_s=60))
        assert response.return_status == FccStatus.SUCCESS
        assert "stopped after 1 message(s)" in stop(proc)
    result = CliRunner().invoke(cli, ["device", "verify", "--storage", str(db)])
    assert result.exit_code == 0, result.output


@pytest.mark.integration
@pytest.mark.parametrize(("options", "kept"), [((), True), (("--atomic-bundles",), False)])
def test_serve_keeps_a_refused_bundles_items_unless_atomic(
    tmp_path: Path, options: tuple[str, ...], kept: bool
) -> None:
    """By default the served device keeps what a refused bundle stored before failing, as FCC
    does; with --atomic-bundles it keeps nothing."""
    db = tmp_path / "device.sqlite"
    bundle = cbor_dumps(
        {
            "SchemeVersion": "0.0.1",
            "ConfigParams": [{"Name": "custom.a", "Data": 1}, {"Name": "bad name", "Data": 1}],
        }
    )
    with serving(db, *options) as (proc, ip, port):
        with TcpLink(ip, port) as link:
            response = decode_response(link.exchange(bundle, timeout_s=60))
        assert (response.return_status, response.info_message) == (16, "File name invalid:bad name")
        stop(proc)
    shown = CliRunner().invoke(cli, ["device", "show", "--storage", str(db)])
    assert shown.exit_code == 0, shown.output
    assert ("custom.a" in shown.output) is kept


@pytest.mark.integration
def test_serve_memory_device_keeps_a_session_open_across_bundles() -> None:
    """`serve --storage :memory:`: a keep-alive bundle and the closing one share one connection."""
    with serving(":memory:") as (proc, ip, port):
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "Factory Client is waiting for incoming connection..."
        with socket.create_connection((ip, port), timeout=60) as sock:
            stream = SocketStream(sock)
            first = exchange_over(
                stream, device_bundle("ep-memory", keep_alive=1), token=FCC_TOKEN, timeout_s=60,
                receive_code=FtErrorCode.TCP_RECEIVE_FAILED,
            )  # fmt: skip
            first_response = decode_response(first)
            assert first_response.return_status == FccStatus.SUCCESS
            # Mid-session the bootstrap CA is not trusted yet (it is when the session ends).
            assert CA_ID_WARNING in first_response.warnings
            # The same socket carries the closing bundle: the agent kept the session open.
            closing = cbor_dumps({"SchemeVersion": "0.0.1", "KpAlvSess": 0})
            second = decode_response(
                exchange_over(
                    stream,
                    closing,
                    token=FCC_TOKEN,
                    timeout_s=60,
                    receive_code=FtErrorCode.TCP_RECEIVE_FAILED,
                )
            )
            assert second.return_status == FccStatus.SUCCESS
            assert CA_ID_WARNING not in second.warnings
            # Session finished: the agent closes this connection and waits for the next one.
            sock.settimeout(60)
            assert sock.recv(1) == b""
        assert "stopped after 2 message(s)" in stop(proc)


@pytest.mark.integration
def test_serve_accepts_lwm2m_blobs_beside_fcc_bundles(tmp_path: Path) -> None:
    """The same agent takes an FCC bundle and an LwM2M SenML blob (`lwm2m provision --tcp`)."""
    db = tmp_path / "device.sqlite"
    with serving(db) as (proc, ip, port):
        with TcpLink(ip, port) as link:
            response = decode_response(link.exchange(device_bundle("ep-both"), timeout_s=60))
        assert response.return_status == FccStatus.SUCCESS
        result = CliRunner().invoke(
            cli, ["lwm2m", "provision", "-c", str(LWM2M_SAMPLE), "--tcp", f"{ip}:{port}"]
        )
        assert result.exit_code == 0, result.output
        assert "accepted 10 resources" in result.output
        assert "stopped after 2 message(s)" in stop(proc)
    storage = open_storage(db)
    try:
        kcm = Kcm(storage)
        assert len(Lwm2mAcceptor(kcm).configuration()) == 10
        assert kcm.item_exists("mbed.EndpointName", 4)
    finally:
        storage.close()


def test_show_lists_items_with_certificate_subjects_but_no_key_bytes(tmp_path: Path) -> None:
    """show --json lists every item; certificates carry subject and validity; no key material appears."""
    db = tmp_path / "d.sqlite"
    provision(db)
    result = CliRunner().invoke(cli, ["device", "show", "--storage", str(db), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    cert = rows["mbed.BootstrapDeviceCert"]
    assert "CN=ep-cli" in cert["subject"]
    assert cert["not_after"].endswith("Z")
    key = rows["mbed.BootstrapDevicePrivateKey"]
    assert key["type"] == "private_key"
    assert set(key) == {"type", "name", "size", "factory"}
    table = CliRunner().invoke(cli, ["device", "show", "--storage", str(db)])
    assert table.exit_code == 0
    assert "mbed.BootstrapDevicePrivateKey" in table.output
    assert "14 item(s)" in table.output


def test_verify_fails_with_exit_1_on_empty_device(tmp_path: Path) -> None:
    """verify on an unprovisioned device prints the failing status and exits 1."""
    open_storage(tmp_path / "empty.sqlite").close()
    result = CliRunner().invoke(cli, ["device", "verify", "--storage", str(tmp_path / "empty.sqlite")])
    assert result.exit_code == 1
    assert "Status: 25" in result.output
    assert "Item does not exist:mbed.UseBootstrap" in result.output


@pytest.mark.parametrize("command", [["show"], ["verify"], ["reset"], ["erase", "--yes"]])
def test_inspecting_a_missing_storage_file_is_error_11(tmp_path: Path, command: list[str]) -> None:
    """show/verify/reset/erase never create a device for a mistyped path: they fail with 11."""
    missing = tmp_path / "typo.sqlite"
    result = CliRunner().invoke(cli, ["device", *command, "--storage", str(missing)])
    assert result.exit_code == 1
    assert f"Error KCM-11: storage file {missing} does not exist" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["show"], ["verify"], ["reset"], ["erase", "--yes"]])
def test_a_foreign_sqlite_file_is_error_11_and_left_alone(tmp_path: Path, command: list[str]) -> None:
    """Pointed at another application's SQLite file, no command adds a table or a secret to it."""
    import sqlite3

    foreign = tmp_path / "app.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE notes (x)")
    db.close()
    before = foreign.read_bytes()
    result = CliRunner().invoke(cli, ["device", *command, "--storage", str(foreign)])
    assert result.exit_code == 1
    assert f"Error KCM-11: {foreign} is not a provkit device store (its tables: notes)" in result.output
    assert foreign.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["app.db"]


def test_a_store_without_its_secret_is_error_14_and_gets_no_new_one(tmp_path: Path) -> None:
    """show on a store whose secret was moved away fails with 14 and writes no random secret;
    --secret-file (or PROVKIT_DEVICE_SECRET_FILE) pointing at the moved secret opens it."""
    db = tmp_path / "d.sqlite"
    provision(db)
    kept = tmp_path / "vault" / "device.secret"
    kept.parent.mkdir()
    (tmp_path / "d.sqlite.secret").rename(kept)
    for command in (["show"], ["verify"], ["reset"]):
        result = CliRunner().invoke(cli, ["device", *command, "--storage", str(db)])
        assert result.exit_code == 1 and "Error KCM-14: the device secret" in result.output, result.output
        assert "Hint: restore the secret file or name it with --secret-file" in result.output
        assert not (tmp_path / "d.sqlite.secret").exists()
    shown = CliRunner().invoke(cli, ["device", "show", "--storage", str(db), "--secret-file", str(kept)])
    assert shown.exit_code == 0 and "14 item(s)" in shown.output
    verified = CliRunner().invoke(
        cli, ["device", "verify", "--storage", str(db)], env={"PROVKIT_DEVICE_SECRET_FILE": str(kept)}
    )
    assert verified.exit_code == 0, verified.output


def test_secret_given_in_the_environment_is_never_written(tmp_path: Path) -> None:
    """serve and show take the secret itself from PROVKIT_DEVICE_SECRET; no .secret file appears."""
    import os

    secret = os.urandom(32).hex()
    db = tmp_path / "d.sqlite"
    env = {**os.environ, "PROVKIT_DEVICE_SECRET": secret}
    proc = subprocess.Popen(
        [*AGENT, "serve", "--port", "0", "--storage", str(db), "--once"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        match = READY.match(proc.stdout.readline().strip())
        assert match, proc.stderr.read() if proc.stderr else ""
        with TcpLink(match.group(1), int(match.group(2))) as link:
            assert decode_response(link.exchange(device_bundle("ep-env"), timeout_s=30)).return_status == 0
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "d.sqlite.secret").exists()
    show = ["device", "show", "--storage", str(db)]
    shown = CliRunner().invoke(cli, show, env={"PROVKIT_DEVICE_SECRET": secret})
    assert shown.exit_code == 0 and "14 item(s)" in shown.output
    bad = CliRunner().invoke(cli, show, env={"PROVKIT_DEVICE_SECRET": "0" * 64})
    assert bad.exit_code == 1 and "Error KCM-14: the device secret does not match" in bad.output


def test_show_works_on_a_read_only_store_and_changes_nothing(tmp_path: Path) -> None:
    """show and verify open read-only: the store's bytes are the same afterwards."""
    import hashlib

    db = tmp_path / "d.sqlite"
    provision(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for command in (["show"], ["verify"]):
        assert CliRunner().invoke(cli, ["device", *command, "--storage", str(db)]).exit_code == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_verify_succeeds_and_prints_warnings(tmp_path: Path) -> None:
    """verify on a provisioned device exits 0 and lists the warnings."""
    db = tmp_path / "d.sqlite"
    provision(db)
    result = CliRunner().invoke(cli, ["device", "verify", "--storage", str(db)])
    assert result.exit_code == 0, result.output
    assert "Status: 0" in result.output
    assert "Warning: " in result.output


def test_reset_restores_factory_items(tmp_path: Path) -> None:
    """reset drops items stored after the factory and keeps the factory ones."""
    db = tmp_path / "d.sqlite"
    provision(db)
    storage = open_storage(db)
    Kcm(storage).item_store("runtime.item", 4, b"x", is_factory=False)
    storage.close()
    result = CliRunner().invoke(cli, ["device", "reset", "--storage", str(db)])
    assert result.exit_code == 0, result.output
    storage = open_storage(db)
    kcm = Kcm(storage)
    assert not kcm.item_exists("runtime.item", 4)
    assert kcm.item_exists("mbed.EndpointName", 4)
    storage.close()


def test_erase_asks_for_confirmation_unless_yes(tmp_path: Path) -> None:
    """erase aborts on 'n', and wipes everything with --yes."""
    db = tmp_path / "d.sqlite"
    provision(db)
    declined = CliRunner().invoke(cli, ["device", "erase", "--storage", str(db)], input="n\n")
    assert declined.exit_code != 0
    assert "Aborted" in declined.output
    done = CliRunner().invoke(cli, ["device", "erase", "--storage", str(db), "--yes"])
    assert done.exit_code == 0, done.output
    shown = CliRunner().invoke(cli, ["device", "show", "--storage", str(db), "--json"])
    assert json.loads(shown.output) == []


@pytest.mark.integration
def test_declined_erase_exits_1_and_leaves_the_device(tmp_path: Path) -> None:
    """The console entry point: 'n' at the prompt is a refusal (exit 1, not Ctrl-C's 130); nothing erased."""
    db = tmp_path / "d.sqlite"
    provision(db)
    declined = subprocess.run(
        [*AGENT, "erase", "--storage", str(db)], input="n\n", capture_output=True, text=True, timeout=60
    )
    assert declined.returncode == 1, declined.stderr
    assert "Aborted." in declined.stderr
    storage = open_storage(db)
    assert Kcm(storage).item_exists("mbed.EndpointName", 4)
    storage.close()


class _CtrlCAtPrompt(io.StringIO):
    """Standard input whose reader is interrupted, as a terminal's Ctrl-C interrupts ``input()``."""

    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_at_the_erase_prompt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during a confirmation is the shell's 130, and the device keeps its items."""
    db = tmp_path / "d.sqlite"
    provision(db)
    monkeypatch.setattr(sys, "argv", ["provkit", "device", "erase", "--storage", str(db)])
    monkeypatch.setattr(sys, "stdin", _CtrlCAtPrompt())
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 130
    storage = open_storage(db)
    assert Kcm(storage).item_exists("mbed.EndpointName", 4)
    storage.close()


def test_serve_on_missing_serial_port_reports_1013_or_1014(tmp_path: Path) -> None:
    """serve --serial with a port that does not exist fails with 1014 (1013 on a system without ports)."""
    missing = str(tmp_path / "ttyNONE")
    result = CliRunner().invoke(cli, ["device", "serve", "--serial", missing])
    assert result.exit_code == 1
    assert f"Error {missing_serial_port(missing, available_serial_ports()).qualified_code}" in result.output


@pytest.mark.integration
def test_serve_serial_subprocess_provisioned_by_inject_serial(tmp_path: Path) -> None:
    """`device serve --serial` (a real process) and `inject … serial` meet over a pty cable.

    The agent writes its console lines on the same line; inject must find the response among them.
    """
    home = make_fcu_home(tmp_path)
    db = tmp_path / "serial-device.sqlite"
    with serial_agent(str(db)) as agent:
        result = run_cli(
            "--home-dir", str(home), "inject", "--endpoint-name", "ser-proc-1", "--serial-number", "SN-1",
            "serial", "--port", agent.cable.host_path, "-t", "30",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        body = json_status(result.output)
        assert body["status"] == 0 and body["message"] == "Command executed successfully"
        assert body["deviceResponse"]["status"] == 0
    assert "stopped after 1 message(s)" in agent.output
    verified = CliRunner().invoke(cli, ["device", "verify", "--storage", str(db)])
    assert verified.exit_code == 0, verified.output
