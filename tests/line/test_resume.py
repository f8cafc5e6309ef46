"""Resuming batches: lost responses, and batches killed with SIGKILL at any moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.registry import TERMINAL_STATES, AttemptState, Registry
from provkit.transport.link import LINE_LINK_SETTINGS
from provkit.transport.links import TcpLink

pytestmark = pytest.mark.integration


def _options(home: Path) -> BatchOptions:
    return BatchOptions(
        home_dir=home, workers=1, concurrency=4, inject=replace(LINE_LINK_SETTINGS, timeout_s=10, retries=0)
    )


def _assert_each_provisioned_once(registry: Registry, batch_id: str, count: int) -> None:
    latest = registry.batch_attempts(batch_id)
    assert len(latest) == count
    assert {a.state for a in latest.values()} == {AttemptState.VERIFIED}
    verified = Counter(a.endpoint_name for a in registry.find(state=AttemptState.VERIFIED))
    assert len(verified) == count and set(verified.values()) == {1}
    assert registry.stats().provisioned == count
    # Nothing lost on the way: every interrupted or failed attempt is closed and points
    # at the attempt that replaced it.
    every = registry.find(batch_id=batch_id)
    assert all(a.state in TERMINAL_STATES for a in every)
    assert all(a.superseded_by_id is not None for a in every if a.state is not AttemptState.VERIFIED)


def test_lost_response_is_superseded_and_reinjected(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """A device whose bundle was sent but whose answer was lost gets a superseding attempt."""
    farm = farm_factory(3)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        batch = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home))
        batch.prepare()
        victim = batch.registry.batch_attempts(batch.batch_id)["2"]
        # What a kill between "sending" and the answer leaves behind: the device has the
        # bundle, the registry only the write-ahead mark.
        registry.mark_sending(victim.id)
        host, port = farm.addresses()[0]
        with TcpLink(host, port, connect_timeout_s=5) as link:
            link.exchange(batch.layout.bundle(victim.id, victim.endpoint_name).read_bytes(), timeout_s=10)
        report = Batch.open(tmp_path / "out", registry, None, _options(fcu_home)).run()
        assert report.ok
        old = registry.get_attempt(victim.id)
        assert old.state is AttemptState.FAILED and "response lost" in (old.error_message or "")
        new = registry.get_attempt(old.superseded_by_id or 0)
        assert new.supersedes_id == victim.id and new.state is AttemptState.VERIFIED
        _assert_each_provisioned_once(registry, batch.batch_id, 3)


def _start_batch(
    home: Path, csv_path: Path, out: Path, registry: str, chunk_rows: int = 1000
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "provkit.cli", "--home-dir", str(home), "batch", "run",
        "--devices", str(csv_path), "--out", str(out), "--registry", registry,
        "--workers", "1", "--concurrency", "4", "--retries", "0", "--no-progress",
        "--chunk-rows", str(chunk_rows),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _states(registry_url: str) -> Counter[str]:
    if "://" not in registry_url and not Path(registry_url).exists():
        return Counter()
    try:
        with Registry.open(registry_url, station_id="probe", migrate=False) as registry:
            return Counter({k: v for k, v in registry.stats().by_state.items()})
    except Exception:  # the schema may not exist yet while the batch starts
        return Counter()


def test_batch_killed_repeatedly_then_resumed_provisions_each_once(
    fcu_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    registry_url: str,
    tmp_path: Path,
) -> None:
    """SIGKILL during preparation and during injection, then a resume: every device exactly once
    (on a SQLite file and on PostgreSQL)."""
    count = 40
    farm = farm_factory(count)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    kill_points: list[Callable[[], bool]] = [
        lambda: sum(_states(registry_url).values()) > 0,  # attempts recorded, preparing
        lambda: _states(registry_url)["verified"] >= 5,  # injecting
        lambda: _states(registry_url)["verified"] >= 25,
    ]
    killed = 0
    # Runs in chunks of 7 rows (some kills land between chunks), then one of the whole.
    for point in kill_points:
        proc = _start_batch(fcu_home, csv_path, out, registry_url, chunk_rows=7)
        _wait_for(point, proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        killed += proc.returncode == -signal.SIGKILL
        print("killed at", dict(_states(registry_url)))
    assert killed >= 2  # the kills really interrupted running batches
    proc = _start_batch(fcu_home, csv_path, out, registry_url)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    batch_id = json.loads((out / "batch.json").read_text())["batch_id"]
    with Registry.open(registry_url, station_id="check") as registry:
        _assert_each_provisioned_once(registry, batch_id, count)
    assert json.loads((out / "report.json").read_text())["counts"] == {"provisioned": count}


def test_device_keeping_an_earlier_bundle_answers_17_until_it_is_wiped(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """A real device keeps its storage across connections while its factory client runs. When
    the bundle of a lost answer reached it, the resume's superseding attempt meets those items:
    the device answers 17, the attempt fails saying what to do and keeps the identity reserved,
    and once the device has a fresh factory session the batch run again provisions it."""
    from provkit.device.fcc import FactoryConfiguratorClient
    from provkit.device.handlers import response_body
    from provkit.device.kcm import Kcm
    from provkit.device.storage import MemoryStorage
    from provkit.line.inject import LEFT_OVER_ITEMS

    clients: dict[int, FactoryConfiguratorClient] = {}

    def device(index: int) -> Callable[[bytes, bool], bytes | None]:
        client = clients.setdefault(index, FactoryConfiguratorClient(Kcm(MemoryStorage())))
        return lambda message, first: response_body(client.bundle_handler(message))  # no wipe per connection

    farm = farm_factory(1, device_factory=device)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        batch = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home))
        batch.prepare()
        victim = batch.registry.batch_attempts(batch.batch_id)["2"]
        registry.mark_sending(victim.id)
        host, port = farm.addresses()[0]
        with TcpLink(host, port, connect_timeout_s=5) as link:
            link.exchange(batch.layout.bundle(victim.id, victim.endpoint_name).read_bytes(), timeout_s=10)

        report = Batch.open(tmp_path / "out", registry, None, _options(fcu_home)).run()
        assert not report.ok
        superseding = registry.get_attempt(registry.get_attempt(victim.id).superseded_by_id or 0)
        assert superseding.state is AttemptState.FAILED and superseding.return_status == 17
        assert superseding.error_code == 1004 and LEFT_OVER_ITEMS in (superseding.error_message or "")
        assert superseding.endpoint_name == victim.endpoint_name  # the same identity, still held

        clients[0].storage_delete()  # what restarting the factory client does on a real device
        report = Batch.open(tmp_path / "out", registry, None, _options(fcu_home)).run()
        assert report.ok
        _assert_each_provisioned_once(registry, batch.batch_id, 1)
