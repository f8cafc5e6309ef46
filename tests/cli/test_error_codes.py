"""Factory tool codes that only a failing environment produces, triggered through the real commands.

Each test provokes the failure for real (an unusable CA passphrase, a device that hangs up
the serial line) and checks the documented code, exit status 1 and a message that says
what went wrong and what to do.
"""

from __future__ import annotations

import os
import threading
import tty
from pathlib import Path

import pytest

from provkit.codes import FcuErrorCode, FtErrorCode
from provkit.errors import ConfigError
from provkit.factory import FactoryToolApi
from support.cli import json_status, make_fcu_home, run_cli

pytestmark = pytest.mark.integration


def test_passphrase_the_key_encryption_refuses_is_330(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CA passphrase OpenSSL cannot take (over 1023 bytes): 330 with the cause as hint, nothing written."""
    home = make_fcu_home(tmp_path, setup=False)
    monkeypatch.setenv("PROVKIT_CA_PASSPHRASE", "p" * 2000)
    result = run_cli("--home-dir", str(home), "setup")
    assert result.exit_code == 1
    assert json_status(result.output) == {
        "status": int(FcuErrorCode.PRIVATE_KEY_CREATE_FAILED),
        "message": FcuErrorCode.PRIVATE_KEY_CREATE_FAILED.template,
    }
    assert "Hint:" in result.output and "1023 bytes" in result.output  # the cause to fix
    assert not (home / "keystore" / "fcu_key.pem").exists()


def test_passphrase_that_is_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A passphrase of non-UTF-8 bytes from the environment encrypts the key and opens it again."""
    home = make_fcu_home(tmp_path, setup=False)
    monkeypatch.setenv("PROVKIT_CA_PASSPHRASE", b"\xff\xfe-secret".decode("utf-8", "surrogateescape"))
    assert run_cli("--home-dir", str(home), "setup").exit_code == 0
    out = tmp_path / "frame.bin"
    inject = (
        "--home-dir",
        str(home),
        "inject",
        "--endpoint-name",
        "pw-1",
        "--serial-number",
        "S",
        "to-file",
        str(out),
    )
    assert run_cli(*inject).exit_code == 0
    monkeypatch.setenv("PROVKIT_CA_PASSPHRASE", "other")
    result = run_cli(*inject)
    assert result.exit_code == 1 and json_status(result.output)["status"] == FcuErrorCode.CA_KEY_LOAD_FAILED


def test_unresolvable_home_is_190(tmp_path: Path) -> None:
    """A home that is a symlink loop: the API raises 190 naming it; setup and inject print it as JSON."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(ConfigError) as info:
        FactoryToolApi(home_dir=loop)
    assert info.value.code == FcuErrorCode.CONFIG_LOAD_FAILED and str(loop) in info.value.message
    for command in (("setup",), ("inject", "--endpoint-name", "e", "--serial-number", "s", "to-file", "x")):
        result = run_cli("--home-dir", str(loop), *command)
        assert result.exit_code == 1 and json_status(result.output)["status"] == 190, result.output


def test_setup_never_reports_success_for_a_ca_that_does_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit status 0 and status 0 only when the keystore written by setup loads back."""
    home = make_fcu_home(tmp_path, setup=False)
    monkeypatch.setenv("PROVKIT_CA_PASSPHRASE", "")  # an edge case: set, but empty
    result = run_cli("--home-dir", str(home), "setup")
    loads = FactoryToolApi(home_dir=home).get_setup_status().ok
    body = json_status(result.output)
    assert (result.exit_code == 0) == loads
    assert (body["status"] == 0) == loads
    if not loads:
        assert body["message"] != "Command executed successfully" and "setup -f" in result.output


def test_serial_device_hanging_up_is_1012(tmp_path: Path) -> None:
    """The device end of the serial line closing mid-exchange gives 1012 (serial read failed), exit 1."""
    home = make_fcu_home(tmp_path)
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)

    def device_hangs_up() -> None:
        # Read the whole request frame (token, length, body, SHA-256), so the tool's write has
        # drained and the hang-up meets it reading the response.
        frame = b""
        while len(frame) < 12 or len(frame) < 12 + int.from_bytes(frame[8:12], "little") + 32:
            frame += os.read(master, 65536)
        os.write(master, b"[INFO] fcc: bundle received, rebooting\r\n")
        os.close(master)

    device = threading.Thread(target=device_hangs_up, daemon=True)
    device.start()
    try:
        # The test keeps the slave open so the device's first read waits for the tool's request.
        result = run_cli(
            "--home-dir", str(home), "inject", "--endpoint-name", "hup-1", "--serial-number", "S",
            "serial", "--port", port, "-t", "20",
        )  # fmt: skip
    finally:
        device.join()
        os.close(slave)
    assert result.exit_code == 1, result.output
    body = json_status(result.output)
    assert body["status"] == FtErrorCode.SERIAL_READ_FAILED, body
    assert str(body["message"]).startswith(FtErrorCode.SERIAL_READ_FAILED.template)
    assert "Hint: the device closed or reset the serial line" in result.output
