"""``provkit developer …`` end to end: the real Device Management API (``provkit server``'s, uvicorn on
127.0.0.1) and a real device agent on TCP. A fake service remains only where the real one cannot
be made to answer as needed (a portal-shaped, self-issued developer certificate)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from developer.cfiles import DevCredentials, UpdateResources
from developer.fakecloud import CloudState, fake_cloud
from provkit.cli.developer_cmds import developer_group
from provkit.developer import STORED_ITEMS, Store
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.handlers import device_handlers
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import SqliteStorage
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import FCC_TOKEN
from support.dmapi import RunningApi, running_api
from support.pty import serial_agent

pytestmark = pytest.mark.integration

TIME_WARNINGS = {"Item not set:mbed.Timezone", "Item not set:mbed.UTCOffset"}


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[RunningApi]:
    with running_api(str(tmp_path / "dm-registry.sqlite")) as served:
        yield served


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[Kcm, FactoryConfiguratorClient, str]]:
    # As `provkit device serve --atomic-bundles`: a refused bundle leaves the device as it was.
    kcm = Kcm(SqliteStorage(tmp_path / "device.db"))
    fcc = FactoryConfiguratorClient(kcm, atomic_bundles=True)
    agent = DeviceAgent(device_handlers(fcc), read_timeout_s=10.0)
    with TcpAgentServer(agent, "127.0.0.1", 0) as server:
        ip, port = server.address
        yield kcm, fcc, f"{ip}:{port}"


def _run(home: Path, cloud: RunningApi | CloudState | None, *args: str) -> tuple[int, str, str]:
    base = ["--home", str(home)] + (["--api-host", cloud.url] if cloud else [])
    result = CliRunner().invoke(developer_group, [*base, *args])
    return result.exit_code, result.stdout, result.stderr


def test_provision_pelion_end_to_end(tmp_path, cloud, device):
    """save-api-key, provision-pelion -c -p over TCP: 15 items stored, device verification passes."""
    kcm, fcc, address = device
    home = tmp_path / "home"
    resources = tmp_path / "update_default_resources.c"
    resources.write_text(UpdateResources().c_text_v2())
    code, out, err = _run(home, cloud, "save-api-key", cloud.developer_key)
    assert code == 0, err
    assert "API key saved" in out
    code, out, err = _run(
        home, cloud, "provision-pelion", "dev1", "upd1", "-c", "-p", str(resources), "--tcp", address
    )
    assert code == 0, out + err
    result = json.loads(out)
    assert result["items"] == list(STORED_ITEMS)
    assert result["deviceResponse"]["status"] == 0
    assert set(result["deviceResponse"]["warnings"]) <= TIME_WARNINGS
    stored = {item.name for item in kcm.list_items() if item.name.startswith("mbed.")}
    assert stored == set(STORED_ITEMS)
    verified = fcc.verify_device_configured()
    assert verified.ok and set(verified.warnings) <= TIME_WARNINGS

    code, out, err = _run(home, None, "get-pelion-status", "--tcp", address)
    assert code == 0, err
    assert json.loads(out)["deviceResponse"]["status"] == 0

    code, out, _ = _run(home, None, "list-certificates")
    assert [(r["name"], r["kind"]) for r in json.loads(out)] == [("dev1", "developer"), ("upd1", "update")]

    # Re-provisioning reads the stored names (no service, no C file); the device's FCC refuses
    # to overwrite factory items (17, Data already exists) and keeps the first set intact.
    code, out, err = _run(home, None, "provision-pelion", "dev1", "upd1", "--tcp", address)
    assert code == 1 and "Error FCC-17" in err
    assert json.loads(out)["deviceResponse"]["status"] == 17
    assert fcc.verify_device_configured().ok


def test_status_of_an_empty_device_fails_with_the_reason(tmp_path, device):
    """get-pelion-status on an unprovisioned device prints the answer and exits 1."""
    _, _, address = device
    code, out, err = _run(tmp_path, None, "get-pelion-status", "--tcp", address)
    assert code == 1
    assert "mbed.UseBootstrap" in json.loads(out)["deviceResponse"]["message"]
    assert "the device refused" in err


def test_invalid_key_and_unreachable_service(tmp_path, cloud):
    """A rejected key exits 1 with code 6004; nothing is saved."""
    code, _, err = _run(tmp_path, cloud, "save-api-key", "ak_wrong")
    assert code == 1
    assert err.startswith("Error DEVELOPER-6004: the API key was rejected (HTTP 401): missing or invalid")
    code, _, err = _run(tmp_path, cloud, "create-certificate", "dev1")
    assert code == 1 and "no API key is saved" in err


def test_file_transport_and_usage_errors(tmp_path):
    """--file writes one request frame; a missing or double transport is a usage error."""
    home = tmp_path / "home"
    resources = tmp_path / "u.c"
    resources.write_text(UpdateResources().c_text_v1())
    code, _, err = _run(home, None, "import-update-certificate", "upd", str(resources))
    assert code == 0, err
    Store.open("team", home).add_certificate("dev", DevCredentials().values)
    frame = tmp_path / "req.bin"
    code, out, err = _run(home, None, "provision-pelion", "dev", "upd", "--file", str(frame))
    assert code == 0, err
    assert json.loads(out)["file"] == str(frame)
    assert frame.read_bytes().startswith(FCC_TOKEN)
    code, _, err = _run(home, None, "provision-pelion", "dev", "upd")
    assert code == 2 and "exactly one of --tcp" in err
    code, out, err = _run(home, None, "provision-pelion", "dev", "upd", "--link", f"file:{frame}")
    assert code == 0, err
    assert json.loads(out)["file"] == str(frame)
    code, _, err = _run(home, None, "provision-pelion", "dev", "upd", "--tcp", "nohost")
    assert code == 2 and "has no port" in err
    code, _, err = _run(home, None, "provision-pelion", "upd", "dev", "--file", str(frame))
    assert code == 1 and "'dev' is a developer certificate, not an update certificate" in err


def test_delete_certificate_locally_and_in_the_service(tmp_path, cloud):
    """delete-certificate removes the team store copy and the service's certificate."""
    home = tmp_path / "home"
    assert _run(home, cloud, "save-api-key", cloud.developer_key)[0] == 0
    assert _run(home, cloud, "create-certificate", "dev1")[0] == 0
    code, out, err = _run(home, cloud, "delete-certificate", "dev1")
    assert code == 0, err
    assert "team store and Device Management" in out
    assert cloud.registry.developer_certificates.list() == []
    code, out, _ = _run(home, cloud, "list-certificates", "--cloud")
    # only the server's developer CA is left: a trusted certificate, listed as the service has it
    assert [(r["name"], r["kind"], r["local"]) for r in json.loads(out)] == [
        ("provkit developer CA", "cloud", False)
    ]


def test_bad_update_file_is_refused_before_anything_is_created(tmp_path, cloud):
    """-c -p with a malformed, missing or certificate-less C file: 6003, no POST, nothing saved."""
    home = tmp_path / "home"
    assert _run(home, cloud, "save-api-key", cloud.developer_key)[0] == 0
    bad = tmp_path / "bad.c"
    bad.write_text("const uint8_t arm_uc_vendor_id[] = { 0x1, 0x2,\nconst x;")
    junk_cert = tmp_path / "junk.c"
    junk_cert.write_text(
        UpdateResources()
        .c_text_v2()
        .replace("arm_uc_default_certificate[] = {", "arm_uc_default_certificate[] = { 1,")
    )
    for path, message in (
        (bad, "Error DEVELOPER-6003: line 2: expected a value, found 'const'"),
        (tmp_path / "missing.c", "Error DEVELOPER-6003: cannot read"),
        (junk_cert, "Error DEVELOPER-6003: unusable credentials: arm_uc_default_certificate"),
    ):
        code, _, err = _run(
            home, cloud, "provision-pelion", "dev1", "upd1", "-c", "-p", str(path), "--file", "x"
        )
        assert code == 1 and err.startswith(message), err
    code, _, err = _run(home, cloud, "provision-pelion", "dev1", "upd-none", "-c", "--file", "x")
    assert code == 1 and "no update certificate named 'upd-none'" in err and "-p" in err
    # no POST reached the service: it holds no developer certificate
    assert cloud.registry.developer_certificates.list() == []
    assert Store.open("team", home).certificate_names() == []
    assert not (tmp_path / "x").exists()


def test_existing_certificate_is_fetched_by_name(tmp_path, cloud, device):
    """Without -c, a name missing from the team store is fetched from the service (as mbl-cli)."""
    kcm, _, address = device
    home = tmp_path / "home"
    resources = tmp_path / "update_default_resources.c"
    resources.write_text(UpdateResources().c_text_v1())
    code, _, err = _run(
        home, cloud, "provision-pelion", "teammate", "upd", "-p", str(resources), "--file", "x"
    )
    assert code == 1 and "no developer certificate named 'teammate'" in err and "save an API key" in err
    assert _run(home, cloud, "save-api-key", cloud.developer_key)[0] == 0
    code, _, err = _run(home, cloud, "provision-pelion", "nobody", "upd", "-p", str(resources), "--file", "x")
    assert code == 1 and "no certificate named 'nobody' in the team store or in Device Management" in err
    other = tmp_path / "other-home"  # a team member creates it with their own store
    assert _run(other, cloud, "save-api-key", cloud.developer_key)[0] == 0
    assert _run(other, cloud, "create-certificate", "teammate")[0] == 0
    code, out, err = _run(
        home, cloud, "provision-pelion", "teammate", "upd", "-p", str(resources), "--tcp", address
    )
    assert code == 0, err
    assert json.loads(out)["deviceResponse"]["status"] == 0
    team = Store.open("team", home)
    assert team.certificate_names() == ["teammate", "upd"]
    assert team.cloud_id("teammate") == Store.open("team", other).cloud_id("teammate")
    assert {i.name for i in kcm.list_items() if i.name.startswith("mbed.")} == set(STORED_ITEMS)


def test_portal_shaped_certificate_provisions_with_self_signed_warning(tmp_path, device):
    """A self-issued developer certificate (as the portal makes them) verifies, with FCC's warning.

    The fake service stays here: provkit's own server signs developer certificates with its
    developer CA and cannot answer with a portal-shaped, self-issued one.
    """
    _, fcc, address = device
    home = tmp_path / "home"
    creds = DevCredentials(portal_shape=True)
    with fake_cloud(CloudState(credentials_text=lambda name: creds.c_text())) as state:
        resources = tmp_path / "u.c"
        resources.write_text(UpdateResources().c_text_v2())
        assert _run(home, state, "save-api-key", "ak_good")[0] == 0
        code, out, err = _run(
            home, state, "provision-pelion", "dev", "upd", "-c", "-p", str(resources), "--tcp", address
        )
    assert code == 0, err
    warnings = json.loads(out)["deviceResponse"]["warnings"]
    assert "Certificate is self signed:mbed.BootstrapDeviceCert" in warnings
    assert fcc.verify_device_configured().ok


def test_provision_over_serial_to_a_device_serve_process(tmp_path, cloud):
    """provision-pelion --serial to `provkit device serve --serial` (a real process) over a pty cable."""
    home = tmp_path / "home"
    db = tmp_path / "serial-device.sqlite"
    resources = tmp_path / "u.c"
    resources.write_text(UpdateResources().c_text_v2())
    assert _run(home, cloud, "save-api-key", cloud.developer_key)[0] == 0
    with serial_agent(str(db)) as agent:
        code, out, err = _run(
            home, cloud, "provision-pelion", "dev", "upd", "-c", "-p", str(resources),
            "--serial", agent.cable.host_path, "--timeout", "60",
        )  # fmt: skip
        assert code == 0, out + err
        assert json.loads(out)["deviceResponse"]["status"] == 0
    assert "stopped after 1 message(s)" in agent.output
    device = [sys.executable, "-m", "provkit.cli", "device"]
    verified = subprocess.run([*device, "verify", "--storage", str(db)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_refused_bundle_leaves_the_sqlite_device_untouched(tmp_path, device):
    """An atomic device refuses one bad item (endpoint is not the certificate's CN): none of the 15 stays."""
    kcm, _, address = device
    home = tmp_path / "home"
    resources = tmp_path / "u.c"
    resources.write_text(UpdateResources().c_text_v2())
    creds = DevCredentials()
    team = Store.open("team", home)
    team.add_certificate("dev", creds.values | {"MBED_CLOUD_DEV_BOOTSTRAP_ENDPOINT_NAME": b"someone-else"})
    code, out, err = _run(
        home, None, "provision-pelion", "dev", "upd", "-p", str(resources), "--tcp", address
    )
    assert code == 1 and "the device refused" in err
    assert "mbed.BootstrapDeviceCert" in json.loads(out)["deviceResponse"]["message"]
    assert [i.name for i in kcm.list_items() if i.name.startswith("mbed.")] == []
    team.add_certificate("dev", creds.values)
    code, out, err = _run(home, None, "provision-pelion", "dev", "upd", "--tcp", address)
    assert code == 0, err
    assert {i.name for i in kcm.list_items() if i.name.startswith("mbed.")} == set(STORED_ITEMS)


def test_unreachable_device_after_create_says_how_to_retry(tmp_path, cloud):
    """-c succeeded, then the device is not there: the error tells to retry without -c/-p."""
    home = tmp_path / "home"
    resources = tmp_path / "u.c"
    resources.write_text(UpdateResources().c_text_v2())
    assert _run(home, cloud, "save-api-key", cloud.developer_key)[0] == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    code, _, err = _run(
        home, cloud, "provision-pelion", "dev1", "upd1", "-c", "-p", str(resources), "--tcp", closed
    )
    assert code == 1 and err.startswith("Error FT-1021:")
    assert "retry with: provision-pelion dev1 upd1 (no -c/-p)" in err
    assert Store.open("team", home).certificate_names() == ["dev1", "upd1"]


def test_store_written_by_mbl_cli_provisions(tmp_path, device):
    """A team store in mbl-cli's own encoding (MEMORY_TOTAL_KB as ASCII "0", umask modes) provisions."""
    kcm, _, address = device
    home = tmp_path / "home"
    team_dir = tmp_path / "mbl-team"
    (home).mkdir()
    (home / ".mbl-stores.json").write_text(
        json.dumps({"user": str(tmp_path / "mbl-user"), "team": str(team_dir)})
    )
    dev = DevCredentials(memory_kb=0).values | {"MBED_CLOUD_DEV_MEMORY_TOTAL_KB": b"0"}
    update = UpdateResources().values
    config: dict[str, object] = {"location": str(team_dir), "api_key": "", "dev_certs": {}}
    for name, values in (("dev", dev), ("upd", update)):
        (team_dir / name).mkdir(parents=True)
        for var, data in values.items():
            (team_dir / name / f"{var}.bin").write_bytes(data)
        config["dev_certs"][name] = [str(team_dir / name / f"{var}.bin") for var in values]  # type: ignore[index]
    (team_dir / "config.json").write_text(json.dumps(config))
    code, out, err = _run(home, None, "provision-pelion", "dev", "upd", "--tcp", address)
    assert code == 0, err
    assert json.loads(out)["deviceResponse"]["status"] == 0
    assert kcm.item_get("mbed.MemoryTotalKB", ItemType.CONFIG) == b"\0\0\0\0"


def test_import_credentials_provisions_without_any_service(tmp_path, device):
    """A downloaded mbed_cloud_dev_credentials.c goes into the team store and provisions; no API host."""
    kcm, _, address = device
    home = tmp_path / "home"
    creds = DevCredentials(manufacturer="Acme; Ltd")
    credentials_c = tmp_path / "mbed_cloud_dev_credentials.c"
    text = creds.c_text().replace("MBED_CLOUD_DEV_MEMORY_TOTAL_KB = 0;", "MBED_CLOUD_DEV_MEMORY_TOTAL_KB;")
    assert "MBED_CLOUD_DEV_MEMORY_TOTAL_KB;" in text  # without a value: 0, as in C
    credentials_c.write_text(text)
    resources = tmp_path / "update_default_resources.c"
    resources.write_text(UpdateResources().c_text_v2())
    code, out, err = _run(home, None, "import-credentials", str(credentials_c))
    assert code == 0, err
    assert f"developer certificate {creds.endpoint!r} saved: 12 files" in out
    code, _, err = _run(home, None, "import-credentials", str(credentials_c), "--name", creds.endpoint)
    assert code == 1 and "Error DEVELOPER-6001: the team store already has a certificate named" in err
    code, out, err = _run(
        home, None, "provision-pelion", creds.endpoint, "upd", "-p", str(resources), "--tcp", address
    )
    assert code == 0, err
    assert json.loads(out)["deviceResponse"]["status"] == 0
    assert kcm.item_get("mbed.Manufacturer", ItemType.CONFIG) == b"Acme; Ltd"
    assert kcm.item_get("mbed.MemoryTotalKB", ItemType.CONFIG) == b"\0\0\0\0"
    assert "Warning" not in err


def test_import_credentials_refuses_unusable_files(tmp_path):
    """A missing file, a placeholder example file and a bad name are coded errors; nothing is saved."""
    home = tmp_path / "home"
    code, _, err = _run(home, None, "import-credentials", str(tmp_path / "absent.c"))
    assert code == 1 and "Error DEVELOPER-6003: cannot read" in err
    example = tmp_path / "example.c"
    text = DevCredentials().c_text()
    start = text.index("const uint8_t MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE[]")
    end = text.index("};", start) + 2
    example.write_text(
        text[:start] + "const uint8_t MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE[] = { 0x0 };" + text[end:]
    )
    code, _, err = _run(home, None, "import-credentials", str(example))
    assert code == 1
    assert "Error DEVELOPER-6003: MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE is a placeholder" in err
    good = tmp_path / "good.c"
    good.write_text(text)
    code, _, err = _run(home, None, "import-credentials", str(good), "--name", "../x")
    assert code == 1 and "Error DEVELOPER-6001: invalid certificate name" in err
    assert Store.open("team", home).certificate_names() == []


def test_truncated_manufacturer_from_mbl_cli_is_warned_on_provisioning(tmp_path, device):
    """A set mbl-cli saved with "Acme (UK; Ltd)" cut to "Acme(UK" provisions, with a warning on stderr."""
    _, _, address = device
    home = tmp_path / "home"
    team = Store.open("team", home)
    team.add_certificate(
        "dev",
        DevCredentials().values
        | {"MBED_CLOUD_DEV_MEMORY_TOTAL_KB": b"0", "MBED_CLOUD_DEV_MANUFACTURER": b"Acme(UK"},
    )
    team.add_certificate("upd", UpdateResources().values)
    code, out, err = _run(home, None, "provision-pelion", "dev", "upd", "--tcp", address)
    assert code == 0, err
    assert json.loads(out)["deviceResponse"]["status"] == 0
    assert "Warning: MBED_CLOUD_DEV_MANUFACTURER is 'Acme(UK', which looks truncated" in err
