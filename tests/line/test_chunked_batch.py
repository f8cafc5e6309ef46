"""A batch takes its rows up a chunk at a time: same outcome as in one piece, bounded backlog."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm, fcc_device
from provkit.line.outcome import DeviceOutcome
from provkit.registry import AttemptState, IdentityPattern, Registry
from provkit.transport.link import LINE_LINK_SETTINGS

pytestmark = pytest.mark.integration


_LINK = replace(LINE_LINK_SETTINGS, timeout_s=10, connect_timeout_s=2, retries=0, retry_delay_s=0.01)


def _mixed_csv(path: Path, farm: DeviceFarm) -> Path:
    """Allocated rows, rows naming identities the pattern would hand out next (in a later
    chunk), a bad row and a repeated address."""
    addresses = [f"{h}:{p}" for h, p in farm.addresses()]
    rows = [f"{address},," for address in addresses[:9]]
    rows.insert(4, "nonsense,,")
    rows += [
        f"{addresses[9]},lot-000002,SN-GIVEN-2",  # the pattern's second value, given by a later row
        f"{addresses[10]},lot-x,SN00000005",  # the pattern's fifth serial number
        f"{addresses[0]},,",  # the address of the first row again
        f"{addresses[11]},,",
    ]
    path.write_text("address,endpoint_name,serial_number\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _by_line(devices: list[DeviceOutcome]) -> list[tuple[int, str, str | None, str | None]]:
    return [(d.line, d.status, d.endpoint_name, d.serial_number) for d in devices]


@pytest.mark.parametrize("chunk_rows", [1, 3])
def test_chunks_give_the_outcome_of_one_piece(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path, chunk_rows: int
) -> None:
    """Identities allocated in early chunks skip those later chunks' rows give; rejected rows
    keep their place in the report; every device is provisioned once, in both ways."""
    pattern = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="lot")
    reports = []
    for size in (chunk_rows, 1000):
        farm = farm_factory(12)
        csv_path = _mixed_csv(tmp_path / f"devices-{size}.csv", farm)
        options = BatchOptions(fcu_home, pattern=pattern, workers=1, inject=_LINK, chunk_rows=size)
        with Registry.open(tmp_path / f"r-{size}.sqlite", station_id="s") as registry:
            reports.append(Batch.open(tmp_path / f"out-{size}", registry, csv_path, options).run())
            assert registry.stats().provisioned == 12
        assert farm.messages_served == 12
    chunked, whole = reports
    assert _by_line(chunked.devices) == _by_line(whole.devices)
    assert chunked.counts() == whole.counts() == {"provisioned": 12, "rejected": 2}
    allocated = sorted(d.endpoint_name or "" for d in chunked.devices if d.status == "provisioned")
    assert "lot-000002" in allocated and allocated.count("lot-000002") == 1
    serials = [d.serial_number for d in chunked.devices if d.status == "provisioned"]
    assert len(set(serials)) == 12 and "SN00000002" not in serials and "SN00000005" in serials
    assert [d.line for d in chunked.devices] == sorted(d.line for d in chunked.devices)


def test_substeps_and_a_rerun_work_chunk_by_chunk(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Prepare, inject and verify as separate steps in chunks of two; a rerun sends nothing."""
    farm = farm_factory(7)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    out = tmp_path / "out"
    options = BatchOptions(fcu_home, workers=1, inject=_LINK, chunk_rows=2)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        assert Batch.open(out, registry, csv_path, options).prepare().counts() == {"prepared": 7}
        assert Batch.open(out, registry, None, options).inject().counts() == {"injected": 7}
        assert Batch.open(out, registry, None, options).verify().counts() == {"provisioned": 7}
        again = Batch.open(out, registry, None, options).run()
        assert again.counts() == {"provisioned": 7} and again.ok
        latest = registry.batch_attempts(Batch.open(out, registry, None, options).batch_id)
    assert farm.messages_served == 7
    assert {a.state for a in latest.values()} == {AttemptState.VERIFIED} and len(latest) == 7


class _Backlog:
    """A progress sink measuring bundles prepared but not yet sent."""

    def __init__(self) -> None:
        self.prepared = self.sent = self.most = 0
        self._lock = threading.Lock()

    def start(self, step: str, total: int) -> None:
        """Nothing to do at a step's start."""

    def advance(self, step: str, outcome: DeviceOutcome | None = None) -> None:
        """Count prepared and sent devices; keep the largest difference."""
        with self._lock:
            if step == "prepare":
                self.prepared += 1
            elif step == "inject":
                self.sent += 1
            self.most = max(self.most, self.prepared - self.sent)


def test_preparation_waits_for_slow_devices_instead_of_piling_up(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Devices slower than preparation: no more than a few chunks wait to be sent (what a
    batch holds does not grow with its size)."""

    def slow(index: int) -> Callable[[bytes, bool], bytes | None]:
        device = fcc_device(":memory:")

        def answer(message: bytes, first: bool) -> bytes | None:
            time.sleep(0.03)
            return device(message, first)

        return answer

    farm = farm_factory(40, slow)
    csv_path = devices_csv(tmp_path / "devices.csv", farm.addresses())
    backlog = _Backlog()
    options = BatchOptions(fcu_home, workers=1, concurrency=1, inject=_LINK, chunk_rows=2)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        report = Batch.open(tmp_path / "out", registry, csv_path, options, backlog).run()
    assert report.counts() == {"provisioned": 40}
    assert backlog.prepared == backlog.sent == 40
    # Two chunks queued, one being recorded, one being sent: 4 chunks of 2 at most.
    assert backlog.most <= 8, backlog.most
