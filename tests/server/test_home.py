"""The server home: CAs, a server certificate naming its addresses, keys only the owner reads."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509 as cx509

from provkit.crypto import x509
from provkit.errors import ServerSetupError
from provkit.server import init_home, load_home


def test_init_writes_a_loadable_home_with_san(tmp_path: Path) -> None:
    """The server certificate names every address (IP and DNS) and chains to the server CA."""
    material = init_home(tmp_path / "s", ["127.0.0.1", "lwm2m.example.com"])
    cert = x509.load_certificate(material.server_cert_der)
    san = cert.extensions.get_extension_for_class(cx509.SubjectAlternativeName).value
    assert san.get_values_for_type(cx509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(cx509.DNSName) == ["lwm2m.example.com"]
    x509.verify_signed_by(cert, material.ca_cert)
    assert x509.is_ca_certificate(material.ca_cert) and x509.is_ca_certificate(material.device_ca_cert)
    for name in ("ca_key.pem", "server_key.pem", "device_ca_key.pem", "sealing_key.pem"):
        assert stat.S_IMODE((tmp_path / "s" / name).stat().st_mode) == 0o600
    again = load_home(tmp_path / "s")
    assert again.server_chain == material.server_chain and again.addresses == (
        "127.0.0.1",
        "lwm2m.example.com",
    )


def test_init_refuses_to_replace_without_force(tmp_path: Path) -> None:
    """Devices trust the CA already: a second init needs --force and then makes a new CA."""
    first = init_home(tmp_path / "s", ["127.0.0.1"])
    with pytest.raises(ServerSetupError, match="already holds"):
        init_home(tmp_path / "s", ["127.0.0.1"])
    second = init_home(tmp_path / "s", ["127.0.0.1"], force=True)
    assert second.ca_der != first.ca_der


def test_unusable_homes_are_refused(tmp_path: Path) -> None:
    """Missing home, bad address, readable key, mismatched key: clear 8002 errors."""
    with pytest.raises(ServerSetupError) as missing:
        load_home(tmp_path / "nothing")
    assert missing.value.code == 8002 and "server init" in (missing.value.hint or "")
    with pytest.raises(ServerSetupError):
        init_home(tmp_path / "bad", ["no spaces allowed"])
    home = tmp_path / "s"
    init_home(home, ["127.0.0.1"])
    (home / "server_key.pem").chmod(0o644)
    with pytest.raises(ServerSetupError, match="readable by other users"):
        load_home(home)
    (home / "server_key.pem").chmod(0o600)
    (home / "server_key.pem").write_bytes((home / "device_ca_key.pem").read_bytes())
    with pytest.raises(ServerSetupError, match="does not match"):
        load_home(home)
