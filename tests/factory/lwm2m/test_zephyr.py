"""The Anjay-zephyr provisioning flow over SMP against the virtual board: endpoint, blob, result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor
from provkit.device.smp import AnjayProvisioningImage
from provkit.device.storage import SqliteStorage
from provkit.errors import EndpointConfigError, SmpDeviceError, SmpProvisioningFailed, SmpTimeout
from provkit.factory.lwm2m import FactoryProvisioning
from provkit.factory.lwm2m.zephyr import deliver_blob, read_endpoint_name, read_result
from provkit.transport.smp_link import SmpLink, SmpSettings
from provkit.transport.smp_server import SmpUdpServer

pytestmark = pytest.mark.integration

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors" / "lwm2m"
SAMPLE = VECTORS_DIR / "sample_psk.yaml"
CERT_CFG = {
    "Security": {
        1: {"ServerURI": "coaps://dm.example.com", "Bootstrap": False, "Mode": "cert", "ShortServerID": 1}
    },
    "Server": {1: {"ShortServerID": 1, "Lifetime": 86400, "NotificationStoring": False, "Binding": "U"}},
}


@pytest.fixture
def board(tmp_path: Path) -> AnjayProvisioningImage:
    kcm = Kcm(SqliteStorage(tmp_path / "board.db"))
    return AnjayProvisioningImage(kcm, endpoint_name="anjay-zephyr-demo-5")


@pytest.fixture
def link(board: AnjayProvisioningImage) -> Iterator[SmpLink]:
    with (
        SmpUdpServer(board.handle) as server,
        SmpLink.udp(*server.address, settings=SmpSettings(timeout_s=1.0)) as smp,
    ):
        yield smp


def _server_cert() -> bytes:
    fp = FactoryProvisioning(CERT_CFG, "server", None, None, None, allow_unverified_server=True)
    return fp.generate_self_signed_cert().cert_der


def test_cert_mode_blob_for_the_endpoint_the_device_names(board, link):
    """As ptool.py: the endpoint comes from endpoint.txt, the certificate CN is it, result 0 stores it."""
    endpoint = read_endpoint_name(link)
    assert endpoint == "anjay-zephyr-demo-5"
    fp = FactoryProvisioning(CERT_CFG, endpoint, None, None, {"organizationName": "line"})
    fp.set_server_cert(_server_cert())
    fp.generate_self_signed_cert()
    done: list[int] = []
    outcome = fp.provision_zephyr(link, progress=lambda held, total: done.append(held))
    assert outcome.endpoint_name == endpoint and not outcome.upload_recovered
    assert done[-1] == outcome.blob_bytes > 800  # two certificates and a key, in two or more chunks
    stored = {e.path: e.value for e in Lwm2mAcceptor(board.acceptor.kcm).configuration()}
    cert = x509.load_der_x509_certificate(stored["/0/1/3"])  # type: ignore[arg-type]
    assert cert.subject.rfc4514_string() == f"CN={endpoint},O=line"


def test_result_minus_one_raises_7005_nothing_applied(board, link):
    """A generic-target blob with a resource Anjay cannot write: the device answers -1."""
    cfg = {**CERT_CFG, "Device": {0: {"Manufacturer": "ACME"}}}
    fp = FactoryProvisioning(cfg, "ep", None, None, None, target="generic", allow_unverified_server=True)
    fp.generate_self_signed_cert()
    with pytest.raises(SmpProvisioningFailed) as info:
        fp.provision_zephyr(link)
    assert info.value.code == 7005 and info.value.result == -1 and "nothing was applied" in str(info.value)
    assert Lwm2mAcceptor(board.acceptor.kcm).configuration() == []


def test_already_provisioned_device_has_no_endpoint(board, link):
    fp = FactoryProvisioning(SAMPLE, "ep", None, None, None)
    fp.provision_zephyr(link)
    board.reboot()
    with pytest.raises(SmpProvisioningFailed) as info:
        read_endpoint_name(link)
    assert info.value.code == 7004 and "FILE_NOT_FOUND" in str(info.value) and info.value.hint


def test_second_blob_in_the_same_boot_is_refused(link):
    fp = FactoryProvisioning(SAMPLE, "ep", None, None, None)
    fp.provision_zephyr(link)
    with pytest.raises(SmpDeviceError) as info:
        fp.provision_zephyr(link)
    assert info.value.code == 7114


def test_blob_that_cannot_be_built_sends_nothing(board, link):
    fp = FactoryProvisioning(CERT_CFG, "ep", None, None, None)
    fp.generate_self_signed_cert()
    with pytest.raises(Exception, match="server certificate"):
        fp.provision_zephyr(link)  # no -p: refused on the host
    with pytest.raises(EndpointConfigError, match="endpoint name"):
        FactoryProvisioning(SAMPLE, None, None, None, None).provision_zephyr(link)
    assert board.device.requests == 1  # only the link's parameter read reached the device


class _LastAnswersLost:
    """An SMP link whose upload raises after the device took every byte (the last answers were lost)."""

    def __init__(self, inner: SmpLink) -> None:
        self.inner = inner
        self.describe = inner.describe

    def download(self, path: str, *, max_bytes: int = 1 << 20) -> bytes:
        return self.inner.download(path, max_bytes=max_bytes)

    def upload(self, path, data, *, progress=None) -> None:
        self.inner.upload(path, data, progress=progress)
        raise SmpTimeout("no answer to the last chunk")


def test_result_decides_after_a_failed_upload(board, link):
    fp = FactoryProvisioning(SAMPLE, "ep", None, None, None)
    outcome = deliver_blob(_LastAnswersLost(link), fp.build_blob(), "ep")
    assert outcome.upload_recovered
    assert read_result(link) == 0 and Lwm2mAcceptor(board.acceptor.kcm).configuration()


def test_failed_upload_with_result_minus_one(board, link):
    class Half(_LastAnswersLost):
        def upload(self, path, data, *, progress=None) -> None:
            self.inner.upload(path, data[: len(data) // 2], progress=progress)
            raise SmpTimeout("no answer")

    fp = FactoryProvisioning(SAMPLE, "ep", None, None, None)
    with pytest.raises(SmpProvisioningFailed) as info:
        deliver_blob(Half(link), fp.build_blob(), "ep")
    assert info.value.result == -1 and str(info.value).startswith("no answer; the device then reported")


def test_wait_until_ready_sees_a_provisioned_board(tmp_path):
    from provkit.factory.lwm2m.zephyr import wait_until_ready
    from provkit.transport.smp_server import SmpSerialServer
    from support.pty import pty_cable

    kcm = Kcm(SqliteStorage(tmp_path / "b.db"))
    board = AnjayProvisioningImage(kcm, endpoint_name="e")
    with pty_cable() as cable, SmpLink.serial(cable.host_path) as link:
        link.connect()
        with SmpSerialServer(board.handle, cable.device_path) as server:
            server.log(board.console_lines)
            wait_until_ready(link, 10.0)
            FactoryProvisioning(SAMPLE, "e", None, None, None).provision_zephyr(link)
            server.log(board.reboot())
            with pytest.raises(SmpProvisioningFailed) as info:
                wait_until_ready(link, 10.0)
    assert info.value.code == 7004 and "already present" in str(info.value) and info.value.hint
