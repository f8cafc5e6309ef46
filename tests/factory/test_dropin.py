"""A factory tool written against Arm's FCU runs on provkit with only its import changed.

The tool below uses nothing but the FCU API as Arm documents it (``fcu.FactoryToolApi``
with its defaults from ``FCU_HOME_DIR``, keyword arguments by their documented names, the
``status`` / ``errors`` / ``warnings`` / ``code`` / ``message`` attributes) and its own
transport written from the documented framing. It runs as a separate process against
``provkit device serve``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provkit.factory.home import init_home, write_demo_server_cas
from support.serve import served_device

pytestmark = pytest.mark.integration

FACTORY_TOOL = '''
import hashlib, json, socket, struct, sys

import provkit.factory as fcu  # the only line changed: was "import fcu"


def write_to_device(ip, port, config_data):
    """FT -> FTC: token, size, CBOR, SHA-256; FTC -> FT: token, status, size, CBOR, SHA-256."""
    with socket.create_connection((ip, port), timeout=30) as sock:
        sock.sendall(b"mbedprov" + struct.pack("<I", len(config_data)) + config_data
                     + hashlib.sha256(config_data).digest())
        stream = sock.makefile("rb")
        token, status = stream.read(8), struct.unpack("<I", stream.read(4))[0]
        assert token == b"mbedprov" and status == 0, (token, status)
        size = struct.unpack("<I", stream.read(4))[0]
        message, digest = stream.read(size), stream.read(32)
        assert hashlib.sha256(message).digest() == digest
        return message


ip, port, endpoint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
factory_tool_api = fcu.FactoryToolApi()
setup_status = factory_tool_api.setup_factory_configurator_utility(override_existing_ca=False)
again = factory_tool_api.setup_factory_configurator_utility(override_existing_ca=False)
ready = factory_tool_api.get_setup_status()
request = factory_tool_api.prepare_device_configuration(
    endpoint_name=endpoint, serial_number="SN-" + endpoint, device_keys_location=None
)
response = write_to_device(ip, port, request.config_data)
status = factory_tool_api.verify_device_response(endpoint_name=endpoint, device_response=response)
print(json.dumps({
    "setup": [setup_status.status, [(e.code, e.message) for e in setup_status.errors]],
    "again": [again.status, [(e.code, e.message) for e in again.errors]],
    "ready": ready.status,
    "prepare_warnings": [(w.code, w.message) for w in request.warnings],
    "device": [status.status, status.message, [(e.code, e.message) for e in status.errors],
               [(w.code, w.message) for w in status.warnings]],
}))
'''


def test_fcu_factory_tool_runs_with_only_its_import_changed(tmp_path: Path) -> None:
    """Setup, a refused second setup (290 in the status), prepare, write and verify all work."""
    home = tmp_path / "fcu-home"
    init_home(home)
    write_demo_server_cas(home / "resources")
    tool = tmp_path / "my_factory_tool.py"
    tool.write_text(FACTORY_TOOL)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FCU_", "PROVKIT_CA"))}
    env["FCU_HOME_DIR"] = str(home)  # the FCU's own way of finding its home
    with served_device(tmp_path / "device.db") as (ip, port):
        run = subprocess.run(
            [sys.executable, str(tool), ip, str(port), "ft-dev-1"],
            capture_output=True, text=True, check=False, timeout=120, env=env, cwd=tmp_path,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["setup"] == [0, []]
    assert result["again"][0] == 290 and result["again"][1][0][0] == 290
    assert result["ready"] == 0
    device_status, message, errors, warnings = result["device"]
    assert (device_status, message, errors) == (0, "The Factory process succeeded", [])
    assert [0, "Item not set:mbed.UpdateAuthCert"] in warnings
    assert (home / "keystore" / "fcu_key.pem").exists() and (home / "keystore" / "fcu.crt").exists()
