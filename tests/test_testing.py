"""provkit.testing: a virtual device a user's test provisions, and in-memory storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.device.kcm import ItemType
from provkit.errors import ItemNotFoundError
from provkit.factory.api import FactoryToolApi
from provkit.factory.home import make_demo_home
from provkit.factory.provision import provision_one
from provkit.testing import memory_kcm, virtual_device
from provkit.transport.spec import parse_link

pytestmark = pytest.mark.integration


def test_a_factory_tool_provisions_the_virtual_device(tmp_path: Path) -> None:
    """The FCU provisions it over TCP; its KCM holds the identity; verification passes."""
    home = tmp_path / "home"
    make_demo_home(home)
    api = FactoryToolApi(home_dir=home)
    assert api.setup_factory_configurator_utility().ok
    with virtual_device() as device:
        outcome = provision_one(api, parse_link(f"tcp:{device.address}"), "dev-0001", "SN0001")
        assert outcome.status == 0, outcome
        assert device.config("mbed.EndpointName") == b"dev-0001"
        assert device.verify().ok
        with pytest.raises(ItemNotFoundError):
            device.config("mbed.NoSuchThing")


def test_a_file_device_outlives_the_block(tmp_path: Path) -> None:
    """With a SQLite file, what was stored is there when the device is served again."""
    storage = tmp_path / "device.sqlite"
    with virtual_device(storage) as device:
        device.kcm.item_store("mbed.Manufacturer", ItemType.CONFIG, b"acme")
        first = device.port
    with virtual_device(storage) as again:
        assert again.config("mbed.Manufacturer") == b"acme" and again.host == "127.0.0.1"
    assert first > 0


def test_memory_kcm_is_empty_storage() -> None:
    """memory_kcm() stores and reads items, and starts empty."""
    kcm = memory_kcm()
    with pytest.raises(ItemNotFoundError):
        kcm.item_get("mbed.Manufacturer", ItemType.CONFIG)
    kcm.item_store("mbed.Manufacturer", ItemType.CONFIG, b"acme")
    assert kcm.item_get("mbed.Manufacturer", ItemType.CONFIG) == b"acme"
