"""The whole developer flow against ``provkit server``, with no cloud account.

An administrator creates an API key (``provkit server api-key create``); a developer saves
it and runs ``provkit developer provision-pelion -c -p`` against the server's Device
Management API, which issues a developer certificate under its developer CA; the virtual
device stores the bundle over TCP; then it connects as a device does at first boot:
bootstrap with the developer certificate, register with what the bootstrap server wrote.
The device directory shows it; deleting the developer certificate refuses it from then on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from developer.cfiles import UpdateResources
from provkit.cli.developer_cmds import developer_group
from provkit.cli.server_cmds import server_group
from provkit.developer import STORED_ITEMS
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.handlers import device_handlers
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import SqliteStorage
from provkit.errors import ConnectError
from provkit.server import ServerThread
from provkit.server.connect import connect_device
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer
from support.dmapi import call

from ..conftest import World, wait_for_trust

pytestmark = pytest.mark.integration


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[Kcm, str]]:
    """A virtual device (FCC over a SQLite KCM) serving the factory protocol on TCP."""
    kcm = Kcm(SqliteStorage(tmp_path / "device.db"))
    agent = DeviceAgent(device_handlers(FactoryConfiguratorClient(kcm)), read_timeout_s=10.0)
    with TcpAgentServer(agent, "127.0.0.1", 0) as served:
        ip, port = served.address
        yield kcm, f"{ip}:{port}"


def _developer(home: Path, api_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(developer_group, ["--home", str(home), "--api-host", api_url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_api_key_to_developer_certificate_to_device_to_first_connection(
    world: World, device: tuple[Kcm, str], tmp_path: Path
) -> None:
    """The developer flow end to end against the self-hosted server; the device registers."""
    kcm, address = device
    runner = CliRunner()
    created = runner.invoke(server_group, ["api-key", "create", "alice", "--registry", world.registry_url])
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip()
    resources = tmp_path / "update_default_resources.c"
    resources.write_text(UpdateResources().c_text_v2())
    home = tmp_path / "alice"
    with ServerThread(world.config(http_port=0)) as server:
        assert server.ports is not None and server.ports.http and server.ports.bootstrap
        api_url = f"http://127.0.0.1:{server.ports.http}"
        code, out, err = _developer(home, api_url, "save-api-key", key)
        assert code == 0 and "API key saved" in out, err
        code, out, err = _developer(
            home,
            api_url,
            "provision-pelion",
            "desk-dev",
            "desk-upd",
            "-c",
            "-p",
            str(resources),
            "--tcp",
            address,
        )
        assert code == 0, out + err
        result = json.loads(out)
        assert result["items"] == list(STORED_ITEMS) and result["deviceResponse"]["status"] == 0
        endpoint = result["endpointName"]
        stored_uri = kcm.item_get("mbed.BootstrapServerURI", ItemType.CONFIG).decode()
        assert stored_uri.startswith(f"coaps://127.0.0.1:{server.ports.bootstrap}?aid=")

        wait_for_trust(server, world)  # the developer CA was added when the API started
        connected = connect_device(kcm, timeout=10.0)
        assert connected.endpoint_name == endpoint and connected.bootstrapped
        assert connected.registration.location.startswith("/rd/")

        status, _, directory = call(
            api_url, "GET", f"/v3/devices?state__eq=registered&endpoint_name__eq={endpoint}", key=key
        )
        assert status == 200 and [d["id"] for d in directory["data"]] == [endpoint]
        assert directory["data"][0]["device_execution_mode"] == 1
        assert directory["data"][0]["bootstrapped_timestamp"] is not None

        code, out, err = _developer(home, api_url, "delete-certificate", "desk-dev")
        assert code == 0 and "Device Management" in out, err
        wait_for_trust(server, world)
        with pytest.raises(ConnectError) as refused:
            connect_device(kcm, timeout=10.0, force_bootstrap=True)
        assert refused.value.failure == "revoked"
