"""Identity reservations on the line: a contested identity's bundle reaches one device only.

Two batches (as two stations would) share one registry, each with its own farm, so the
farms' message counts show which devices were sent a bundle.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.registry import AttemptState, NewAttempt, Registry
from provkit.transport.link import LINE_LINK_SETTINGS

pytestmark = pytest.mark.integration


def _options(home: Path, **kw: object) -> BatchOptions:
    settings = replace(LINE_LINK_SETTINGS, timeout_s=10, connect_timeout_s=2, retries=0, retry_delay_s=0.01)
    return BatchOptions(home_dir=home, workers=1, concurrency=4, inject=settings, **kw)  # type: ignore[arg-type]


def _crashed_while_sending(registry: Registry, home: Path, csv_path: Path, out: Path) -> int:
    """A batch killed between its sending mark and the device's answer; returns that attempt."""
    batch = Batch.open(out, registry, csv_path, _options(home))
    batch.prepare()
    (victim,) = registry.batch_attempts(batch.batch_id).values()
    registry.mark_sending(victim.id)
    return victim.id


@pytest.mark.parametrize("key_mode", ["by_tool", "by_device"])
def test_a_crashed_batchs_identity_is_not_sent_elsewhere_and_its_resume_provisions_it(
    key_mode: str,
    fcu_home: Path,
    by_device_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    registry_url: str,
    tmp_path: Path,
) -> None:
    """Another station's batch with the same identity is refused before sending (4001, the
    holder named, resume or --reprovision said); the crashed batch's resume hands its
    reservation to the superseding attempt and provisions the device (also by_device)."""
    home = by_device_home if key_mode == "by_device" else fcu_home
    mine, theirs = farm_factory(1), farm_factory(1)
    with Registry.open(registry_url, station_id="crashed") as registry:
        lost = _crashed_while_sending(
            registry, home, devices_csv(tmp_path / "a.csv", mine.addresses()), tmp_path / "a"
        )
    with Registry.open(registry_url, station_id="other") as registry:
        csv_b = devices_csv(tmp_path / "b.csv", theirs.addresses())
        report = Batch.open(tmp_path / "b", registry, csv_b, _options(home)).run()
    (refused,) = report.devices
    assert refused.status == "failed" and refused.code == 4001
    assert f"reserved by attempt {lost} of station crashed" in refused.reason
    assert "run again" in refused.reason and "--reprovision" in refused.reason
    assert theirs.messages_served == 0
    with Registry.open(registry_url, station_id="crashed") as registry:
        report = Batch.open(tmp_path / "a", registry, None, _options(home)).run()
        owner = registry.provisioned_owner("ep-0000", "sn-0000")
        assert registry.get_attempt(lost).superseded_by_id == owner.id  # type: ignore[union-attr]
    assert report.counts() == {"provisioned": 1}
    assert mine.messages_served == (2 if key_mode == "by_device" else 1)
    assert theirs.messages_served == 0


def test_reprovision_takes_a_crashed_batchs_identity_and_its_resume_is_refused(
    fcu_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    registry_url: str,
    tmp_path: Path,
) -> None:
    """Only an explicit --reprovision takes a reservation over; the crashed batch, resumed
    without it, then sends nothing."""
    mine, theirs = farm_factory(1), farm_factory(1)
    with Registry.open(registry_url, station_id="crashed") as registry:
        _crashed_while_sending(
            registry, fcu_home, devices_csv(tmp_path / "a.csv", mine.addresses()), tmp_path / "a"
        )
    with Registry.open(registry_url, station_id="other") as registry:
        csv_b = devices_csv(tmp_path / "b.csv", theirs.addresses())
        report = Batch.open(tmp_path / "b", registry, csv_b, _options(fcu_home, reprovision=True)).run()
        assert report.counts() == {"provisioned": 1}
        assert theirs.messages_served == 1
        report = Batch.open(tmp_path / "a", registry, None, _options(fcu_home)).run()
        winner = registry.provisioned_owner("ep-0000", "sn-0000")
    (refused,) = report.devices
    assert refused.status == "failed" and refused.code == 4001
    assert winner is not None and winner.station_id == "other"
    assert mine.messages_served == 0


def test_an_unreachable_devices_identity_is_freed_for_another_device(
    fcu_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    registry_url: str,
    tmp_path: Path,
) -> None:
    """A bundle that never reached its device (no connection) does not keep the identity."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()
    farm = farm_factory(1)
    with Registry.open(registry_url, station_id="s") as registry:
        csv_a = devices_csv(tmp_path / "a.csv", [closed])
        first = Batch.open(tmp_path / "a", registry, csv_a, _options(fcu_home)).run()
        assert first.devices[0].status == "failed" and first.devices[0].code == 1021
        csv_b = devices_csv(tmp_path / "b.csv", farm.addresses())
        second = Batch.open(tmp_path / "b", registry, csv_b, _options(fcu_home)).run()
        assert registry.find(endpoint_name="ep-0000", state=AttemptState.VERIFIED)
    assert second.counts() == {"provisioned": 1}
    assert farm.messages_served == 1


def test_a_refused_row_is_retried_once_the_holder_lets_the_identity_go(
    fcu_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    registry_url: str,
    tmp_path: Path,
) -> None:
    """Refused while another station sent the identity; that bundle never reached its device,
    so running the batch again provisions the row (a provisioned holder would not be freed)."""
    farm = farm_factory(1)
    with Registry.open(registry_url, station_id="other") as registry:
        (holder,) = registry.record_attempts(None, [NewAttempt("ep-0000", "sn-0000")])
        registry.mark_sending(holder)
        csv_path = devices_csv(tmp_path / "d.csv", farm.addresses())
        report = Batch.open(tmp_path / "out", registry, csv_path, _options(fcu_home)).run()
        assert report.devices[0].code == 4001 and farm.messages_served == 0
        report = Batch.open(tmp_path / "out", registry, None, _options(fcu_home)).run()
        assert report.devices[0].code == 4001 and farm.messages_served == 0  # still held
        registry.mark_failed(holder, 1021, "no connection", release=True)
        report = Batch.open(tmp_path / "out", registry, None, _options(fcu_home)).run()
    assert report.counts() == {"provisioned": 1} and farm.messages_served == 1
