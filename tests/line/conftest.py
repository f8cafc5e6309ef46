"""Line fixtures: a real FCU home, a virtual device farm on loopback, registries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provkit.line.farm import DeviceFarm, SessionHandler


@pytest.fixture(scope="session")
def fcu_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An FCU home with the demo configuration and a freshly created factory CA."""
    from provkit.factory.api import FactoryToolApi
    from provkit.factory.home import make_demo_home

    home = tmp_path_factory.mktemp("fcu-home")
    make_demo_home(home)
    status = FactoryToolApi(home_dir=home).setup_factory_configurator_utility()
    assert status.ok, status
    return home


def _home_in_key_mode(fcu_home: Path, factory: pytest.TempPathFactory, mode: str) -> Path:
    """A copy of ``fcu_home`` (same CA) with another ``device-key-generation-mode``."""
    import shutil

    home = factory.mktemp(f"{mode}-home") / "home"
    shutil.copytree(fcu_home, home)
    config = home / "config" / "fcu.yml"
    lines = config.read_text(encoding="utf-8").splitlines()
    found = [n for n, line in enumerate(lines) if line.startswith("device-key-generation-mode:")]
    assert len(found) == 1
    lines[found[0]] = f"device-key-generation-mode: {mode}"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return home


@pytest.fixture(scope="session")
def by_device_home(fcu_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FCU home in ``by_device`` key mode (the CSR flow)."""
    return _home_in_key_mode(fcu_home, tmp_path_factory, "by_device")


@pytest.fixture(scope="session")
def supplied_home(fcu_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FCU home in ``externally_supplied`` key mode."""
    return _home_in_key_mode(fcu_home, tmp_path_factory, "externally_supplied")


@pytest.fixture
def farm_factory() -> Iterator[Callable[..., DeviceFarm]]:
    """Start farms on ephemeral loopback ports; all are closed after the test."""
    farms: list[DeviceFarm] = []

    def start(
        count: int, device_factory: Callable[[int], SessionHandler] | None = None, **kw: object
    ) -> DeviceFarm:
        farm = DeviceFarm(count, device_factory=device_factory, **kw).start()  # type: ignore[arg-type]
        farms.append(farm)
        return farm

    yield start
    for farm in farms:
        farm.close()


def write_devices(
    path: Path, addresses: list[tuple[str, int]], identities: bool = True, start: int = 0
) -> Path:
    """Write a devices.csv for ``addresses`` (with ep-N/sn-N identities unless told not to)."""
    lines = ["address,endpoint_name,serial_number"]
    for n, (host, port) in enumerate(addresses, start=start):
        lines.append(f"{host}:{port},ep-{n:04d},sn-{n:04d}" if identities else f"{host}:{port},,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def devices_csv() -> Callable[..., Path]:
    """The :func:`write_devices` helper as a fixture."""
    return write_devices
