from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provkit.device.kcm import ItemType, Kcm
from provkit.device.lwm2m import AcceptStatus, Lwm2mAcceptor, make_lwm2m_handler
from provkit.device.storage import SqliteStorage
from provkit.errors import EndpointConfigError, RegistrationError
from provkit.factory.lwm2m import CertConfigError, FactoryProvisioning, ProvisioningRefused
from provkit.factory.lwm2m.certs import private_key_der
from provkit.transport.agent import DeviceAgent
from provkit.transport.links import FileLink, TcpLink
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import LWM2M_TOKEN
from support.coiote import Coiote, coiote_server

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors" / "lwm2m"
SAMPLE = VECTORS_DIR / "sample_psk.yaml"

CERT_CFG = {
    "Security": {
        0: {
            "ServerURI": "coaps://bs.example.com:5684",
            "Bootstrap": True,
            "Mode": "psk",
            "PKOrIdentity": "bs-identity",
            "SecretKey": {"hex": "000102030405"},
        },
        1: {
            "ServerURI": "coaps://dm.example.com:5684",
            "Bootstrap": False,
            "Mode": "cert",
            "ShortServerID": 1,
        },
    },
    "Server": {1: {"ShortServerID": 1, "Lifetime": 86400, "NotificationStoring": False, "Binding": "U"}},
}


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[Kcm, TcpAgentServer]]:
    """A device agent with a real SQLite KCM, serving LwM2M frames on 127.0.0.1."""
    kcm = Kcm(SqliteStorage(tmp_path / "device.db"))
    agent = DeviceAgent({LWM2M_TOKEN: make_lwm2m_handler(kcm)}, read_timeout_s=10.0)
    with TcpAgentServer(agent, "127.0.0.1", 0) as server:
        yield kcm, server


@pytest.mark.integration
def test_cert_mode_provisioning_over_tcp(device):
    """A bootstrap + cert-mode config with generated P-256 credentials reaches the device over TCP."""
    kcm, server = device
    fp = FactoryProvisioning(CERT_CFG, "urn:dev:e2e", None, None, {"organizationName": "provkit"})
    assert fp.get_sec_mode() == "cert"
    server_creds = FactoryProvisioning(CERT_CFG, "server", None, None, None).generate_self_signed_cert()
    fp.set_server_cert(server_creds.cert_der)
    creds = fp.generate_self_signed_cert()
    with TcpLink(*server.address) as link:
        blob = fp.provision_device(link)
    assert fp.last_result is not None and fp.last_result.written == len(fp.config.entries())
    stored = {e.path: e.value for e in Lwm2mAcceptor(kcm).configuration()}
    assert stored["/0/1/3"] == creds.cert_der and stored["/0/1/4"] == server_creds.cert_der
    assert (
        x509.load_der_x509_certificate(stored["/0/1/3"]).subject.rfc4514_string()
        == "CN=urn:dev:e2e,O=provkit"
    )
    types = {i.name: i.type for i in kcm.list_items()}
    assert types["lwm2m.0.1.5"] is ItemType.PRIVATE_KEY and types["lwm2m.0.0.5"] is ItemType.SYMMETRIC_KEY
    assert len(blob) > 300


@pytest.mark.integration
def test_device_refusal_reaches_factory(device):
    """A blob the device refuses raises ProvisioningRefused with the device's reason; storage is untouched."""
    kcm, server = device
    fp = FactoryProvisioning(CERT_CFG, "urn:dev:e2e", None, None, None, allow_unverified_server=True)
    fp.generate_self_signed_cert()
    other = FactoryProvisioning(CERT_CFG, "urn:dev:other", None, None, None).generate_self_signed_cert()
    fp.config.set(0, 1, 5, other.key_der)  # a key that does not match the certificate
    with TcpLink(*server.address) as link, pytest.raises(ProvisioningRefused, match="does not match") as info:
        fp.provision_device(link)
    assert info.value.code == 5015
    assert kcm.list_items() == []


def test_cert_mode_without_certificate_is_refused_on_the_host():
    """Building a cert-mode blob without credentials fails on the host, naming the instance."""
    fp = FactoryProvisioning(CERT_CFG, "urn:dev:x", None, None, None)
    with pytest.raises(EndpointConfigError, match="/0/1"):
        fp.build_blob()


def test_file_link_writes_framed_request(tmp_path):
    """Over the file transport the blob is written as an lwm2mfpv frame; no answer is invented."""
    from provkit.wire.framing import encode_request

    fp = FactoryProvisioning(SAMPLE, "ep", None, None, None)
    blob = fp.provision_device(FileLink(tmp_path / "req.bin"))
    assert (tmp_path / "req.bin").read_bytes() == encode_request(blob, LWM2M_TOKEN)
    assert fp.last_result is None


@pytest.fixture
def coiote() -> Iterator[Coiote]:
    """A real HTTP server on 127.0.0.1:0 in a thread."""
    with coiote_server() as server:
        yield server


@pytest.mark.integration
def test_registration_psk(coiote):
    """PSK registration posts the endpoint, domain, identity and hex key with the bearer token."""
    fp = FactoryProvisioning(SAMPLE, "urn:dev:reg", coiote.server_info(), "tok123", None)
    assert fp.register() == {"id": "urn:dev:reg"}
    ((method, path, headers, body),) = coiote.seen
    assert (method, path) == ("POST", "/api/coiotedm/v3/devices")
    assert headers["Authorization"] == "Bearer tok123" and headers["Accept"] == "application/json"
    assert body == {
        "properties": {"endpointName": "urn:dev:reg"},
        "connectorType": "management",
        "domain": "/embedded/",
        "securityMode": "psk",
        "dtlsIdentity": "reg-test-psk-identity",
        "dtlsPsk": {"HexadecimalPsk": b"3x@mpl3P5K53cr3tK3y".hex()},
    }


@pytest.mark.integration
@pytest.mark.parametrize(("mode", "name"), [("cert", "cert"), ("est", "cert")])
def test_registration_certificate_modes(coiote, mode, name):
    """Certificate modes register the management (non-bootstrap) instance without identity or PSK;
    EST (4) registers as ``cert``, Coiote documenting no ``est``."""
    cfg = {**CERT_CFG, "Security": {**CERT_CFG["Security"], 1: {**CERT_CFG["Security"][1], "Mode": mode}}}
    fp = FactoryProvisioning(cfg, "urn:dev:c", coiote.server_info("/main/d/"), "tok", None)
    fp.generate_self_signed_cert()
    fp.register()
    ((_, _, _, body),) = coiote.seen
    assert body == {
        "properties": {"endpointName": "urn:dev:c"},
        "connectorType": "management",
        "domain": "/main/d/",
        "securityMode": name,
        "dtlsIdentity": None,
        "dtlsPsk": None,
    }


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "raw", "message"),
    [
        (409, None, r"HTTP 409 Conflict: Device exists"),
        (401, None, r"HTTP 401 Unauthorized: Device exists"),
        (500, b"<html>boom</html>", r"HTTP 500 Internal Server Error: <html>boom</html>"),
        (503, b"", r"HTTP 503 Service Unavailable$"),
    ],
)
def test_registration_http_errors(coiote, status, raw, message):
    """HTTP failures become a RegistrationError (5003) with the status and the server's message."""
    coiote.status, coiote.raw_error = status, raw
    fp = FactoryProvisioning(SAMPLE, "urn:dev:reg", coiote.server_info(), "tok", None)
    with pytest.raises(RegistrationError, match=message) as info:
        fp.register()
    assert info.value.code == 5003


def test_registration_unreachable_and_bad_inputs():
    """A closed port, a domain without slashes and a missing token are clear errors."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    info = {"url": "http://127.0.0.1", "port": port, "domain": "/d/"}
    fp = FactoryProvisioning(VECTORS_DIR / "sample_psk.yaml", "ep", info, "tok", None)
    with pytest.raises(RegistrationError, match="cannot reach"):
        fp.register()
    with pytest.raises(RegistrationError, match="domain"):
        FactoryProvisioning(VECTORS_DIR / "sample_psk.yaml", "ep", {"domain": "d"}, "tok", None)
    with pytest.raises(RegistrationError, match="token"):
        FactoryProvisioning(VECTORS_DIR / "sample_psk.yaml", "ep", info, None, None).register()


def _rsa_credentials(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """An RSA key (PEM, PKCS#1) and its self-signed certificate (PEM), as openssl would leave them."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = tmp_path / f"{name}.key.pem", tmp_path / f"{name}.crt.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.mark.integration
def test_existing_rsa_credentials_over_tcp(device, tmp_path):
    """-k / -r / -p files (PEM) go into /0/1/5, /0/1/3, /0/1/4 as DER; the device checks the RSA pair."""
    kcm, server = device
    key_path, cert_path = _rsa_credentials(tmp_path, "ep")
    _, server_cert = _rsa_credentials(tmp_path, "srv")
    fp = FactoryProvisioning(CERT_CFG, "urn:dev:rsa", None, None, None)
    fp.set_server_cert(server_cert)
    fp.set_endpoint_cert_and_key(key_path, cert_path)
    with TcpLink(*server.address) as link:
        fp.provision_device(link)
    stored = {e.path: e.value for e in Lwm2mAcceptor(kcm).configuration()}
    assert stored["/0/1/3"] == x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    assert stored["/0/1/5"][:1] == b"\x30" and stored["/0/1/4"][:1] == b"\x30"
    assert {i.name: i.type for i in kcm.list_items()}["lwm2m.0.1.5"] is ItemType.SYMMETRIC_KEY


def test_existing_credentials_bad_input(tmp_path):
    """A key that does not match its certificate, swapped files or a non-certificate -p fail on the host."""
    key_path, cert_path = _rsa_credentials(tmp_path, "ep")
    other_key, _ = _rsa_credentials(tmp_path, "other")
    fp = FactoryProvisioning(CERT_CFG, "urn:dev:x", None, None, None)
    with pytest.raises(CertConfigError, match="does not match"):
        fp.set_endpoint_cert_and_key(other_key, cert_path)
    with pytest.raises(CertConfigError, match=r"endpoint private key \(-k\) .*ep.crt.pem"):
        fp.set_endpoint_cert_and_key(cert_path, key_path)
    with pytest.raises(CertConfigError, match=r"server certificate \(-p\)"):
        fp.set_server_cert(key_path)
    with pytest.raises(EndpointConfigError, match="cannot read"):
        fp.set_server_cert(tmp_path / "missing.der")
    assert fp.config.get(0, 1, 3) is None and fp.config.get(0, 1, 4) is None


def test_acceptor_refuses_mismatched_rsa_pair(tmp_path):
    """The device checks RSA key/certificate pairs too, not only P-256 ones."""
    from provkit.lwm2m.senml_cbor import encode_cbor

    key_path, cert_path = _rsa_credentials(tmp_path, "ep")
    other_key, _ = _rsa_credentials(tmp_path, "other")
    fp = FactoryProvisioning(CERT_CFG, "urn:dev:x", None, None, None)
    fp.set_endpoint_cert_and_key(key_path, cert_path)
    fp.config.set(0, 1, 5, private_key_der(other_key.read_bytes()))
    kcm = Kcm(SqliteStorage(tmp_path / "d.db"))
    result = Lwm2mAcceptor(kcm).accept(encode_cbor(fp.config.entries()))
    assert result.status is AcceptStatus.VALIDATION_FAILED
    assert result.reason == "/0/1/5: the private key does not match the certificate /0/1/3"
    fp.config.set(0, 1, 5, b"\x30\x03\x02\x01\x00")
    result = Lwm2mAcceptor(kcm).accept(encode_cbor(fp.config.entries()))
    assert result.status is AcceptStatus.VALIDATION_FAILED and "not a private key" in result.reason
    assert kcm.list_items() == []


def test_server_file_forms():
    """Anjay 3.1.0's sample server JSON maps to the devices URL; IPv6 keeps brackets; bad URLs are refused."""
    from provkit.factory.lwm2m import ServerInfo

    sample = {"url": "https://try-anjay.avsystem.com", "port": 8087, "domain": "/embedded/"}
    assert (
        ServerInfo.from_mapping(sample).devices_url
        == "https://try-anjay.avsystem.com:8087/api/coiotedm/v3/devices"
    )
    assert (
        ServerInfo.from_mapping({"url": "http://[::1]", "port": 80, "domain": "/d/"}).devices_url
        == "http://[::1]:80/api/coiotedm/v3/devices"
    )
    for url in ("http://", "http://[::1", "ftp://host", 5):
        with pytest.raises(RegistrationError, match="not an http"):
            ServerInfo.from_mapping({"url": url, "domain": "/d/"})
    with pytest.raises(RegistrationError, match="port"):
        ServerInfo.from_mapping({**sample, "port": 0})


def test_target_and_server_certificate_rules_on_the_host(tmp_path):
    """The default anjay target refuses a read-only Device resource; cert mode needs -p unless allowed."""
    from provkit.errors import TargetRefused, UnverifiedServer

    with_device = {**CERT_CFG, "Device": {0: {"Manufacturer": "ACME", "Timezone": "UTC"}}}
    fp = FactoryProvisioning(with_device, "urn:dev:t", None, None, None, allow_unverified_server=True)
    fp.generate_self_signed_cert()
    with pytest.raises(TargetRefused, match=r"^/3/0/0: refused for target 'anjay'"):
        fp.build_blob()
    generic = FactoryProvisioning(with_device, "urn:dev:t", None, None, None, target="generic")
    generic.generate_self_signed_cert()
    with pytest.raises(UnverifiedServer, match="/0/1/4"):
        generic.build_blob()
    generic.set_server_cert(fp.credentials.cert_der)  # type: ignore[union-attr]
    assert any(e.path == "/3/0/0" for e in generic.config.entries()) and generic.build_blob()
