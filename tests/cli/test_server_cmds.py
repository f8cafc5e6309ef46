"""``provkit server init | ca-cert | trust-ca | trusted | untrust | revoke | revocations | run``."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provkit.crypto import issue, keys, x509
from provkit.registry import Registry
from support.cli import run_cli


def _ca_file(path: Path) -> Path:
    key = keys.generate_p256()
    cert = issue.create_ca(key, {"common-name": "line CA"}, now=dt.datetime.now(dt.UTC))
    path.write_bytes(x509.certificate_pem([cert]))
    return path


def test_init_ca_cert_and_trust(tmp_path: Path) -> None:
    """init publishes the sealing key; ca-cert prints the CA; trust-ca/trusted/untrust manage trust."""
    home, registry = tmp_path / "home", str(tmp_path / "r.sqlite")
    result = run_cli(
        "server", "init", "--server-home", str(home), "--registry", registry, "--address", "127.0.0.1"
    )
    assert result.exit_code == 0, result.output
    assert run_cli("server", "init", "--server-home", str(home), "--registry", registry).exit_code == 1
    pem = run_cli("server", "ca-cert", "--server-home", str(home)).output
    assert pem.startswith("-----BEGIN CERTIFICATE-----") and pem == (home / "ca.pem").read_text()
    assert (
        run_cli(
            "server", "ca-cert", "--server-home", str(home), "--der", "-o", str(tmp_path / "ca.der")
        ).exit_code
        == 0
    )
    assert (
        x509.load_certificate((tmp_path / "ca.der").read_bytes()).subject
        == x509.load_certificate(pem.encode()).subject
    )

    ca = _ca_file(tmp_path / "ca.pem")
    trusted = run_cli("server", "trust-ca", str(ca), "--registry", registry, "--service", "lwm2m")
    assert trusted.exit_code == 0, trusted.output
    row = json.loads(trusted.output)
    assert row["name"] == "line CA" and row["service"] == "lwm2m" and row["status"] == "ACTIVE"
    again = run_cli("server", "trust-ca", str(ca), "--registry", registry, "--service", "lwm2m")
    assert again.exit_code == 1 and "Error SERVER-8004" in again.output
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(
        (home / "server.pem").read_bytes().split(b"-----END CERTIFICATE-----")[0]
        + b"-----END CERTIFICATE-----\n"
    )
    not_ca = run_cli("server", "trust-ca", str(leaf), "--registry", registry)
    assert not_ca.exit_code == 1 and "Error SERVER-8001" in not_ca.output and "Hint:" in not_ca.output
    listed = [
        json.loads(line) for line in run_cli("server", "trusted", "--registry", registry).output.splitlines()
    ]
    assert [r["id"] for r in listed] == [row["id"]]
    assert run_cli("server", "untrust", row["id"], "--registry", registry).exit_code == 0
    assert run_cli("server", "trusted", "--registry", registry).output == ""
    with Registry.open(registry) as opened:
        opened.psk.sealing_key()  # published by init


def test_revoke_and_list(tmp_path: Path) -> None:
    """revoke takes exactly one of endpoint/certificate/fingerprint; revocations lists them."""
    registry = str(tmp_path / "r.sqlite")
    assert (
        run_cli(
            "server", "revoke", "--registry", registry, "--endpoint", "dev-1", "--reason", "lost"
        ).exit_code
        == 0
    )
    assert run_cli("server", "revoke", "--registry", registry, "--fingerprint", "ab" * 32).exit_code == 0
    assert run_cli("server", "revoke", "--registry", registry).exit_code == 2
    rows = [
        json.loads(line)
        for line in run_cli("server", "revocations", "--registry", registry).output.splitlines()
    ]
    assert [(r["endpoint"], r["fingerprint"], r["reason"]) for r in rows] == [
        ("dev-1", None, "lost"),
        (None, "ab" * 32, ""),
    ]


@pytest.mark.integration
def test_run_serves_until_sigterm(tmp_path: Path) -> None:
    """run prints a ready line with the bound URIs, serves, and stops cleanly on SIGTERM."""
    home, registry, ready = tmp_path / "home", str(tmp_path / "r.sqlite"), tmp_path / "ready.json"
    assert run_cli("server", "init", "--server-home", str(home), "--registry", registry).exit_code == 0
    command = [
        sys.executable,
        "-m",
        "provkit.cli",
        "server",
        "run",
        "--server-home",
        str(home),
        "--registry",
        registry,
        "--bootstrap-port",
        "0",
        "--lwm2m-port",
        "0",
        "--http-port",
        "0",
        "--ready-file",
        str(ready),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        line = json.loads(ready.read_text())
        assert line["event"] == "ready" and line["lwm2m"].startswith("coaps://127.0.0.1:")
        assert line["http"].startswith("http://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "stopped"
