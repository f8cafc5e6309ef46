"""The virtual device farm, and a registry that disappears in the middle of a batch."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from provkit.codes import FtcdCommStatus
from provkit.errors import StorageError, TransportError
from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm, fcc_device
from provkit.registry import Registry
from provkit.transport.link import LINE_LINK_SETTINGS
from provkit.wire.framing import FCC_TOKEN, ResponseReader, encode_request

pytestmark = pytest.mark.integration


def test_farm_with_storage_directory_keeps_one_store_per_device(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Devices provisioned through a farm on disk each get their own SQLite store."""
    farm = farm_factory(3, storage=tmp_path / "store")
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(
            tmp_path / "out", registry, csv_path, BatchOptions(home_dir=fcu_home, workers=1)
        ).run()
    assert report.ok
    assert sorted(p.name for p in (tmp_path / "store").glob("*.sqlite")) == [
        "device-00000.sqlite",
        "device-00001.sqlite",
        "device-00002.sqlite",
    ]


def test_malformed_frame_gets_a_status_and_the_farm_keeps_serving(
    farm_factory: Callable[..., DeviceFarm],
) -> None:
    """A frame with a bad hash is answered with status 8; the connection and device stay usable."""
    farm = farm_factory(2)
    frame = bytearray(encode_request(b"\xa0", FCC_TOKEN))
    frame[-1] ^= 0xFF  # break the SHA-256 signature
    with socket.create_connection(farm.addresses()[1], timeout=10) as sock:
        sock.sendall(bytes(frame))
        first = _read_response(sock)
        sock.sendall(encode_request(b"\xa0", FCC_TOKEN))  # an (empty) bundle FCC answers itself
        second = _read_response(sock)
    assert getattr(first, "status", None) == FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE
    assert getattr(second, "status", None) == FtcdCommStatus.SUCCESS
    assert farm.messages_served == 1


def test_farm_in_memory_holds_only_connected_devices(farm_factory: Callable[..., DeviceFarm]) -> None:
    """A device in memory is forgotten when its connection closes (its next one starts wiped):
    a farm serving many devices in turn keeps the memory of those connected."""
    import time

    farm = farm_factory(4)
    for address in farm.addresses():
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(encode_request(b"\xa0", FCC_TOKEN))
            assert getattr(_read_response(sock), "status", None) == FtcdCommStatus.SUCCESS
            assert farm.devices_held == 1
    deadline = time.monotonic() + 10
    while farm.devices_held and time.monotonic() < deadline:
        time.sleep(0.01)
    assert farm.devices_held == 0 and farm.messages_served == 4


def _read_response(sock: socket.socket) -> object:
    reader = ResponseReader(FCC_TOKEN)
    event = None
    while event is None:
        reader.feed(sock.recv(4096))
        event = reader.next_event()
    return event


def _free_run(count: int) -> int:
    """A first port with ``count`` consecutive free ports after it (checked by binding them)."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        first = probe.getsockname()[1]
        probe.close()
        if first + count > 65535:
            continue
        held = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise AssertionError("no run of free ports found")


def test_base_port_gives_device_i_port_base_plus_i() -> None:
    """With ``base_port`` the devices listen on consecutive ports, device i on base + i."""
    base = _free_run(4)
    with DeviceFarm(4, base_port=base) as farm:
        assert farm.ports == [base, base + 1, base + 2, base + 3]
        with socket.create_connection(("127.0.0.1", base + 3), timeout=10) as sock:
            sock.sendall(encode_request(b"\xa0", FCC_TOKEN))
            assert getattr(_read_response(sock), "status", None) == FtcdCommStatus.SUCCESS


def test_busy_port_is_a_transport_error() -> None:
    """Binding a farm on a port already in use fails cleanly with TransportError."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(TransportError, match="cannot bind"):
            DeviceFarm(2, base_port=holder.getsockname()[1]).bind()
    finally:
        holder.close()


def test_storage_path_that_is_a_file_is_a_storage_error(tmp_path: Path) -> None:
    """``--storage`` naming a file (not a directory) fails cleanly before any port is bound."""
    not_a_dir = tmp_path / "store"
    not_a_dir.write_text("x")
    farm = DeviceFarm(2, storage=not_a_dir)
    with pytest.raises(StorageError, match="farm's storage directory"):
        farm.bind()
    assert farm.ports == []


def test_registry_vanishing_mid_batch_records_nothing_false_and_resumes(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """A vanished registry fails later devices with a clear reason, unsent; resume completes."""
    folder, moved = tmp_path / "reg", tmp_path / "reg-away"
    folder.mkdir()
    holder: dict[str, Registry] = {}

    def factory(index: int) -> Callable[[bytes, bool], bytes | None]:
        device = fcc_device(":memory:")
        if index != 2:
            return device

        def vanish(message: bytes, first: bool) -> bytes | None:
            if folder.exists():
                folder.rename(moved)  # the registry's disk goes away while this device answers
                holder["registry"].engine.dispose()
            return device(message, first)

        return vanish

    farm = farm_factory(5, factory)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    options = BatchOptions(
        home_dir=fcu_home, workers=1, concurrency=1, inject=replace(LINE_LINK_SETTINGS, retries=0)
    )
    registry = holder["registry"] = Registry.open(folder / "r.sqlite", station_id="s")
    try:
        report = Batch.open(tmp_path / "out", registry, csv_path, options).run()
    finally:
        registry.close()
    statuses = [d.status for d in report.devices]
    assert "provisioned" not in statuses[2:]
    assert all("registry unavailable" in d.reason for d in report.devices[2:])
    assert farm.messages_served == 3  # devices after the failure were never sent a bundle
    moved.rename(folder)
    with Registry.open(folder / "r.sqlite", station_id="s") as registry:
        resumed = Batch.open(tmp_path / "out", registry, None, options).run()
        assert resumed.ok
        assert registry.stats().provisioned == 5
        verified = [a.endpoint_name for a in registry.find(provisioned_only=True)]
    assert sorted(verified) == [f"ep-{n:04d}" for n in range(5)]


@pytest.mark.parametrize(("atomic", "kept"), [(False, True), (True, False)])
def test_farm_devices_keep_a_refused_bundles_items_unless_atomic(
    farm_factory: Callable[..., DeviceFarm], atomic: bool, kept: bool
) -> None:
    """Within a session a farm device keeps what a refused bundle stored, as FCC; atomic farms do not."""
    from provkit.transport.links import TcpLink
    from provkit.wire.cbor_strict import dumps
    from provkit.wire.response import decode_response

    farm = farm_factory(1, atomic_bundles=atomic)
    open_session = dumps({"SchemeVersion": "0.0.1", "KpAlvSess": 1, "Verify": 0})
    refused = dumps(
        {
            "SchemeVersion": "0.0.1",
            "KpAlvSess": 1,
            "Verify": 0,
            "ConfigParams": [{"Name": "custom.a", "Data": 1}, {"Name": "bad name", "Data": 1}],
        }
    )
    retry = dumps({"SchemeVersion": "0.0.1", "Verify": 0, "ConfigParams": [{"Name": "custom.a", "Data": 1}]})
    with TcpLink(*farm.addresses()[0]) as link:
        assert decode_response(link.exchange(open_session, timeout_s=10)).return_status == 0
        assert decode_response(link.exchange(refused, timeout_s=10)).return_status == 16
        answer = decode_response(link.exchange(retry, timeout_s=10))
    assert (answer.return_status == 17) is kept
