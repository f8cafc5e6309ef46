"""Agents, farms and SMP servers listen on loopback unless remote access is allowed explicitly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.cli.main import cli
from provkit.errors import RemoteBindRefused
from provkit.line.farm import DeviceFarm
from provkit.line.smp_farm import SmpDeviceFarm
from provkit.transport.bind import check_bind_address, is_loopback
from provkit.transport.links import TcpLink
from provkit.transport.servers import TcpAgentServer
from provkit.transport.smp_server import SmpUdpServer

from .conftest import make_agent

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("192.0.2.10", False),
        ("no-such-host.invalid", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    """Loopback means every address the name stands for is loopback; all-interfaces never is."""
    assert is_loopback(host) is loopback


def test_a_non_loopback_bind_is_refused_with_1000_naming_the_risk() -> None:
    """The error says why and how to do it anyway."""
    with pytest.raises(RemoteBindRefused) as info:
        check_bind_address("0.0.0.0", allow_remote=False)
    assert info.value.code == 1000
    assert "refusing to listen on 0.0.0.0" in info.value.message
    assert "provision this device or disable its factory flow" in info.value.message
    assert "`allow_remote`" in (info.value.hint or "")
    check_bind_address("0.0.0.0", allow_remote=True)
    check_bind_address("127.0.0.1", allow_remote=False)


def test_every_listener_refuses_all_interfaces_by_default() -> None:
    """The TCP agent, the FCC farm, the SMP UDP server and the SMP farm all refuse 0.0.0.0."""
    with pytest.raises(RemoteBindRefused):
        TcpAgentServer(make_agent(), "0.0.0.0", 0)
    with pytest.raises(RemoteBindRefused):
        DeviceFarm(1, host="0.0.0.0")
    with pytest.raises(RemoteBindRefused):
        SmpUdpServer(lambda message: message, "0.0.0.0", 0)
    with pytest.raises(RemoteBindRefused):
        SmpDeviceFarm(1, host="0.0.0.0")


def test_allow_remote_listens_on_all_interfaces() -> None:
    """With allow_remote the agent binds 0.0.0.0 and serves (here reached over loopback)."""
    with TcpAgentServer(make_agent(read_timeout_s=5.0), "0.0.0.0", 0, allow_remote=True) as server:
        assert server.address[0] == "0.0.0.0"
        with TcpLink("127.0.0.1", server.address[1]) as link:
            assert link.exchange(b"hello", timeout_s=10) == b"HELLO"


def test_device_serve_refuses_0_0_0_0_before_creating_storage(tmp_path: Path) -> None:
    """provkit device serve --ip 0.0.0.0 exits 1 with the reason; no storage file is made."""
    db = tmp_path / "dev.db"
    serve = ["device", "serve", "--ip", "0.0.0.0", "--port", "0", "--storage", str(db)]
    result = CliRunner().invoke(cli, serve)
    assert result.exit_code == 1
    assert "Error FT-1000: General error on factory tool: refusing to listen on 0.0.0.0" in result.output
    assert "Hint: listen on 127.0.0.1" in result.output
    assert list(tmp_path.iterdir()) == []
    farm = CliRunner().invoke(cli, ["device", "farm", "--count", "1", "--ip", "0.0.0.0"])
    assert farm.exit_code == 1 and "refusing to listen on 0.0.0.0" in farm.output


def test_device_serve_with_allow_remote_listens(tmp_path: Path) -> None:
    """--allow-remote lets the agent listen on every interface; it prints that address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "provkit.cli", "device", "serve", "--ip", "0.0.0.0", "--allow-remote",
         "--port", "0", "--once"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("Factory Client IP Address and Port : 0.0.0.0:"), line
        port = int(line.rsplit(":", 1)[1])
        with TcpLink("127.0.0.1", port) as link:
            link.exchange(b"\xa0", timeout_s=30)  # an empty bundle: FCC answers it, the session ends
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
