"""A device's first connection from its storage (Anjay-style LwM2M objects) and the connect command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provkit.crypto import keys
from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor
from provkit.device.storage import SqliteStorage
from provkit.lwm2m.senml import Entry
from provkit.lwm2m.senml_cbor import encode_cbor
from provkit.registry import ConnectionOutcome
from provkit.server import ServerThread
from provkit.server.connect import connect_device
from provkit.server.device_store import read_identity
from support.cli import json_status, run_cli

from .conftest import World, wait_for_trust

pytestmark = pytest.mark.integration


def _store(path: Path, entries: list[Entry]) -> Path:
    storage = SqliteStorage(path)
    try:
        result = Lwm2mAcceptor(Kcm(storage)).accept(encode_cbor(entries))
        assert result.ok, result
    finally:
        storage.close()
    return path


def _psk_entries(uri: str) -> list[Entry]:
    return [
        Entry("/0/1/0", uri),
        Entry("/0/1/1", False),
        Entry("/0/1/2", 0),
        Entry("/0/1/3", b"anjay-psk-1"),
        Entry("/0/1/5", b"anjay-secret-key"),
        Entry("/0/1/10", 1),
        Entry("/1/1/0", 1),
        Entry("/1/1/1", 600),
        Entry("/1/1/6", False),
        Entry("/1/1/7", "U"),
    ]


def test_psk_store_registers_directly(world: World, server: ServerThread, tmp_path: Path) -> None:
    """An Anjay-style PSK account (the identity names the endpoint) registers with its lifetime."""
    assert server.ports is not None
    with world.registry() as registry:
        registry.psk.record("anjay-psk-1", "anjay-psk-1", b"anjay-secret-key")
    wait_for_trust(server, world)
    db = _store(tmp_path / "anjay.sqlite", _psk_entries(f"coaps://127.0.0.1:{server.ports.lwm2m}"))
    result = run_cli("device", "connect", "--storage", str(db), "--timeout", "5")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["ok"] and answer["endpoint_name"] == "anjay-psk-1" and not answer["bootstrapped"]
    assert answer["mode"] == "psk"
    with world.registry() as registry:
        (record,) = registry.connections.get("anjay-psk-1")
    assert record.lifetime == 600 and record.outcome is ConnectionOutcome.REGISTERED


def test_certificate_store_bootstraps_once_then_registers(
    world: World, server: ServerThread, tmp_path: Path
) -> None:
    """A bootstrap-only certificate store bootstraps, keeps the issued account, and uses it next time."""
    assert server.ports is not None
    key, cert = world.device_certificate("anjay-cert-1")
    entries = [
        Entry("/0/0/0", f"coaps://127.0.0.1:{server.ports.bootstrap}"),
        Entry("/0/0/1", True),
        Entry("/0/0/2", 2),
        Entry("/0/0/3", cert),
        Entry("/0/0/4", world.material.ca_der),
        Entry("/0/0/5", keys.private_key_der(keys.load_private_key(key))),
        Entry("/0/0/15", 2),
    ]
    db = _store(tmp_path / "cert.sqlite", entries)
    storage = SqliteStorage(db)
    try:
        kcm = Kcm(storage)
        first = connect_device(kcm, timeout=5)
        assert (
            first.bootstrapped
            and first.endpoint_name == "anjay-cert-1"
            and first.registration.mode == "certificate"
        )
        identity = read_identity(kcm)
        assert identity.bootstrap_account is not None and len(identity.server_accounts) == 1
        second = connect_device(kcm, timeout=5)
        assert not second.bootstrapped
    finally:
        storage.close()
    assert server.counters.bootstraps_finished == 1 and server.counters.registrations == 2


def test_connect_command_bootstraps_and_keeps_the_account(
    world: World, server: ServerThread, tmp_path: Path
) -> None:
    """provkit device connect writes what the bootstrap server issued: the next run registers directly."""
    assert server.ports is not None
    key, cert = world.device_certificate("anjay-cert-2")
    entries = [
        Entry("/0/0/0", f"coaps://127.0.0.1:{server.ports.bootstrap}"),
        Entry("/0/0/1", True),
        Entry("/0/0/2", 2),
        Entry("/0/0/3", cert),
        Entry("/0/0/4", world.material.ca_der),
        Entry("/0/0/5", keys.private_key_der(keys.load_private_key(key))),
        Entry("/0/0/15", 2),
    ]
    db = _store(tmp_path / "cert.sqlite", entries)
    first = run_cli("device", "connect", "--storage", str(db), "--timeout", "5")
    assert first.exit_code == 0, first.output
    assert json_status(first.output)["bootstrapped"] is True
    second = run_cli("device", "connect", "--storage", str(db), "--timeout", "5")
    assert second.exit_code == 0, second.output
    assert json_status(second.output)["bootstrapped"] is False
    assert server.counters.bootstraps_finished == 1 and server.counters.registrations == 2


def test_connect_failures_exit_1_with_their_class(world: World, server: ServerThread, tmp_path: Path) -> None:
    """An unknown PSK identity: exit 1, JSON with tls-alert and its code; an empty store: device-config."""
    assert server.ports is not None
    db = _store(tmp_path / "unknown.sqlite", _psk_entries(f"coaps://127.0.0.1:{server.ports.lwm2m}"))
    result = run_cli("device", "connect", "--storage", str(db), "--timeout", "5")
    assert result.exit_code == 1
    answer = json_status(result.output)  # the server's own log line may share the output
    assert answer == {
        "ok": False,
        "failure": "tls-alert",
        "service": "lwm2m",
        "code": 8010,
        "code_space": "SERVER",
        "message": answer["message"],
        "hint": "the server has no PSK recorded for this identity",
    }
    empty = SqliteStorage(tmp_path / "empty.sqlite")
    empty.close()
    nothing = run_cli("device", "connect", "--storage", str(tmp_path / "empty.sqlite"))
    assert nothing.exit_code == 1 and '"device-config"' in nothing.output and "8017" in nothing.output


def test_agent_answers_the_connect_command(world: World, server: ServerThread, tmp_path: Path) -> None:
    """The device agent (provkit device serve) runs the line's connect command on its storage."""
    from provkit.device.fcc import FactoryConfiguratorClient
    from provkit.device.handlers import device_handlers
    from provkit.server.command import ConnectRequest, connect_handler
    from provkit.transport.agent import DeviceAgent, serve_tcp
    from provkit.transport.links import TcpLink
    from provkit.wire.framing import CONNECT_TOKEN

    assert server.ports is not None
    with world.registry() as registry:
        registry.psk.record("anjay-psk-1", "anjay-psk-1", b"anjay-secret-key")
    wait_for_trust(server, world)
    db = _store(tmp_path / "agent.sqlite", _psk_entries(f"coaps://127.0.0.1:{server.ports.lwm2m}"))
    storage = SqliteStorage(db)
    try:
        kcm = Kcm(storage)
        handlers = device_handlers(FactoryConfiguratorClient(kcm), kcm)
        handlers[CONNECT_TOKEN] = connect_handler(kcm)
        with serve_tcp(DeviceAgent(handlers), "127.0.0.1", 0) as agent, TcpLink(*agent.address) as link:
            answer = json.loads(
                link.exchange(ConnectRequest(timeout=5).encode(), token=CONNECT_TOKEN, timeout_s=30)
            )
            bad = json.loads(link.exchange(b"[1, 2]", token=CONNECT_TOKEN, timeout_s=30))
    finally:
        storage.close()
    assert answer["ok"] and answer["location"].startswith("/rd/")
    assert not bad["ok"] and "bad request" in bad["message"]
