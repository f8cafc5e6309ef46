"""The agent serving the real FCC over TCP and serial: whole provisioning exchanges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provkit.codes import FccStatus, FtcdCommStatus
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.handlers import device_handlers
from provkit.device.kcm import Kcm
from provkit.device.storage import open_storage
from provkit.transport.agent import DeviceAgent, SessionEnd
from provkit.transport.errors import DeviceStatusError
from provkit.transport.links import SerialLink, TcpLink
from provkit.transport.servers import SerialAgentServer, TcpAgentServer
from provkit.wire.bundle import Bundle, ConfigParam, encode_bundle
from provkit.wire.response import decode_response
from support.bundles import device_bundle
from support.pty import PtyCable

pytestmark = pytest.mark.integration


@pytest.fixture
def fcc(tmp_path: Path) -> Iterator[FactoryConfiguratorClient]:
    """A real FCC over a real SQLite device storage file."""
    storage = open_storage(tmp_path / "device.sqlite")
    try:
        yield FactoryConfiguratorClient(Kcm(storage))
    finally:
        storage.close()


def test_valid_bundle_over_tcp_is_stored_and_session_closes(fcc: FactoryConfiguratorClient) -> None:
    """A complete bundle gets ReturnStatus 0; the items are stored; the agent ends the session."""
    agent = DeviceAgent(device_handlers(fcc, fcc.kcm))
    with TcpAgentServer(agent, "127.0.0.1", 0) as server, TcpLink(*server.address) as link:
        response = decode_response(link.exchange(device_bundle("ep-tcp-1"), timeout_s=30))
        assert response.return_status == FccStatus.SUCCESS
        assert response.info_message == "The Factory process succeeded\n"
        assert link._stream is not None
        link._stream.sock.settimeout(10)
        assert link._stream.sock.recv(1) == b""  # KpAlvSess absent: the agent closed the connection
    assert server.sessions == [SessionEnd.FINISHED]
    assert fcc.kcm.item_exists("mbed.EndpointName", 4)
    assert fcc.verify_device_configured().status == FccStatus.SUCCESS


def test_keep_alive_session_spans_two_messages_on_one_connection(fcc: FactoryConfiguratorClient) -> None:
    """KpAlvSess 1 keeps the connection open for the second message, which ends the session."""
    first = encode_bundle(
        Bundle(config_params=(ConfigParam("custom.note", "first"),), keep_alive=1, verify=False)
    )
    agent = DeviceAgent(device_handlers(fcc, fcc.kcm))
    with TcpAgentServer(agent, "127.0.0.1", 0) as server, TcpLink(*server.address) as link:
        link.exchange(first, timeout_s=30)
        stream = link._stream
        second = decode_response(link.exchange(device_bundle("ep-keepalive"), timeout_s=30))
        assert link._stream is stream  # same TCP connection for both messages
        assert second.return_status == FccStatus.SUCCESS
    assert server.sessions == [SessionEnd.FINISHED]


def test_invalid_cbor_gets_a_response_bundle_with_status_20(fcc: FactoryConfiguratorClient) -> None:
    """Transport-valid but CBOR-invalid data is answered at transport status 0 with ReturnStatus 20."""
    with (
        TcpAgentServer(DeviceAgent(device_handlers(fcc)), "127.0.0.1", 0) as server,
        TcpLink(*server.address) as link,
    ):
        response = decode_response(link.exchange(b"\xff not cbor", timeout_s=30))
    assert response.return_status == FccStatus.BUNDLE_ERROR


def test_wipe_on_first_deletes_storage_once_per_run(fcc: FactoryConfiguratorClient) -> None:
    """With wipe_on_first, items from a previous run vanish before the first bundle, not later ones."""
    fcc.kcm.item_store("leftover", 4, b"old")
    handlers = device_handlers(fcc, wipe_on_first=True)
    with TcpAgentServer(DeviceAgent(handlers), "127.0.0.1", 0) as server, TcpLink(*server.address) as link:
        link.exchange(device_bundle("ep-wipe"), timeout_s=30)
        assert not fcc.kcm.item_exists("leftover", 4)
        fcc.kcm.item_store("between", 4, b"new")
        link.exchange(b"\xff", timeout_s=30)
    assert fcc.kcm.item_exists("between", 4)


def test_valid_bundle_over_serial_pty(fcc: FactoryConfiguratorClient, pty_cable: PtyCable) -> None:
    """The same provisioning works over a serial line with the agent's log lines interleaved."""
    agent = DeviceAgent(device_handlers(fcc, fcc.kcm))
    with SerialAgentServer(agent, pty_cable.device_path), SerialLink(pty_cable.host_path) as link:
        response = decode_response(link.exchange(device_bundle("ep-serial"), timeout_s=30))
    assert response.return_status == FccStatus.SUCCESS
    assert fcc.kcm.item_get("mbed.EndpointName", 4) == b"ep-serial"


def test_disabled_factory_and_oversized_response_get_transport_status_9(
    fcc: FactoryConfiguratorClient,
) -> None:
    """After Disable=1 FCC produces no response, and a response above 512 bytes is status 21:
    both reach the factory tool as transport status 9 with no body, as in the C example."""
    disable = encode_bundle(Bundle(config_params=(ConfigParam("mbed.UseBootstrap", 0),), verify=0, disable=1))
    too_long = encode_bundle(Bundle(verify=0, sid="s" * 600))
    agent = DeviceAgent(device_handlers(fcc, fcc.kcm))
    with TcpAgentServer(agent, "127.0.0.1", 0) as server:
        with TcpLink(*server.address) as link, pytest.raises(DeviceStatusError) as info:
            link.exchange(too_long, timeout_s=30)
        assert info.value.comm_status == FtcdCommStatus.FAILED_TO_PROCESS_DATA
        with TcpLink(*server.address) as link:
            assert decode_response(link.exchange(disable, timeout_s=30)).return_status == FccStatus.SUCCESS
        with TcpLink(*server.address) as link, pytest.raises(DeviceStatusError) as info:
            link.exchange(device_bundle("ep-after-disable"), timeout_s=30)
        assert info.value.comm_status == FtcdCommStatus.FAILED_TO_PROCESS_DATA
    assert fcc.is_factory_disabled()
    assert not fcc.kcm.item_exists("mbed.EndpointName", 4)
