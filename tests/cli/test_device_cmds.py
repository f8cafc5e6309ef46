"""``provkit device …`` commands: serve as a real subprocess, show/verify/reset/erase via CliRunner."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.cli.main import cli
from provkit.codes import FccStatus
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import Kcm
from provkit.device.storage import open_storage
from provkit.transport.links import TcpLink
from provkit.wire.response import decode_response

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
from bundles import device_bundle

READY = re.compile(r"^Factory Client IP Address and Port : (127\.0\.0\.1):(\d+)$")


def provision(path: Path, endpoint: str = "ep-cli") -> None:
    storage = open_storage(path)
    try:
        result = FactoryConfiguratorClient(Kcm(storage)).bundle_handler(device_bundle(endpoint))
        assert result.status == FccStatus.SUCCESS
    finally:
        storage.close()


@pytest.mark.integration
def test_serve_subprocess_prints_ready_line_and_provisions(tmp_path: Path) -> None:
    """`provkit device serve --port 0` prints the ready line, provisions over TCP, stops on SIGTERM."""
    db = tmp_path / "device.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provkit.cli",
            "device",
            "serve",
            "--ip",
            "127.0.0.1",
            "--port",
            "0",
            "--storage",
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "0"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = READY.match(line)
        assert match, line
        with TcpLink(match.group(1), int(match.group(2))) as link:
            response = decode_response(link.exchange(device_bundle("ep-subprocess"), timeout_s=60))
        assert response.return_status == FccStatus.SUCCESS
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped after 1 message(s)" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result = CliRunner().invoke(cli, ["device", "verify", "--storage", str(db)])
    assert result.exit_code == 0, result.output


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
    result = CliRunner().invoke(cli, ["device", "verify", "--storage", str(tmp_path / "empty.sqlite")])
    assert result.exit_code == 1
    assert "Status: 25" in result.output
    assert "Item does not exist:mbed.UseBootstrap" in result.output


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


def test_serve_on_missing_serial_port_reports_1014(tmp_path: Path) -> None:
    """serve --serial with a port that does not exist fails with error 1014."""
    result = CliRunner().invoke(cli, ["device", "serve", "--serial", str(tmp_path / "ttyNONE")])
    assert result.exit_code == 1
    assert "Error 1014" in result.output
