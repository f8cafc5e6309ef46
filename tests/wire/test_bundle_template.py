"""The template fast path and the checked encoder write the same bytes as the strict CBOR writer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provkit.errors import BundleEncodeError
from provkit.wire._bundle_encode import bundle_map
from provkit.wire.bundle import (
    Bundle,
    BundleTemplate,
    CertificateChainItem,
    CertificateItem,
    ConfigParam,
    KeyItem,
    encode_bundle,
)
from provkit.wire.cbor_strict import dumps as strict_dumps


def encode_prechecked(bundle: Bundle) -> bytes:
    """The fast path with no static items: the whole bundle is the template's sample."""
    return BundleTemplate(Bundle(), bundle).encode(bundle)


def strict_encoding(bundle: Bundle) -> bytes:
    """The reference bytes: the bundle's map through the strict, pure-Python writer."""
    return strict_dumps(bundle_map(bundle))


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
    assert encode_bundle(bundle) == strict_encoding(bundle)


def test_template_joins_own_items_before_static_ones() -> None:
    """A template's bundle is the device's own part followed by the static items, flags from its own."""
    certificate = CertificateItem("c", b"\x30")
    static = Bundle(config_params=(ConfigParam("p.static", 1),), certificates=(certificate,))
    own = Bundle(config_params=(ConfigParam("p.own", "x"),), verify=True, sid="s")
    expected = Bundle(
        config_params=(ConfigParam("p.own", "x"), ConfigParam("p.static", 1)),
        certificates=(certificate,),
        verify=True,
        sid="s",
    )
    assert BundleTemplate(static, own).encode(own) == encode_bundle(expected)


def test_template_checks_its_shape_once() -> None:
    """The sample joined with the static items is checked: a duplicate item is refused."""
    static = Bundle(config_params=(ConfigParam("p", 1),))
    with pytest.raises(BundleEncodeError, match="duplicate"):
        BundleTemplate(static, Bundle(config_params=(ConfigParam("p", 2),)))


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
    assert encode_bundle(bundle) == strict_encoding(bundle)
