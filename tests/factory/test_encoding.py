"""The fast per-device encoder writes exactly the bytes of provkit.wire.bundle.encode_bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provkit.errors import FactoryError
from provkit.factory.encoding import check_template, encode_prechecked
from provkit.wire.bundle import (
    Bundle,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    KeyItem,
    decode_bundle,
    encode_bundle,
)

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


def test_all_field_kinds_match() -> None:
    """PrKN, null Data, big integers, negative integers and every flag encode identically."""
    bundle = Bundle(
        keys=(KeyItem("k.a", "ECCPublic", b"\x30\x01"),),
        certificates=(CertificateItem("c.a", b"\x30\x02", prkn="k.p"),),
        certificate_chains=(CertificateChainItem("ch.a", (b"\x30", b"\x31"), prkn="k.p"),),
        config_params=(
            ConfigParam("p.none", None),
            ConfigParam("p.big", 2**64 - 1),
            ConfigParam("p.neg", -5),
            ConfigParam("p.text", "é"),
        ),
        entropy=bytes(48),
        rot=bytes(16),
        verify=False,
        disable=True,
        sid="abc",
    )
    assert encode_prechecked(bundle) == encode_bundle(bundle)


def test_check_template_reports_wire_rule_as_100() -> None:
    """A configuration item the wire rules refuse is reported as FCU error 100."""
    with pytest.raises(FactoryError) as info:
        check_template(Bundle(config_params=(ConfigParam("mbed.UseBootstrap", 2**40),)))
    assert info.value.code == 100


_names = st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True)
_der = st.binary(min_size=1, max_size=40)
_data = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=30),
    st.binary(max_size=30),
)


@st.composite
def _bundles(draw: st.DrawFn) -> Bundle:
    params = draw(st.lists(st.builds(ConfigParam, _names, _data), max_size=6, unique_by=lambda p: p.name))
    keys = draw(
        st.lists(
            st.builds(KeyItem, _names, st.sampled_from(["ECCPrivate", "ECCPublic"]), _der),
            max_size=3,
            unique_by=lambda k: (k.type, k.name),
        )
    )
    certs = draw(
        st.lists(
            st.builds(CertificateItem, _names, _der, st.none() | _names),
            max_size=3,
            unique_by=lambda c: c.name,
        )
    )
    used = {c.name for c in certs}
    chains = draw(
        st.lists(
            st.builds(
                CertificateChainItem,
                _names.filter(lambda n: n not in used),
                st.lists(_der, min_size=1, max_size=5).map(tuple),
                st.none() | _names,
            ),
            max_size=2,
            unique_by=lambda c: c.name,
        )
    )
    return Bundle(
        keys=tuple(keys),
        certificates=tuple(certs),
        certificate_chains=tuple(chains),
        config_params=tuple(p for p in params if p.name not in ("mbed.UseBootstrap",)),
        entropy=draw(st.none() | st.binary(min_size=48, max_size=48)),
        verify=draw(st.none() | st.booleans()),
        keep_alive=draw(st.none() | st.just(False)),
        sid=draw(st.none() | st.text(max_size=10)),
    )


@given(_bundles())
def test_fast_encoder_equals_wire_encoder(bundle: Bundle) -> None:
    """For any acceptable bundle without CSRs the fast encoder writes encode_bundle's exact bytes."""
    assert encode_prechecked(bundle) == encode_bundle(bundle)
