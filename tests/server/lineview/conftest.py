"""Line view fixtures: a registry a real batch provisioned, and the line view served on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provkit.factory.api import FactoryToolApi
from provkit.factory.home import make_demo_home
from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.server.lineview import build_router
from provkit.transport.link import LinkSettings
from support.dmapi import RunningApi, running_api

DEVICES = 8
"""Devices the fixture's farm provisions; one more address answers nothing (a failure)."""


@pytest.fixture(scope="session")
def line_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An FCU home with the demo configuration and a factory CA."""
    home = tmp_path_factory.mktemp("line-home")
    make_demo_home(home)
    assert FactoryToolApi(home_dir=home).setup_factory_configurator_utility().ok
    return home


def run_batch(home: Path, registry_url: str, out: Path, addresses: list[tuple[str, int]], first: int) -> None:
    """Provision ``addresses`` as devices ``ep-<first>…`` in one batch of station ``line-1``."""
    from provkit.registry import Registry

    lines = ["address,endpoint_name,serial_number"]
    lines += [f"{host}:{port},ep-{n:04d},sn-{n:04d}" for n, (host, port) in enumerate(addresses, start=first)]
    devices = out.with_suffix(".csv")
    devices.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = LinkSettings(timeout_s=10, connect_timeout_s=1, retries=0, retry_delay_s=0.01)
    options = BatchOptions(home_dir=home, workers=1, concurrency=4, inject=settings)
    with Registry.open(registry_url, station_id="line-1") as registry:
        Batch.open(out, registry, devices, options).run()


@pytest.fixture
def line(line_home: Path, registry_url: str, tmp_path: Path) -> Iterator[RunningApi]:
    """The line view (with the API) on a registry where a batch provisioned :data:`DEVICES`
    devices and failed one whose address answers nothing."""
    farm = DeviceFarm(DEVICES).start()
    try:
        dead = ("127.0.0.1", _closed_port())
        run_batch(line_home, registry_url, tmp_path / "batch-1", [*farm.addresses(), dead], 0)
    finally:
        farm.close()
    with running_api(registry_url, extra_routers=[build_router()]) as api:
        yield api


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
