"""``provkit device farm`` as a real subprocess: N agents, each provisioned over TCP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provkit.codes import FccStatus
from provkit.transport.links import TcpLink
from provkit.wire.response import decode_response
from support.bundles import device_bundle

FARM = (sys.executable, "-m", "provkit.cli", "device", "farm")


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.integration
def test_farm_serves_every_device_and_stops_on_sigterm(tmp_path: Path) -> None:
    """Three agents on ephemeral ports each provision a device; SIGTERM stops them all."""
    ports_file = tmp_path / "farm.json"
    proc = subprocess.Popen(
        [*FARM, "--count", "3", "--storage", str(tmp_path / "stores"), "--ports-file", str(ports_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        farm = _wait_for(ports_file, proc)
        ports = farm["ports"]
        assert isinstance(ports, list) and len(set(ports)) == 3
        for index, port in enumerate(ports):
            with TcpLink(str(farm["host"]), int(port)) as link:
                reply = link.exchange(device_bundle(f"ep-farm-{index}"), timeout_s=60)
            assert decode_response(reply).return_status == FccStatus.SUCCESS
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.count("device ") == 3
    assert "farm stopped after 3 messages" in err
    assert len(list((tmp_path / "stores").iterdir())) >= 3
