"""Serving the API: plain HTTP only on loopback, HTTPS with a certificate, the client's CA option."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.developer import CloudClient
from provkit.errors import CloudApiError, ServerSetupError
from provkit.server import ServerThread
from provkit.server.http_settings import HttpSettings, check_settings, is_loopback
from support.dmapi import running_api

from ..conftest import World

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> cx509.Name:
    return cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _https_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server_key.pem)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        cx509.CertificateBuilder(
            _name("test CA"), _name("test CA"), ca_key.public_key(), 1, NOW, NOW + dt.timedelta(days=2)
        )
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        cx509.CertificateBuilder(
            ca.subject, _name("127.0.0.1"), key.public_key(), 2, NOW, NOW + dt.timedelta(days=2)
        )
        .add_extension(
            cx509.SubjectAlternativeName([cx509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    files = (tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server_key.pem")
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.0.2.1", False),
        ("example.test", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    """Only loopback addresses count as loopback."""
    assert is_loopback(host) is loopback


def test_plain_http_off_loopback_needs_insecure_http(tmp_path: Path) -> None:
    """0.0.0.0 without a certificate is refused (8002) unless --insecure-http; so is half a certificate."""
    with pytest.raises(ServerSetupError, match=r"refusing plain HTTP on 0\.0\.0\.0") as info:
        check_settings(HttpSettings(host="0.0.0.0"))
    assert info.value.code == 8002 and "`insecure_http`" in (info.value.hint or "")
    check_settings(HttpSettings(host="0.0.0.0", insecure_http=True))
    check_settings(HttpSettings(host="127.0.0.1"))
    ca, cert, key = _https_files(tmp_path)
    with pytest.raises(ServerSetupError, match="needs both"):
        check_settings(HttpSettings(host="0.0.0.0", certificate=cert))
    with pytest.raises(ServerSetupError, match="cannot use"):
        check_settings(HttpSettings(host="0.0.0.0", certificate=cert, private_key=ca))
    check_settings(HttpSettings(host="0.0.0.0", certificate=cert, private_key=key))


@pytest.mark.integration
def test_https_with_the_servers_ca(tmp_path: Path) -> None:
    """HTTPS: the client trusts the given CA, refuses the certificate without it; http:// gets no answer."""
    ca, cert, key = _https_files(tmp_path)
    settings = HttpSettings(port=0, certificate=cert, private_key=key)
    with running_api(str(tmp_path / "registry.sqlite"), settings=settings) as api:
        assert api.url.startswith("https://127.0.0.1:")
        account = CloudClient(api.developer_key, api.url, ca_file=ca).account()
        assert account["id"] == api.registry.accounts.current().id
        with pytest.raises(CloudApiError, match="CERTIFICATE_VERIFY_FAILED"):
            CloudClient(api.developer_key, api.url).account()
        with pytest.raises(CloudApiError):
            CloudClient(api.developer_key, api.url.replace("https://", "http://")).account()
    with pytest.raises(CloudApiError, match="cannot use"):
        CloudClient("ak_x", "https://127.0.0.1:1", ca_file=tmp_path / "missing.pem")


@pytest.mark.integration
def test_provkit_server_serves_the_api_over_https_with_its_home_certificate(world: World) -> None:
    """server run --https-cert/--https-key: the home's server.pem; clients trust the home's ca.pem."""
    home = world.material.home
    config = world.config(
        http_port=0, https_certificate=home / "server.pem", https_key=home / "server_key.pem"
    )
    with world.registry() as registry:
        _, key = registry.api_keys.create("https-user")
    with ServerThread(config) as server:
        assert server.ports is not None and server.ports.http
        url = f"https://127.0.0.1:{server.ports.http}"
        account = CloudClient(key, url, ca_file=home / "ca.pem").account()
        assert account["object"] == "account"
        with pytest.raises(CloudApiError, match="CERTIFICATE_VERIFY_FAILED"):
            CloudClient(key, url).account()


@pytest.mark.integration
def test_provkit_server_refuses_plain_http_off_loopback(world: World) -> None:
    """Plain HTTP on 0.0.0.0 stops the server from starting (8002) unless --insecure-http."""
    with (
        pytest.raises(ServerSetupError, match="refusing plain HTTP") as info,
        ServerThread(world.config(http_port=0, http_host="0.0.0.0")),
    ):
        pass
    assert info.value.code == 8002
    with ServerThread(world.config(http_port=0, http_host="0.0.0.0", insecure_http=True)) as server:
        assert server.ports is not None and server.ports.http
