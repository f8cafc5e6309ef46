"""The installed commands end to end: 'provkit device serve' and 'provkit inject' as separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provkit.factory.home import init_home, write_demo_server_cas

pytestmark = pytest.mark.integration

PROVKIT = [sys.executable, "-m", "provkit.cli"]
READY = "Factory Client IP Address and Port : "


@pytest.fixture
def served_device(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A 'provkit device serve' process on 127.0.0.1 (free port) with SQLite storage."""
    proc = subprocess.Popen(
        [
            *PROVKIT,
            "device",
            "serve",
            "--ip",
            "127.0.0.1",
            "--port",
            "0",
            "--storage",
            str(tmp_path / "dev.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(READY), line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        ip, port = line.removeprefix(READY).strip().rsplit(":", 1)
        yield ip, int(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("mode", "bootstrap"), [("by_tool", "true"), ("by_device", "false")])
def test_inject_process_against_served_device(
    tmp_path: Path, served_device: tuple[str, int], mode: str, bootstrap: str
) -> None:
    """setup and inject run as processes against a served device and report success in JSON."""
    home = tmp_path / "fcu"
    config = init_home(home).config_file
    write_demo_server_cas(home / "resources")
    text = config.read_text().replace(
        "device-key-generation-mode: by_tool", f"device-key-generation-mode: {mode}"
    )
    config.write_text(text.replace("use-bootstrap: true", f"use-bootstrap: {bootstrap}"))
    setup = subprocess.run(
        [*PROVKIT, "--home-dir", str(home), "setup"], capture_output=True, text=True, check=False
    )
    assert setup.returncode == 0, setup.stderr
    ip, port = served_device
    inject = subprocess.run(
        [*PROVKIT, "--home-dir", str(home), "inject", "--endpoint-name", "proc-1", "--serial-number", "SN",
         "tcp", "--ip", ip, "--port", str(port), "-t", "10"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert inject.returncode == 0, inject.stdout + inject.stderr
    body = json.loads(inject.stdout.strip().splitlines()[-1])
    assert body["status"] == 0 and body["deviceResponse"]["status"] == 0
