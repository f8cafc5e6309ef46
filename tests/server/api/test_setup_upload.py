"""``provkit setup --upload-ca URL``: the factory CA becomes trusted by the self-hosted server."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.crypto import x509
from provkit.registry import Service
from support.cli import json_status, make_fcu_home, run_cli
from support.dmapi import RunningApi

pytestmark = pytest.mark.integration


def test_setup_uploads_the_factory_ca(sqlite_api: RunningApi, tmp_path: Path) -> None:
    """setup makes the CA and uploads it; a second upload is refused; an existing CA uploads for lwm2m too."""
    api = sqlite_api
    home = make_fcu_home(tmp_path, setup=False)
    result = run_cli("--home-dir", str(home), "setup", "--upload-ca", api.url, "--api-key", api.admin_key)
    assert result.exit_code == 0, result.output
    status = json_status(result.stdout)
    assert status["status"] == 0 and status["uploaded"]["service"] == "bootstrap"
    ca = x509.load_certificate((home / "keystore" / "fcu.crt").read_bytes())
    assert x509.certificate_der(ca) in api.registry.trust.active(Service.BOOTSTRAP)
    assert api.registry.trust.get(status["uploaded"]["id"]).name == x509.common_name(ca)

    again = run_cli("--home-dir", str(home), "setup", "--upload-ca", api.url, "--api-key", api.admin_key)
    assert again.exit_code == 1 and "Error DEVELOPER-6005" in again.stderr and "already" in again.stderr
    assert "the factory CA exists already; uploading it" in again.stderr

    developer = run_cli(
        "--home-dir", str(home), "setup", "--upload-ca", api.url, "--api-key", api.developer_key
    )
    assert developer.exit_code == 1
    assert "Error DEVELOPER-6004" in developer.stderr and "HTTP 403" in developer.stderr

    lwm2m = run_cli(
        "--home-dir", str(home), "setup", "--upload-ca", api.url, "--upload-service", "lwm2m",
        "--api-key", api.admin_key,
    )  # fmt: skip
    assert lwm2m.exit_code == 0, lwm2m.output
    assert json_status(lwm2m.stdout)["uploaded"]["name"] == f"{x509.common_name(ca)} (lwm2m)"
    assert x509.certificate_der(ca) in api.registry.trust.active(Service.LWM2M)
