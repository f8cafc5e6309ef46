"""Shared fixtures for the factory tests: FCU homes built from the embedded template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from provkit.factory import FactoryToolApi
from provkit.factory.home import make_demo_home, template_text

LWM2M_AID = "0123456789abcdef0123456789abcdef"
VENDOR_ID = "42fa7b48-1a65-43aa-890f-8c704daade54"
CLASS_ID = "b8b2c7a1-0d5e-4c1f-9a3e-2f6d8e9a1b2c"

HomeFactory = Callable[..., FactoryToolApi]


def base_config() -> dict[str, Any]:
    """The embedded template's values as a mapping (placeholders left in)."""
    data = yaml.safe_load(template_text().replace("<%= ENV['FCU_RESOURCES_DIR'] %>", "../resources"))
    assert isinstance(data, dict)
    return data


def write_config(home: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``<home>/config/fcu.yml``."""
    path = home / "config" / "fcu.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def make_home(tmp_path: Path) -> HomeFactory:
    """Return a function building a demo home with fcu.yml overrides; setup is run unless told not to."""
    counter = [0]

    def build(*, setup: bool = True, drop: tuple[str, ...] = (), **overrides: Any) -> FactoryToolApi:
        counter[0] += 1
        home = tmp_path / f"home{counter[0]}"
        make_demo_home(home)
        data = base_config()
        for key, value in overrides.items():
            data[key.replace("_", "-")] = value
        for key in drop:
            data.pop(key, None)
        write_config(home, data)
        api = FactoryToolApi(home_dir=home)
        if setup:
            api.setup_factory_configurator_utility()
        return api

    return build


@pytest.fixture
def api(make_home: HomeFactory) -> FactoryToolApi:
    """A set-up FCU home with the template's defaults (bootstrap mode, by_tool keys)."""
    return make_home()
