"""End to end: FactoryToolApi → real device agent (FCC + KCM on SQLite) over TCP and a pty serial pair."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)
from cryptography.x509.oid import NameOID

from provkit.codes import FtErrorCode
from provkit.device.fcc import FactoryConfiguratorClient, fcc_init
from provkit.device.handlers import fcc_handler
from provkit.device.kcm import ItemType
from provkit.errors import TransportError
from provkit.factory import DeviceResponseStatus, FactoryToolApi
from provkit.transport.agent import DeviceAgent
from provkit.transport.links import SerialLink, TcpLink
from provkit.transport.servers import SerialAgentServer, TcpAgentServer
from provkit.wire.bundle import decode_bundle
from provkit.wire.framing import FCC_TOKEN
from support.intermediate import sign_intermediate
from support.pty import pty_cable

from .conftest import CLASS_ID, LWM2M_AID, VENDOR_ID, HomeFactory
from .test_device_keys import write_keys
from .test_resources import write_update_cert

pytestmark = pytest.mark.integration


@pytest.fixture
def device(tmp_path: Path) -> FactoryConfiguratorClient:
    """A virtual device: FCC over a real SQLite file."""
    return fcc_init(tmp_path / "device.sqlite")


@pytest.fixture
def tcp_link(device: FactoryConfiguratorClient) -> Iterator[TcpLink]:
    """A TCP link to an agent serving ``device`` on 127.0.0.1 (free port)."""
    agent = DeviceAgent({FCC_TOKEN: fcc_handler(device)}, read_timeout_s=10)
    with (
        TcpAgentServer(agent, "127.0.0.1", 0) as server,
        TcpLink(*server.address, connect_timeout_s=5) as link,
    ):
        yield link


def provision(
    api: FactoryToolApi, link: TcpLink | SerialLink, endpoint: str, keys: Path | None = None
) -> tuple[DeviceResponseStatus, str | None]:
    """The factory tool flow: prepare, write (twice in by_device mode), verify."""
    request = api.prepare_device_configuration(endpoint, f"SN-{endpoint}", keys)
    response = link.exchange(request.config_data, timeout_s=10)
    if request.needs_csr_response:
        request = api.complete_device_configuration(request, response)
        response = link.exchange(request.config_data, timeout_s=10)
    return api.verify_device_response(endpoint, response), request.enrollment_id


def _warnings(status: DeviceResponseStatus) -> set[str]:
    return {w.message for w in status.warnings}


@pytest.mark.parametrize("mode", ["by_tool", "by_device"])
@pytest.mark.parametrize("use_bootstrap", [True, False])
def test_modes_provision_and_verify(
    make_home: HomeFactory,
    device: FactoryConfiguratorClient,
    tcp_link: TcpLink,
    mode: str,
    use_bootstrap: bool,
) -> None:
    """by_tool and by_device bundles in bootstrap and LwM2M mode pass the device's verification."""
    api = make_home(device_key_generation_mode=mode, use_bootstrap=use_bootstrap)
    status, _ = provision(api, tcp_link, "e2e-dev")
    assert status.ok, status
    prefix = "Bootstrap" if use_bootstrap else "LwM2M"
    assert device.kcm.item_exists(f"mbed.{prefix}DevicePrivateKey", ItemType.PRIVATE_KEY)
    leaf = x509.load_der_x509_certificate(device.kcm.cert_chain_get(f"mbed.{prefix}DeviceCert")[0])
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "e2e-dev"
    assert device.kcm.item_get("mbed.EndpointName", ItemType.CONFIG) == b"e2e-dev"
    if not use_bootstrap:
        assert "Bootstrap mode not activated:mbed.UseBootstrap" in _warnings(status)


def test_externally_supplied_keys(
    make_home: HomeFactory, device: FactoryConfiguratorClient, tcp_link: TcpLink, tmp_path: Path
) -> None:
    """Supplied keys with a PEM chain (depth 2) are stored and verified on the device."""
    api = make_home(
        device_key_generation_mode="externally_supplied", setup=False, device_certificate_chain_depth=2
    )
    write_keys(tmp_path / "keys", cn="ext-dev", chain=True)
    status, _ = provision(api, tcp_link, "ext-dev", tmp_path / "keys")
    assert status.ok, status
    assert len(device.kcm.cert_chain_get("mbed.BootstrapDeviceCert")) == 2


def test_first_to_claim(make_home: HomeFactory, tcp_link: TcpLink, device: FactoryConfiguratorClient) -> None:
    """First-to-claim passes the device's URI rule and the enrollment id matches the stored certificate."""
    api = make_home(first_to_claim=True)
    status, enrollment = provision(api, tcp_link, "ftc-dev")
    assert status.ok, status
    from provkit.crypto.x509 import enrollment_id

    assert enrollment == enrollment_id(device.kcm.cert_chain_get("mbed.BootstrapDeviceCert")[0])


def test_update_auth_and_custom_properties(
    make_home: HomeFactory, device: FactoryConfiguratorClient, tcp_link: TcpLink, tmp_path: Path
) -> None:
    """Update authority, vendor/class ids and custom properties are stored; no 'not set' warnings."""
    update = write_update_cert(tmp_path / "update.der")
    api = make_home(
        update_auth_certificate_file=str(update),
        vendor_id=VENDOR_ID,
        class_id=CLASS_ID,
        custom_properties=[{"name": "acme.Colour", "type": "config", "data": "blue"}],
        device_certificate_chain_depth=2,
    )
    status, _ = provision(api, tcp_link, "upd-dev")
    assert status.ok, status
    assert not any("UpdateAuthCert" in w or "ClassId" in w or "VendorId" in w for w in _warnings(status))
    assert device.kcm.item_get("acme.Colour", ItemType.CONFIG) == b"blue"
    assert len(device.kcm.item_get("mbed.VendorId", ItemType.CONFIG)) == 16


def test_device_failure_is_reported(
    make_home: HomeFactory, device: FactoryConfiguratorClient, tcp_link: TcpLink
) -> None:
    """Injecting the same device twice is refused by the device and reported with its status."""
    api = make_home()
    assert provision(api, tcp_link, "twice")[0].ok
    status, _ = provision(api, tcp_link, "twice")
    assert not status.ok and status.errors and status.errors[0].code == status.status


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    """The device end and the tool end of a pty serial cable."""
    with pty_cable() as cable:
        yield cable.device_path, cable.host_path


@pytest.mark.parametrize("use_bootstrap", [True, False])
@pytest.mark.parametrize("mode", ["by_tool", "by_device", "externally_supplied"])
def test_serial_injection(
    make_home: HomeFactory,
    device: FactoryConfiguratorClient,
    pty_pair: tuple[str, str],
    tmp_path: Path,
    mode: str,
    use_bootstrap: bool,
) -> None:
    """Over a pty serial pair with device log lines interleaved, every key mode provisions in both modes."""
    api = make_home(device_key_generation_mode=mode, use_bootstrap=use_bootstrap)
    keys = None
    if mode == "externally_supplied":
        keys = tmp_path / "keys"
        prefix, ou = ("Bootstrap", None) if use_bootstrap else ("LwM2M", LWM2M_AID)
        write_keys(keys, prefix=prefix, cn="serial-dev", ou=ou)
    agent = DeviceAgent({FCC_TOKEN: fcc_handler(device)}, read_timeout_s=10)
    with SerialAgentServer(agent, pty_pair[0]) as _server, SerialLink(pty_pair[1]) as link:
        status, _ = provision(api, link, "serial-dev", keys)
    assert status.ok, status
    prefix = "Bootstrap" if use_bootstrap else "LwM2M"
    assert device.kcm.item_get("mbed.EndpointName", ItemType.CONFIG) == b"serial-dev"
    assert device.kcm.cert_chain_get(f"mbed.{prefix}DeviceCert")


def test_intermediate_ca_chain_depth_three(
    make_home: HomeFactory, device: FactoryConfiguratorClient, tcp_link: TcpLink
) -> None:
    """With an intermediate factory CA a depth-3 chain (device, intermediate, root) is stored and verified."""
    api = make_home(setup_ca_as_intermediate=True, device_certificate_chain_depth=3)
    signed = sign_intermediate(api.paths.ca_csr.read_bytes(), days=7000, serial=11)
    api.install_ca_certificate(signed.chain_pem)
    status, _ = provision(api, tcp_link, "chain3")
    assert status.ok, status
    assert len(device.kcm.cert_chain_get("mbed.BootstrapDeviceCert")) == 3


def test_custom_properties_of_every_type_are_stored(
    make_home: HomeFactory, device: FactoryConfiguratorClient, tcp_link: TcpLink, tmp_path: Path
) -> None:
    """config, private-key, public-key, certificate and a PEM chain custom item reach the device's KCM."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    pub_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    _, chain_ders = write_keys(tmp_path / "chain", cn="svc", chain=True)
    ca_pem = x509.load_der_x509_certificate(chain_ders[1]).public_bytes(Encoding.PEM).decode()
    chain_file = str(tmp_path / "chain" / "BootstrapDeviceCert.pem")
    api = make_home(
        custom_properties=[
            {"name": "acme.Colour", "type": "config", "data": "blue"},
            {"name": "acme.Key", "type": "private-key", "data": key_pem},
            {"name": "acme.Pub", "type": "public-key", "data": pub_pem},
            {"name": "acme.Cert", "type": "certificate", "data": ca_pem},
            {"name": "acme.Chain", "type": "certificate", "data-file": chain_file},
        ]
    )
    status, _ = provision(api, tcp_link, "custom-dev")
    assert status.ok, status
    kcm = device.kcm
    assert kcm.item_get("acme.Colour", ItemType.CONFIG) == b"blue"
    stored_key = load_der_private_key(kcm.item_get("acme.Key", ItemType.PRIVATE_KEY), None)
    assert stored_key.public_key() == key.public_key()
    assert kcm.item_get("acme.Pub", ItemType.PUBLIC_KEY) == key.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    assert kcm.cert_chain_get("acme.Cert") == [chain_ders[1]]
    assert kcm.cert_chain_get("acme.Chain") == chain_ders


@pytest.mark.parametrize("mode", ["by_tool", "by_device"])
def test_factory_fcc_disable_closes_the_factory_flow(
    make_home: HomeFactory, device: FactoryConfiguratorClient, tcp_link: TcpLink, mode: str
) -> None:
    """With factory_fcc_disable the device stores the bundle, then refuses every further one (no response)."""
    api = make_home(device_key_generation_mode=mode)
    request = api.prepare_device_configuration("dis-1", "SN", factory_fcc_disable=True)
    if request.needs_csr_response:
        assert decode_bundle(request.config_data).disable is None  # FCC refuses Disable with KpAlvSess 1
        request = api.complete_device_configuration(
            request, tcp_link.exchange(request.config_data, timeout_s=10)
        )
    status = api.verify_device_response("dis-1", tcp_link.exchange(request.config_data, timeout_s=10))
    assert status.ok, status
    assert device.is_factory_disabled()
    again = api.prepare_device_configuration("dis-2", "SN")
    with pytest.raises(TransportError) as info:
        tcp_link.exchange(again.config_data, timeout_s=10)
    assert info.value.code == FtErrorCode.DEVICE_COMMUNICATION
