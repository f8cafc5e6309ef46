"""End of line: provisioned devices count only once their first connection worked (real DTLS, real farm)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provkit.line.batch import Batch, BatchOptions, ConnectSettings
from provkit.line.farm import DeviceFarm
from provkit.registry import ConnectionOutcome, Registry
from provkit.server import ServerConfig, ServerThread, init_home
from provkit.server.factory_setup import point_factory
from support.server import wait_for_trust

pytestmark = pytest.mark.integration


@pytest.fixture
def line(fcu_home: Path, tmp_path: Path) -> Iterator[tuple[Path, str, ServerThread]]:
    """A copy of the FCU home pointed at a running server that trusts its factory CA."""
    home = tmp_path / "fcu"
    shutil.copytree(fcu_home, home)
    registry_url = str(tmp_path / "registry.sqlite")
    material = init_home(tmp_path / "server", ["127.0.0.1"])
    with Registry.open(registry_url) as registry:
        registry.psk.publish_sealing_key(material.sealing_public_der)
        registry.trust.add((home / "keystore" / "fcu.crt").read_bytes(), service="bootstrap")
    config = ServerConfig(
        home=material.home, registry_url=registry_url, bootstrap_port=0, lwm2m_port=0, trust_poll=0.1
    )
    with ServerThread(config) as server:
        assert server.ports is not None
        point_factory(
            home,
            material,
            bootstrap_uri=f"coaps://127.0.0.1:{server.ports.bootstrap}",
            lwm2m_uri=f"coaps://127.0.0.1:{server.ports.lwm2m}",
        )
        yield home, registry_url, server


def _devices_csv(path: Path, farm: DeviceFarm) -> Path:
    rows = ["address"] + [f"{host}:{port}" for host, port in farm.addresses()]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _batch(tmp_path: Path, home: Path, registry: Registry, farm: DeviceFarm, name: str) -> Batch:
    from provkit.registry import IdentityPattern

    options = BatchOptions(home_dir=home, pattern=IdentityPattern(f"{name}-{{seq:04d}}", ""), workers=1)
    return Batch.open(tmp_path / name, registry, _devices_csv(tmp_path / f"{name}.csv", farm), options)


def test_hundred_devices_provisioned_and_connected(
    line: tuple[Path, str, ServerThread], farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """100 virtual devices: provisioned, bootstrapped with their factory certificates, registered."""
    home, registry_url, server = line
    farm = farm_factory(100)
    with Registry.open(registry_url) as registry:
        report = _batch(tmp_path, home, registry, farm, "hundred").run(
            ConnectSettings(timeout=10, concurrency=8)
        )
        assert report.ok, [d for d in report.devices if d.status != "provisioned"][:3]
        assert {d.connection for d in report.devices} == {"connected"}
        assert all(d.location and d.location.startswith("/rd/") for d in report.devices)
        counts = registry.connections.counts()
        registered = registry.connections.find(service="lwm2m")
    assert counts == {"bootstrap": {"bootstrapped": 100}, "lwm2m": {"registered": 100}}
    assert {c.endpoint_name for c in registered} == {d.endpoint_name for d in report.devices}
    assert {c.mode for c in registered} == {"certificate"}
    assert server.counters.bootstraps_finished == 100 and server.counters.registrations == 100


def test_failures_are_classified_in_report_and_registry(
    line: tuple[Path, str, ServerThread], farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """A revoked device and devices of an untrusted factory are 'connect-failed' with their class."""
    home, registry_url, server = line
    farm = farm_factory(3)
    with Registry.open(registry_url) as registry:
        batch = _batch(tmp_path, home, registry, farm, "mixed")
        first = batch.run()
        assert first.ok and {d.connection for d in first.devices} == {None}
        revoked = first.devices[0].endpoint_name
        assert revoked is not None
        registry.revocations.revoke_endpoint(revoked, "returned to vendor")
        wait_for_trust(server, registry)
        report = batch.verify(ConnectSettings(timeout=5))
        by_name = {d.endpoint_name: d for d in report.devices}
        assert not report.ok
        assert by_name[revoked].status == "connect-failed" and by_name[revoked].connection == "revoked"
        assert by_name[revoked].connection_code == 8013 and "revoked" in by_name[revoked].reason
        assert {d.connection for d in report.devices if d.endpoint_name != revoked} == {"connected"}
        (record,) = [c for c in registry.connections.get(revoked) if c.service == "bootstrap"]
        assert record.outcome is ConnectionOutcome.FAILED and record.failure == "revoked"
        assert record.error_code == 8013

        (factory_ca,) = registry.trust.find(service="bootstrap")
        registry.trust.delete(factory_ca.id)
        wait_for_trust(server, registry)
        untrusted = batch.verify(ConnectSettings(timeout=5, bootstrap=True))
        assert {d.connection for d in untrusted.devices} == {"ca-untrusted"}
        assert {d.connection_code for d in untrusted.devices} == {8011}


def test_farm_devices_connect_on_their_own(
    line: tuple[Path, str, ServerThread], farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """With connect, each device connects after its provisioning; the line's check reads that connection."""
    import time

    home, registry_url, server = line
    farm = farm_factory(3, connect=True, connect_timeout=5.0)
    with Registry.open(registry_url) as registry:
        batch = _batch(tmp_path, home, registry, farm, "auto")
        assert batch.run().ok
        deadline = time.monotonic() + 30
        while len(farm.connections) < 3:
            assert time.monotonic() < deadline, farm.connections
            time.sleep(0.05)
        assert all(answer["ok"] and answer["bootstrapped"] for answer in farm.connections.values())
        report = batch.verify(ConnectSettings(timeout=5))
    assert report.ok and {d.connection for d in report.devices} == {"connected"}
    assert server.counters.registrations == 3  # the check reported the devices' own connections


def test_batch_run_connect_cli(
    line: tuple[Path, str, ServerThread], farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """``provkit batch run --connect``: exit 0 and 'connected' in the report; after revoking, exit 1."""
    from support.cli import run_cli

    home, registry_url, server = line
    farm = farm_factory(2)
    devices = _devices_csv(tmp_path / "cli.csv", farm)
    common = ["--out", str(tmp_path / "cli"), "--registry", registry_url, "--no-progress", "--workers", "1"]
    args = ["--home-dir", str(home), "batch", "run", "--devices", str(devices), *common]
    result = run_cli(*args, "--endpoint-pattern", "cli-{seq:03d}", "--connect", "--connect-step-timeout", "5")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert [d["connection"] for d in report["devices"]] == ["connected", "connected"]
    with Registry.open(registry_url) as registry:
        registry.revocations.revoke_endpoint(report["devices"][0]["endpoint_name"])
        wait_for_trust(server, registry)
    again = run_cli("--home-dir", str(home), "batch", "verify", *common, "--connect", "--connect-bootstrap")
    assert again.exit_code == 1 and "connect-failed" in again.output and "revoked" in again.output
