"""The builder's bundles: every shape goes through the checked template and re-encodes identically."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.errors import FactoryError
from provkit.factory.builder import checked_template
from provkit.params import names as n
from provkit.wire.bundle import Bundle, ConfigParam, decode_bundle, encode_bundle

from .conftest import HomeFactory
from .test_device_keys import write_keys


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"use_bootstrap": False, "device_certificate_chain_depth": 2},
        {"entropy_generation_mode": "by_tool", "time_sync": False, "verify_on_device": False},
        {
            "first_to_claim": True,
            "custom_properties": [{"name": "a.b", "type": "config", "data": b"\x00\x01"}],
        },
    ],
)
def test_builder_bundles_match_wire_encoder(make_home: HomeFactory, overrides: dict[str, object]) -> None:
    """Every bundle shape the builder makes re-encodes with encode_bundle to the same bytes."""
    api = make_home(**overrides)
    data = api.prepare_device_configuration("dev-x", "SN-x").config_data
    assert encode_bundle(decode_bundle(data)) == data


def test_externally_supplied_bundle_matches(make_home: HomeFactory, tmp_path: Path) -> None:
    """Bundles with supplied keys match the wire encoder too."""
    api = make_home(device_key_generation_mode="externally_supplied", setup=False)
    write_keys(tmp_path / "k", cn="dev-y")
    data = api.prepare_device_configuration("dev-y", "SN", tmp_path / "k").config_data
    assert encode_bundle(decode_bundle(data)) == data


def test_check_template_reports_wire_rule_as_100() -> None:
    """A configuration item the wire rules refuse is reported as FCU error 100."""
    with pytest.raises(FactoryError) as info:
        checked_template(Bundle(config_params=(ConfigParam(n.USE_BOOTSTRAP, 2**40),)), Bundle())
    assert info.value.code == 100
