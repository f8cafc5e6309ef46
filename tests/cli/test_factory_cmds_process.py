"""The installed commands end to end: 'provkit device serve' and 'provkit inject' as separate processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from factory.test_device_keys import write_keys
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import open_storage
from provkit.factory.home import init_home, write_demo_server_cas
from support.serve import PROVKIT, served_device

pytestmark = pytest.mark.integration


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A 'provkit device serve' process on 127.0.0.1 (free port) with SQLite storage."""
    with served_device(tmp_path / "dev.db") as address:
        yield address


def _has_device_cert(db: Path, name: str) -> bool:
    """Whether the device's storage holds the certificate chain ``name``."""
    storage = open_storage(db)
    try:
        return Kcm(storage).item_exists(name, ItemType.CERTIFICATE)
    finally:
        storage.close()


@pytest.mark.parametrize("bootstrap", ["true", "false"])
@pytest.mark.parametrize("mode", ["by_tool", "by_device", "externally_supplied"])
def test_inject_process_against_served_device(
    tmp_path: Path, device: tuple[str, int], mode: str, bootstrap: str
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
    keys: list[str] = []
    if mode == "externally_supplied":
        prefix = "Bootstrap" if bootstrap == "true" else "LwM2M"
        ou = None if bootstrap == "true" else "0123456789abcdef0123456789abcdef"  # the template's aid
        write_keys(tmp_path / "keys", prefix=prefix, cn="proc-1", ou=ou, chain=True)
        keys = ["--device-keys-location", str(tmp_path / "keys")]
    ip, port = device
    inject = subprocess.run(
        [*PROVKIT, "--home-dir", str(home), "inject", "--endpoint-name", "proc-1", "--serial-number", "SN",
         *keys, "tcp", "--ip", ip, "--port", str(port), "-t", "10"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert inject.returncode == 0, inject.stdout + inject.stderr
    body = json.loads(inject.stdout.strip().splitlines()[-1])
    assert body["status"] == 0 and body["deviceResponse"]["status"] == 0
    active, other = ("Bootstrap", "LwM2M") if bootstrap == "true" else ("LwM2M", "Bootstrap")
    assert _has_device_cert(tmp_path / "dev.db", f"mbed.{active}DeviceCert")
    assert not _has_device_cert(tmp_path / "dev.db", f"mbed.{other}DeviceCert")


@pytest.mark.parametrize(
    ("flag", "info", "debug"), [((), False, False), (("-v",), True, False), (("-vv",), True, True)]
)
def test_verbosity_and_log_file(
    tmp_path: Path, device: tuple[str, int], flag: tuple[str, ...], info: bool, debug: bool
) -> None:
    """-v logs INFO, -vv also DEBUG, to stderr and to --log-file; without -v neither is logged."""
    home = tmp_path / "fcu"
    init_home(home)
    write_demo_server_cas(home / "resources")
    assert (
        subprocess.run(
            [*PROVKIT, "--home-dir", str(home), "setup"], capture_output=True, check=False
        ).returncode
        == 0
    )
    log_file = tmp_path / "logs" / "run.log"
    ip, port = device
    inject = subprocess.run(
        [*PROVKIT, *flag, "--log-file", str(log_file), "--home-dir", str(home), "inject",
         "--endpoint-name", "log-1", "--serial-number", "SN", "tcp", "--ip", ip, "--port", str(port)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert inject.returncode == 0, inject.stdout + inject.stderr
    logged = log_file.read_text()
    for text in (logged, inject.stderr):
        assert ("INFO provkit.factory.api: prepared" in text) == info, text
        assert ("DEBUG provkit.factory.provision: sent" in text) == debug, text
